"""Parameter stability: does the objective hold up next to the chosen parameters?

A robust optimum sits on a plateau: moving any one parameter a little barely changes the
result. A fragile one is a spike that an optimiser found among hundreds of trials. We move
one parameter at a time (one-at-a-time neighbours, ``2 × d`` points for ``d`` numeric
parameters rather than ``3^d - 1``), re-evaluate the same in-sample objective, and report
how far it falls.

Neighbour of a numeric parameter (both directions, clamped to its bounds, dropped when the
clamp leaves it unchanged): ``value ± delta`` with ``delta`` the larger of one search step
and ``relative_step × |value|`` rounded to the step (integers: step 1 if none). Floats
without a step move by ``relative_step × |value|`` (``× range`` when the value is 0); log
scale floats are multiplied/divided by ``1 + relative_step``. Categorical parameters try
every other choice, booleans the other value. Neighbours that break the strategy's
cross-field rules (e.g. sma_cross fast >= slow) are skipped and listed with the reason.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np

from quant.strategies import (BoolParam, CategoricalParam, FloatParam, IntParam,
                                     ParameterError, Strategy, get_strategy)

__all__ = ["DEFAULT_RELATIVE_STEP", "neighbours", "parameter_stability"]

DEFAULT_RELATIVE_STEP = 0.10
"""Neighbours are about 10 % away from the chosen value (at least one search step)."""


def _numeric_moves(param, value: float, relative_step: float) -> list[tuple[str, float]]:
    if isinstance(param, FloatParam) and param.log:
        factor = 1.0 + relative_step
        return [("-", value / factor), ("+", value * factor)]
    step = param.step if param.step is not None else (1 if isinstance(param, IntParam) else None)
    if step is None:
        delta = relative_step * abs(value) if value != 0 else relative_step * (param.high - param.low)
    else:
        delta = max(step, round(relative_step * abs(value) / step) * step)
    return [("-", value - delta), ("+", value + delta)]


def neighbours(strategy: str | type[Strategy], params: Mapping, *,
               relative_step: float = DEFAULT_RELATIVE_STEP) -> list[dict]:
    """One-at-a-time neighbours of ``params``: ``[{"param", "change", "params", "error"}]``.

    ``change`` reads like "fast -1" / "slow +30" / "htf=1h"; ``params`` is the complete
    neighbouring parameter set; ``error`` is None or why the strategy rejects it.
    """
    cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
    base = cls.validate_params(params)
    out = []
    for p in cls.params:
        value = base[p.name]
        if isinstance(p, (IntParam, FloatParam)):
            candidates = []
            for sign, moved in _numeric_moves(p, value, relative_step):
                moved = min(max(moved, p.low), p.high)
                if isinstance(p, IntParam):
                    moved = int(round(moved))
                else:
                    moved = float(round(moved, 12))
                if moved != value:
                    delta = moved - value
                    text = f"{delta:+d}" if isinstance(p, IntParam) else f"{delta:+.6g}"
                    candidates.append((f"{p.name} {text}", moved))
        elif isinstance(p, BoolParam):
            candidates = [(f"{p.name}={not value}", not value)]
        elif isinstance(p, CategoricalParam):
            candidates = [(f"{p.name}={choice}", choice) for choice in p.choices if choice != value]
        else:  # pragma: no cover - future Param types
            continue
        for change, moved in candidates:
            trial = dict(base, **{p.name: moved})
            try:
                trial = cls.validate_params(trial)
                error = None
            except ParameterError as exc:
                error = str(exc)
            out.append({"param": p.name, "change": change, "params": trial, "error": error})
    return out


def _ratio(value: float, base: float) -> float | None:
    return value / base if base > 0 and math.isfinite(value) else None


def parameter_stability(score: Callable[[dict], float], strategy: str | type[Strategy], params: Mapping, *,
                        base_value: float | None = None,
                        relative_step: float = DEFAULT_RELATIVE_STEP) -> dict:
    """Evaluate ``score`` (params → objective, higher is better) at every neighbour.

    Returns a JSON-safe dict:

    * ``base_value``: the objective at ``params`` (computed unless given);
    * ``neighbours``: ``[{"param", "change", "params", "value", "ratio"}]`` evaluated ones;
      ``skipped``: ``[{"param", "change", "params", "reason"}]``;
    * ``mean_value`` / ``min_value`` over the neighbours;
    * ``mean_ratio`` / ``min_ratio``: neighbour value / base value (None unless base > 0);
    * ``relative_drop``: ``(base - mean) / |base|`` (0.3 = neighbours score 30 % worse on
      average; negative = better), ``worst_relative_drop`` the same with the minimum;
      None when the base is 0 or nothing could be evaluated;
    * ``per_param``: ``{name: {"mean_value", "min_value", "relative_drop"}}``.
    """
    cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
    base_params = cls.validate_params(params)
    base = float(score(base_params)) if base_value is None else float(base_value)
    evaluated, skipped = [], []
    for item in neighbours(cls, base_params, relative_step=relative_step):
        if item["error"] is not None:
            skipped.append({"param": item["param"], "change": item["change"], "params": item["params"],
                            "reason": item["error"]})
            continue
        value = float(score(item["params"]))
        evaluated.append({"param": item["param"], "change": item["change"], "params": item["params"],
                          "value": value, "ratio": _ratio(value, base)})

    def drop(value):
        return (base - value) / abs(base) if base != 0 and value is not None else None

    values = np.array([e["value"] for e in evaluated], dtype=np.float64)
    mean_value = float(values.mean()) if len(values) else None
    min_value = float(values.min()) if len(values) else None
    per_param = {}
    for p in cls.params:
        own = [e["value"] for e in evaluated if e["param"] == p.name]
        if own:
            per_param[p.name] = {"mean_value": float(np.mean(own)), "min_value": float(np.min(own)),
                                 "relative_drop": drop(float(np.mean(own)))}
    return {
        "base_value": base,
        "relative_step": relative_step,
        "neighbours": evaluated,
        "skipped": skipped,
        "n_evaluated": len(evaluated),
        "mean_value": mean_value,
        "min_value": min_value,
        "mean_ratio": _ratio(mean_value, base) if mean_value is not None else None,
        "min_ratio": _ratio(min_value, base) if min_value is not None else None,
        "relative_drop": drop(mean_value),
        "worst_relative_drop": drop(min_value),
        "per_param": per_param,
    }
