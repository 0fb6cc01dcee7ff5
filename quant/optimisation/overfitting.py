"""Selection-bias statistics: deflated Sharpe ratio and probability of backtest overfitting.

Every Sharpe ratio here is PER PERIOD (per bar: ``mean(r) / std(r, ddof=1)``), not
annualised, because that is the unit of the formulas; multiply by ``sqrt(bars_per_year)``
to annualise a Sharpe, and a variance of Sharpes by ``bars_per_year``.

Deflated Sharpe ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5), 2014)::

    SR0 = sqrt(V[SR_n]) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))     γ = 0.5772… (Euler–Mascheroni)
    DSR = PSR(SR0) = Φ( (SR - SR0) sqrt(T - 1) / sqrt(1 - γ3 SR + (γ4 - 1)/4 SR²) )

SR0 is the Sharpe ratio the best of N unskilled trials (true Sharpe 0) would show; DSR is
the probability that the selected strategy's true Sharpe exceeds it, given T returns with
skewness γ3 and (non-excess) kurtosis γ4.

Probability of backtest overfitting by combinatorially symmetric cross-validation (Bailey,
Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting", J. Computational
Finance 20(4), 2017; SSRN 2326253): split the T×N matrix of per-period returns of N
configurations into S contiguous blocks; for each of the C(S, S/2) ways to pick half the
blocks as in-sample (the rest out-of-sample) find the in-sample best configuration, its
relative rank ω = rank / (N + 1) out of sample (rank N = best) and the logit
λ = ln(ω / (1 - ω)). PBO is the share of combinations with λ <= 0, i.e. where the
in-sample winner is at or below the out-of-sample median.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "EULER_GAMMA", "expected_max_sharpe", "probabilistic_sharpe", "deflated_sharpe_ratio",
    "sharpe_moments", "dsr_report", "BlockStats", "pbo_cscv", "pbo_from_block_stats",
]

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
_MAX_PARTITIONS = 20
_COMBINATION_CHUNK = 4096


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# --------------------------------------------------------------------------- deflated Sharpe

def expected_max_sharpe(sr_variance: float, n_trials: int, *, sr_mean: float = 0.0) -> float:
    """Expected maximum Sharpe of ``n_trials`` independent trials whose Sharpes have mean
    ``sr_mean`` and variance ``sr_variance`` (false-strategy theorem approximation).

    ``n_trials <= 1`` → ``sr_mean`` (no selection). Raises ValueError for a negative variance.
    """
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials <= 1:
        return float(sr_mean)
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(sr_mean + math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def probabilistic_sharpe(sharpe: float, *, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0,
                         benchmark: float = 0.0) -> float:
    """Probability that the true per-period Sharpe exceeds ``benchmark`` (PSR, Bailey &
    López de Prado 2012). ``kurtosis`` is non-excess (3 for a normal). NaN when undefined
    (fewer than 2 observations or a non-positive variance term)."""
    if n_obs < 2 or not all(map(math.isfinite, (sharpe, skew, kurtosis, benchmark))):
        return math.nan
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if denom <= 0:
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom))


def deflated_sharpe_ratio(sharpe: float, *, n_obs: int, skew: float, kurtosis: float,
                          sr_variance: float, n_trials: int) -> float:
    """DSR = PSR(SR0) with SR0 = :func:`expected_max_sharpe` (``sr_variance``, ``n_trials``).

    All Sharpe inputs per period. NaN when undefined.
    """
    return probabilistic_sharpe(sharpe, n_obs=n_obs, skew=skew, kurtosis=kurtosis,
                                benchmark=expected_max_sharpe(sr_variance, n_trials))


def sharpe_moments(returns) -> tuple[float, float, float, int]:
    """``(sharpe, skew, kurtosis, n)`` of per-period returns: Sharpe = mean / std(ddof=1);
    skew and (non-excess) kurtosis are population moments, as in
    :func:`quant.metrics.equity_stats`. NaN where undefined."""
    r = np.asarray(returns, dtype=np.float64)
    n = len(r)
    if n < 2:
        return math.nan, math.nan, math.nan, n
    mean = r.mean()
    d = r - mean
    m2 = float(np.mean(d * d))
    std = math.sqrt(m2 * n / (n - 1))
    if not m2 > 0:
        return math.nan, math.nan, math.nan, n
    skew = float(np.mean(d ** 3)) / m2 ** 1.5
    kurt = float(np.mean(d ** 4)) / (m2 * m2)
    return float(mean / std), skew, kurt, n


def dsr_report(returns, trial_sharpes, *, n_trials: int | None = None,
               bars_per_year: float | None = None) -> dict:
    """Deflated Sharpe of the selected strategy's per-bar ``returns`` against the per-bar
    Sharpes of every configuration tried (``trial_sharpes``; their variance sets SR0).

    ``n_trials`` defaults to ``len(trial_sharpes)``; pass the number of trials actually run
    when it is larger (pruned trials were tried too). Returns a JSON-safe dict: ``value``
    (DSR), ``sharpe`` and ``sr0`` per bar, their annualised versions when ``bars_per_year``
    is given, ``sr_variance``, ``n_trials``, ``n_obs``, ``skew``, ``kurtosis``. ``value``
    is None when fewer than two finite trial Sharpes exist or the returns have no variance.
    """
    sharpes = np.asarray([s for s in trial_sharpes if s is not None and math.isfinite(s)], dtype=np.float64)
    n_trials = int(n_trials if n_trials is not None else len(sharpes))
    sr, skew, kurt, n_obs = sharpe_moments(returns)
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) >= 2 else math.nan
    sr0 = expected_max_sharpe(variance, n_trials) if math.isfinite(variance) else math.nan
    value = probabilistic_sharpe(sr, n_obs=n_obs, skew=skew, kurtosis=kurt, benchmark=sr0) \
        if math.isfinite(sr0) else math.nan
    scale = math.sqrt(bars_per_year) if bars_per_year else None
    return {
        "value": _finite(value),
        "sharpe": _finite(sr),
        "sr0": _finite(sr0),
        "sharpe_annualised": _finite(sr * scale) if scale else None,
        "sr0_annualised": _finite(sr0 * scale) if scale else None,
        "sr_variance": _finite(variance),
        "n_trials": n_trials,
        "n_configs": int(len(sharpes)),
        "n_obs": int(n_obs),
        "skew": _finite(skew),
        "kurtosis": _finite(kurt),
    }


# --------------------------------------------------------------------------- CSCV / PBO

@dataclass
class BlockStats:
    """Sufficient statistics of a T×N return matrix cut into S contiguous blocks.

    ``counts[s]`` rows in block s; ``mu[j]`` the full-sample mean of column j; ``m1[s, j]``
    and ``m2[s, j]`` the sums of ``r - mu[j]`` and ``(r - mu[j])**2`` over block s
    (centred so that variances of any union of blocks are computed without cancellation);
    ``nonzero[s, j]`` how many returns of column j in block s are not exactly zero. A half in
    which a configuration never moved (did not trade) has no Sharpe: its variance, rebuilt
    from centred sums, would be float noise (~1e-20, Sharpe ~1e-8), not zero, so the count
    decides instead. Built column by column, so the full matrix never has to exist.
    """

    counts: np.ndarray
    mu: np.ndarray
    m1: np.ndarray
    m2: np.ndarray
    nonzero: np.ndarray | None = None

    @property
    def n_partitions(self) -> int:
        return len(self.counts)

    @property
    def n_configs(self) -> int:
        return len(self.mu)

    @staticmethod
    def bounds(n_rows: int, n_partitions: int) -> np.ndarray:
        """Block start indices plus ``n_rows`` (sizes differ by at most one, like np.array_split)."""
        sizes = [len(a) for a in np.array_split(np.arange(n_rows), n_partitions)]
        return np.concatenate(([0], np.cumsum(sizes)))

    @classmethod
    def from_columns(cls, columns, n_partitions: int) -> "BlockStats":
        """From an iterable of equal-length 1-d return arrays (one per configuration)."""
        _check_partitions(n_partitions)
        mus, m1s, m2s, nzs = [], [], [], []
        n_rows = None
        edges = None
        for col in columns:
            r = np.asarray(col, dtype=np.float64)
            if n_rows is None:
                n_rows = len(r)
                if n_rows < 2 * n_partitions:
                    raise ValueError(f"CSCV needs at least 2 rows per partition: {n_rows} rows "
                                     f"for {n_partitions} partitions")
                edges = cls.bounds(n_rows, n_partitions)
            elif len(r) != n_rows:
                raise ValueError(f"all return series must have the same length ({n_rows}), got {len(r)}")
            if not np.all(np.isfinite(r)):
                raise ValueError("returns must be finite")
            mu = r.mean()
            c = r - mu
            mus.append(mu)
            m1s.append(np.add.reduceat(c, edges[:-1]))
            m2s.append(np.add.reduceat(c * c, edges[:-1]))
            nzs.append(np.add.reduceat((r != 0.0).astype(np.float64), edges[:-1]))
        if n_rows is None:
            raise ValueError("no return series given")
        return cls(np.diff(edges).astype(np.float64), np.asarray(mus),
                   np.stack(m1s, axis=1), np.stack(m2s, axis=1), np.stack(nzs, axis=1))

    @classmethod
    def from_matrix(cls, returns, n_partitions: int) -> "BlockStats":
        """From a T×N matrix (rows = periods, columns = configurations)."""
        matrix = np.asarray(returns, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"expected a T×N matrix, got shape {matrix.shape}")
        return cls.from_columns(matrix.T, n_partitions)


def _check_partitions(n_partitions: int) -> None:
    if isinstance(n_partitions, bool) or not isinstance(n_partitions, int) or n_partitions < 2 \
            or n_partitions % 2 or n_partitions > _MAX_PARTITIONS:
        raise ValueError(f"number of CSCV partitions must be an even integer from 2 to {_MAX_PARTITIONS}, "
                         f"got {n_partitions!r}")


def _performance(mask: np.ndarray, stats: BlockStats, metric: str) -> np.ndarray:
    """Metric of every configuration on the union of the blocks selected by each row of ``mask``."""
    n = mask @ stats.counts                       # (C,)
    s1 = mask @ stats.m1                          # (C, N)
    mean = stats.mu[None, :] + s1 / n[:, None]
    still = (mask @ stats.nonzero == 0) if stats.nonzero is not None else np.zeros(mean.shape, dtype=bool)
    if metric == "mean":
        mean[still] = np.nan
        return mean
    s2 = mask @ stats.m2
    var = (s2 - s1 * s1 / n[:, None]) / (n[:, None] - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = mean / np.sqrt(var)
    sharpe[~(var > 1e-300) | still] = np.nan
    return sharpe


def pbo_from_block_stats(stats: BlockStats, *, metric: str = "sharpe", return_logits: bool = False) -> dict:
    """PBO by CSCV from :class:`BlockStats` (see the module docstring).

    ``metric``: "sharpe" (per-period mean / std) or "mean". A configuration whose metric is
    undefined on a half (no variance, or not a single non-zero return: it never traded there)
    ranks last there and is never the in-sample best unless every configuration is undefined. Ties out of sample share the average
    rank. Returns ``pbo``, ``n_combinations``, ``n_partitions``, ``n_configs``,
    ``logit_median``, ``prob_oos_loss`` (share of combinations where the in-sample best has
    a negative out-of-sample metric), ``degradation_slope`` (least-squares slope of the
    in-sample best's OOS metric on its IS metric across combinations) and, if asked,
    ``logits``. Raises ValueError with fewer than 2 configurations.
    """
    if metric not in ("sharpe", "mean"):
        raise ValueError(f"metric must be 'sharpe' or 'mean', got {metric!r}")
    if stats.n_configs < 2:
        raise ValueError(f"PBO needs at least 2 configurations, got {stats.n_configs}")
    s, n_cfg = stats.n_partitions, stats.n_configs
    logits, best_is, best_oos = [], [], []
    combos = itertools.combinations(range(s), s // 2)
    while True:
        chunk = list(itertools.islice(combos, _COMBINATION_CHUNK))
        if not chunk:
            break
        mask = np.zeros((len(chunk), s))
        for row, combo in enumerate(chunk):
            mask[row, list(combo)] = 1.0
        is_perf = np.nan_to_num(_performance(mask, stats, metric), nan=-np.inf)
        oos_perf = np.nan_to_num(_performance(1.0 - mask, stats, metric), nan=-np.inf)
        best = np.argmax(is_perf, axis=1)                     # ties: the first configuration
        rows = np.arange(len(chunk))
        chosen = oos_perf[rows, best][:, None]
        below = np.sum(oos_perf < chosen, axis=1)
        equal = np.sum(oos_perf == chosen, axis=1)            # includes the chosen one
        rank = below + (equal + 1) / 2.0                      # 1 = worst, n_cfg = best
        omega = rank / (n_cfg + 1.0)
        logits.append(np.log(omega / (1.0 - omega)))
        best_is.append(is_perf[rows, best])
        best_oos.append(oos_perf[rows, best])
    lam = np.concatenate(logits)
    x, y = np.concatenate(best_is), np.concatenate(best_oos)
    ok = np.isfinite(x) & np.isfinite(y)
    slope = float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 and np.ptp(x[ok]) > 0 else None
    result = {
        "pbo": float(np.mean(lam <= 0.0)),
        "n_combinations": int(len(lam)),
        "n_partitions": int(s),
        "n_configs": int(n_cfg),
        "n_obs": int(stats.counts.sum()),
        "metric": metric,
        "logit_median": float(np.median(lam)),
        "prob_oos_loss": float(np.mean(y < 0.0)),
        "degradation_slope": _finite(slope),
    }
    if return_logits:
        result["logits"] = lam.tolist()
    return result


def pbo_cscv(returns, *, n_partitions: int = 16, metric: str = "sharpe", return_logits: bool = False) -> dict:
    """PBO of a T×N matrix of per-period returns (rows = periods, columns = configurations).

    ``n_partitions`` S: even, 2..20 (C(16, 8) = 12,870 combinations is the usual choice).
    See :func:`pbo_from_block_stats` for the result.
    """
    return pbo_from_block_stats(BlockStats.from_matrix(returns, n_partitions), metric=metric,
                                return_logits=return_logits)
