"""A plain-language verdict on a trained candidate, with the reasons and their numbers.

Four verdicts, decided in this order:

1. **likely overfit** — at least one red flag backed by enough data: PBO above
   PBO_OVERFIT, deflated Sharpe below DSR_OVERFIT, out-of-sample Sharpe at or below zero
   while in-sample was positive, or a losing hold-out.
2. **insufficient evidence** — no red flag, but too little to judge: too few trades out of
   sample or in the hold-out, too few trials for selection statistics, a statistic that
   could not be computed, or no in-sample edge to validate in the first place.
3. **promising but fragile** — enough evidence, no red flag, but at least one robustness
   test missed: DSR below DSR_MIN, PBO above PBO_ROBUST_MAX, out-of-sample Sharpe more than
   MAX_OOS_DEGRADATION below in-sample, too few profitable OOS folds, or an objective that
   falls more than MAX_STABILITY_DROP next to the chosen parameters.
4. **likely robust** — every test passed.

Every threshold is a module constant below and can be overridden per call (a graduation
policy passes its own): ``verdict_for(evidence, pbo_overfit=0.4)`` or
``verdict_for(evidence, Thresholds(dsr_min=0.9))``. Sharpe ratios cited are annualised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

__all__ = [
    "LIKELY_ROBUST", "PROMISING_BUT_FRAGILE", "LIKELY_OVERFIT", "INSUFFICIENT_EVIDENCE",
    "DSR_MIN", "DSR_OVERFIT", "PBO_ROBUST_MAX", "PBO_OVERFIT", "MAX_OOS_DEGRADATION",
    "MIN_POSITIVE_OOS_FOLDS", "MAX_STABILITY_DROP", "MIN_HOLDOUT_TRADES", "MIN_OOS_TRADES",
    "MIN_TRIALS", "Thresholds", "Evidence", "verdict_for",
]

LIKELY_ROBUST = "likely robust"
PROMISING_BUT_FRAGILE = "promising but fragile"
LIKELY_OVERFIT = "likely overfit"
INSUFFICIENT_EVIDENCE = "insufficient evidence"

DSR_MIN = 0.95
"""Deflated Sharpe needed for "robust": 95 % probability that the true Sharpe beats the best
Sharpe that the same number of skill-less trials would show (Bailey & López de Prado)."""

DSR_OVERFIT = 0.50
"""Below this the observed Sharpe is less than what pure luck over the trials would give
on average: a red flag."""

PBO_ROBUST_MAX = 0.30
"""Highest probability of backtest overfitting accepted for "robust"."""

PBO_OVERFIT = 0.50
"""Above this the in-sample winner more often than not ranks at or below the out-of-sample
median: selection is worse than a coin flip, a red flag."""

MAX_OOS_DEGRADATION = 0.50
"""Largest accepted fall of the combined out-of-sample Sharpe relative to the mean
in-sample Sharpe (0.5 = OOS keeps at least half)."""

MIN_POSITIVE_OOS_FOLDS = 0.60
"""Share of walk-forward folds whose out-of-sample total return must be positive."""

MAX_STABILITY_DROP = 0.30
"""Largest accepted mean relative drop of the objective at neighbouring parameters."""

MIN_HOLDOUT_TRADES = 30
"""Closed trades the hold-out needs before its result says anything (about the number at
which a trade-level mean stops being dominated by one or two trades)."""

MIN_OOS_TRADES = 30
"""Closed trades needed across all out-of-sample windows, for the same reason."""

MIN_TRIALS = 20
"""Trials needed before the deflated Sharpe and PBO (which measure selection among many
configurations) are meaningful."""


@dataclass(frozen=True)
class Thresholds:
    """All verdict thresholds; defaults are the module constants."""

    dsr_min: float = DSR_MIN
    dsr_overfit: float = DSR_OVERFIT
    pbo_robust_max: float = PBO_ROBUST_MAX
    pbo_overfit: float = PBO_OVERFIT
    max_oos_degradation: float = MAX_OOS_DEGRADATION
    min_positive_oos_folds: float = MIN_POSITIVE_OOS_FOLDS
    max_stability_drop: float = MAX_STABILITY_DROP
    min_holdout_trades: int = MIN_HOLDOUT_TRADES
    min_oos_trades: int = MIN_OOS_TRADES
    min_trials: int = MIN_TRIALS

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Evidence:
    """What the verdict looks at; None = not available.

    Sharpe ratios annualised. ``in_sample_sharpe``: mean over the folds' in-sample windows;
    ``out_of_sample_sharpe``: the chained out-of-sample equity of all folds;
    ``positive_oos_folds``: folds whose OOS total return > 0 out of ``n_folds``;
    ``stability_drop``: :func:`parameter_stability`'s ``relative_drop``; ``n_trials``:
    trials tried (complete + pruned).
    """

    in_sample_sharpe: float | None = None
    out_of_sample_sharpe: float | None = None
    out_of_sample_trades: int = 0
    positive_oos_folds: int = 0
    n_folds: int = 0
    holdout_sharpe: float | None = None
    holdout_trades: int = 0
    dsr: float | None = None
    pbo: float | None = None
    n_trials: int = 0
    stability_drop: float | None = None


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def _sr(x: float) -> str:
    return f"{x:.2f}"


def verdict_for(evidence: Evidence, thresholds: Thresholds | None = None, **overrides) -> dict:
    """``{"code", "text", "reasons", "thresholds"}`` for ``evidence``.

    ``text`` is one of the four verdicts; ``code`` the same in snake_case; ``reasons`` short
    sentences citing the numbers, the ones that decided the verdict first. ``overrides``
    replace single thresholds by field name of :class:`Thresholds` (unknown names raise
    TypeError).
    """
    t = thresholds or Thresholds()
    if overrides:
        unknown = set(overrides) - {f.name for f in fields(Thresholds)}
        if unknown:
            raise TypeError(f"unknown verdict threshold(s): {', '.join(sorted(unknown))}")
        t = replace(t, **overrides)
    e = evidence
    red: list[str] = []
    thin: list[str] = []
    weak: list[str] = []
    good: list[str] = []

    # In-sample edge and its out-of-sample survival.
    is_sr, oos_sr = e.in_sample_sharpe, e.out_of_sample_sharpe
    enough_oos = e.out_of_sample_trades >= t.min_oos_trades
    if not enough_oos:
        thin.append(f"Only {e.out_of_sample_trades} trades out of sample (need {t.min_oos_trades}).")
    if is_sr is None or is_sr <= 0:
        shown = "undefined" if is_sr is None else _sr(is_sr)
        thin.append(f"In-sample Sharpe {shown}: the best configuration found has no edge to validate.")
    elif oos_sr is None:
        thin.append("Out-of-sample Sharpe is undefined (no variance out of sample).")
    elif oos_sr <= 0:
        (red if enough_oos else thin).append(
            f"Out-of-sample Sharpe {_sr(oos_sr)} is at or below zero while in-sample was {_sr(is_sr)}.")
    else:
        degradation = 1.0 - oos_sr / is_sr
        if degradation > t.max_oos_degradation:
            weak.append(f"Out-of-sample Sharpe {_sr(oos_sr)} is {_pct(degradation)} below in-sample "
                        f"{_sr(is_sr)} (limit {_pct(t.max_oos_degradation)}).")
        else:
            good.append(f"Out-of-sample Sharpe {_sr(oos_sr)} keeps {_pct(min(oos_sr / is_sr, 9.99))} "
                        f"of in-sample {_sr(is_sr)}.")
    if e.n_folds:
        share = e.positive_oos_folds / e.n_folds
        sentence = f"{e.positive_oos_folds} of {e.n_folds} out-of-sample folds were profitable"
        if share < t.min_positive_oos_folds:
            weak.append(f"Only {sentence} (need {_pct(t.min_positive_oos_folds)}).")
        else:
            good.append(f"{sentence[0].upper()}{sentence[1:]}.")

    # Hold-out: data the optimiser never saw.
    if e.holdout_trades < t.min_holdout_trades:
        thin.append(f"Only {e.holdout_trades} trades in the hold-out (need {t.min_holdout_trades}).")
        if e.holdout_sharpe is not None and e.holdout_sharpe <= 0:
            thin.append(f"Hold-out Sharpe {_sr(e.holdout_sharpe)} on so few trades says little either way.")
    elif e.holdout_sharpe is None or e.holdout_sharpe <= 0:
        shown = "undefined" if e.holdout_sharpe is None else _sr(e.holdout_sharpe)
        red.append(f"Hold-out Sharpe {shown}: it lost money on data the optimiser never saw.")
    else:
        good.append(f"Hold-out Sharpe {_sr(e.holdout_sharpe)} over {e.holdout_trades} trades "
                    f"on data the optimiser never saw.")

    # Selection bias.
    if e.n_trials < t.min_trials:
        thin.append(f"Only {e.n_trials} trials: too few for the selection statistics (need {t.min_trials}).")
    if e.pbo is None:
        thin.append("PBO could not be computed (needs at least two completed configurations).")
    elif e.pbo > t.pbo_overfit:
        red.append(f"PBO {e.pbo:.2f}: the in-sample best usually ranks below median out of sample.")
    elif e.pbo > t.pbo_robust_max:
        weak.append(f"PBO {e.pbo:.2f} is above {t.pbo_robust_max:.2f}: the in-sample best often "
                    f"disappoints out of sample.")
    else:
        good.append(f"PBO {e.pbo:.2f}: the in-sample best usually stays above median out of sample.")
    if e.dsr is None:
        thin.append("Deflated Sharpe could not be computed.")
    elif e.dsr < t.dsr_overfit:
        red.append(f"Deflated Sharpe {e.dsr:.2f} < {t.dsr_overfit:.2f} after {e.n_trials} trials: "
                   f"the Sharpe is below what luck alone would produce.")
    elif e.dsr < t.dsr_min:
        weak.append(f"Deflated Sharpe {e.dsr:.2f} < {t.dsr_min:.2f} after {e.n_trials} trials.")
    else:
        good.append(f"Deflated Sharpe {e.dsr:.2f} >= {t.dsr_min:.2f} after {e.n_trials} trials.")

    # Neighbourhood of the chosen parameters.
    if e.stability_drop is None:
        thin.append("Parameter stability could not be measured.")
    elif e.stability_drop > t.max_stability_drop:
        weak.append(f"The objective drops {_pct(e.stability_drop)} on average at neighbouring parameters "
                    f"(limit {_pct(t.max_stability_drop)}): the optimum is a narrow peak.")
    else:
        moved = "drops" if e.stability_drop >= 0 else "rises"
        good.append(f"The objective {moved} {_pct(abs(e.stability_drop))} on average at neighbouring parameters.")

    if red:
        text, reasons = LIKELY_OVERFIT, red + thin + weak + good
    elif thin:
        text, reasons = INSUFFICIENT_EVIDENCE, thin + weak + good
    elif weak:
        text, reasons = PROMISING_BUT_FRAGILE, weak + good
    else:
        text, reasons = LIKELY_ROBUST, good
    return {"code": text.replace(" ", "_"), "text": text, "reasons": reasons, "thresholds": t.to_dict()}
