"""A validated training candidate as typed config evidence: its chained walk-forward
out-of-sample result and its hold-out result, each with the period, the candles' fingerprint,
trades, Sharpe, drawdown, return, and the training's OOS Sharpe, DSR and PBO.

Kept apart from services.py so the training worker can change without touching this mapping;
it reads only the result's documented keys (quant/optimisation/README.md) and writes a row only
for what was measured (a trial that was not validated has no out-of-sample evidence).
"""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from apps.marketdata.selectors import candles_as_arrays
from apps.strategies.models import EvidenceSource
from quant.strategies import Bars
from quant.strategies.provenance import bars_fingerprint


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class _Fingerprints:
    """Fingerprints of spans of one market × timeframe, read from the candle store once."""

    def __init__(self, market, timeframe: str):
        self.market, self.timeframe = market, timeframe
        self.bars, self.span = None, (0, 0)

    def of(self, start_ms: int, end_ms: int) -> str:
        if self.bars is None or not (self.span[0] <= start_ms and end_ms <= self.span[1]):
            a = candles_as_arrays(self.market, self.timeframe, start_ms=start_ms, end_ms=end_ms)
            self.bars = Bars(a.time, a.open, a.high, a.low, a.close, a.volume, self.timeframe)
            self.span = (start_ms, end_ms)
        lo, hi = np.searchsorted(self.bars.time, [start_ms, end_ms])
        return bars_fingerprint(self.bars[lo:hi])


def _figures(metrics: dict) -> dict:
    return {"trades": int(metrics.get("trade_count") or 0), "sharpe": metrics.get("sharpe"),
            "max_drawdown": metrics.get("max_drawdown"), "total_return": metrics.get("total_return")}


def candidate_evidence(candidate: dict | None, result: dict, *, market, timeframe: str, run=None,
                       code_version: str = "") -> list[dict]:
    """config_evidence_record arguments for `candidate` (a validated candidate of `result`):
    an out-of-sample row (first to last OOS bar of the folds, chained metrics) and a hold-out
    row. Both carry the training's OOS Sharpe, the candidate's DSR and the study's PBO."""
    if not candidate:
        return []
    period = result.get("period") or {}
    prints = _Fingerprints(market, timeframe)
    if period.get("start") is not None and period.get("end") is not None:
        prints.of(period["start"], period["end"])  # one read serves every span inside the period
    # The walk-forward out-of-sample result belongs to the run (each fold tested the parameters
    # its own study chose), not to one candidate: it is the evidence for the process that chose it.
    walkforward = candidate.get("out_of_sample") or result.get("out_of_sample") or {}
    oos = walkforward.get("metrics")
    shared = {"oos_sharpe": (oos or {}).get("sharpe"), "dsr": (candidate.get("dsr") or {}).get("value"),
              "pbo": result.get("pbo"), "code_version": code_version, "run": run, "trial": candidate.get("number")}
    rows = []
    windows = [f["out_of_sample"] for f in candidate.get("folds") or result.get("folds") or []
               if (f.get("out_of_sample") or {}).get("start") is not None]
    if oos and windows:
        start, end = min(w["start"] for w in windows), max(w["end"] for w in windows)
        rows.append({"source": EvidenceSource.TRAINING_OOS, "period_start": _dt(start), "period_end": _dt(end),
                     "fingerprint": prints.of(start, end), "metrics": oos, **_figures(oos), **shared,
                     "reason": f"walk-forward out-of-sample of {len(windows)} fold(s)"})
    holdout = candidate.get("holdout") or {}
    if holdout.get("metrics") and holdout.get("start") is not None:
        rows.append({"source": EvidenceSource.HOLDOUT, "period_start": _dt(holdout["start"]),
                     "period_end": _dt(holdout["end"]), "fingerprint": prints.of(holdout["start"], holdout["end"]),
                     "metrics": holdout["metrics"], **_figures(holdout["metrics"]), **shared,
                     "reason": "hold-out, never seen by the optimiser"})
    return rows
