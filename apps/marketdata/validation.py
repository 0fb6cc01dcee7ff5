"""Vectorised checks of a page of candles before it is stored.

Rejected (not stored): missing/non-numeric values, prices ≤ 0, high below max(open, close),
low above min(open, close), negative volume, and values no market can have: a price above
MAX_PRICE or a volume above MAX_VOLUME, or a close IMPLAUSIBLE_JUMP× away from the median of
the five bars centred on it (stored candles included) — a broken value, not a move
(kind bad_ohlc); a time off the timeframe's grid
(misaligned); a time seen earlier in the page (duplicate); a time earlier than one before it
(out_of_order). Flagged but stored, because markets do move like that: a close-to-close jump
far beyond the page's typical move (outlier) and a run of flat bars with no volume (stale).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .arrays import CandleArrays
from .timeframes import aligned, bar_close, ms_to_iso

OUTLIER_MIN_LOG_MOVE = 0.15  # a close-to-close move beyond ±16 % in one bar is always worth a look
OUTLIER_MEDIAN_MULTIPLE = 30  # ...and so is one 30× the page's median move
OUTLIER_MIN_ROWS = 20  # below this the median move says too little; use only the floor above
STALE_MIN_RUN = 10  # flat bars (open = high = low = close, no volume) in a row
MAX_PRICE = 1e12  # above any asset's price in any quote currency (BTC/VND is ~2.5e9)
MAX_VOLUME = 1e18
IMPLAUSIBLE_JUMP = 100.0  # two orders of magnitude against the neighbours' median close


@dataclass
class Finding:
    kind: str
    start_ms: int
    end_ms: int
    detail: str
    rejected: bool = True
    row_count: int = 1
    sample: dict = field(default_factory=dict)


@dataclass
class PageCheck:
    good: np.ndarray  # bool mask of rows to store
    findings: list[Finding]

    @property
    def rejected(self) -> int:
        return int((~self.good).sum())

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + f.row_count
        return out


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _sample(raw: np.ndarray, i: int) -> dict:
    return {k: _num(raw[j][i]) for j, k in enumerate(("time", "open", "high", "low", "close", "volume"))}


def check_page(raw_time: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
               v: np.ndarray, timeframe: str, context: tuple[np.ndarray, np.ndarray] | None = None) -> PageCheck:
    """Check rows (times as float64 or int64 ms, NaN for missing) and say which to store.

    `context`: (times, closes) of stored candles around the page, the neighbours a page's
    closes are compared with (a stored candle at a time the page also has is ignored).

    Each rejected row yields one Finding (kind, its time, a detail naming the problem and the
    values); outliers and stale runs yield findings with rejected=False.
    """
    t_f = np.asarray(raw_time, dtype=np.float64)
    cols = [np.asarray(x, dtype=np.float64) for x in (o, h, lo, c, v)]
    o, h, lo, c, v = cols
    raw = [t_f, *cols]
    n = len(t_f)
    findings: list[Finding] = []
    bad = np.zeros(n, dtype=bool)
    names = ("open", "high", "low", "close", "volume")

    time_ok = np.isfinite(t_f)
    t = np.where(time_ok, t_f, 0).astype(np.int64)
    # each row's bar end (a finding covers [t, end)); months differ in length. Clipped to the
    # years datetime64 handles: an absurd time is rejected below either way.
    end = bar_close(np.clip(t, -(2 ** 50), 2 ** 50), timeframe)
    for i in np.flatnonzero(~time_ok):
        bad[i] = True  # no time, no key: counted as rejected, cannot be filed under a time

    nan = ~np.isfinite(np.vstack(cols)) if n else np.zeros((5, 0), bool)
    missing = nan.any(axis=0) & time_ok
    for i in np.flatnonzero(missing):
        which = ", ".join(names[j] for j in range(5) if nan[j, i])
        findings.append(Finding("bad_ohlc", int(t[i]), int(end[i]),
                                f"missing or non-numeric {which} at {ms_to_iso(t[i])}", sample=_sample(raw, i)))
    bad |= missing

    with np.errstate(invalid="ignore"):
        checks = [
            ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), lambda i: f"price ≤ 0 (open {o[i]}, high {h[i]}, low {lo[i]}, close {c[i]})"),
            (h < np.maximum(o, c), lambda i: f"high {h[i]} is below max(open, close) {max(o[i], c[i])}"),
            (lo > np.minimum(o, c), lambda i: f"low {lo[i]} is above min(open, close) {min(o[i], c[i])}"),
            (v < 0, lambda i: f"negative volume {v[i]}"),
            (np.maximum(np.maximum(o, h), np.maximum(lo, c)) > MAX_PRICE,
             lambda i: f"price {max(o[i], h[i], lo[i], c[i]):g} is beyond any plausible price (> {MAX_PRICE:g})"),
            (v > MAX_VOLUME, lambda i: f"volume {v[i]:g} is beyond any plausible volume (> {MAX_VOLUME:g})"),
        ]
    for mask, say in checks:
        hit = mask & ~bad
        for i in np.flatnonzero(hit):
            findings.append(Finding("bad_ohlc", int(t[i]), int(end[i]), f"{say(i)} at {ms_to_iso(t[i])}",
                                    sample=_sample(raw, i)))
        bad |= hit

    off_grid = ~aligned(t, timeframe) & time_ok
    for i in np.flatnonzero(off_grid & ~bad):
        findings.append(Finding("misaligned", int(t[i]), int(end[i]),
                                f"time {ms_to_iso(t[i])} is not on the {timeframe} grid", sample=_sample(raw, i)))
    bad |= off_grid

    # Order is judged among the rows still good: a broken copy of a bar must not push out a good one.
    timed = np.flatnonzero(time_ok & ~bad)
    if len(timed) > 1:
        tt = t[timed]
        _, first = np.unique(tt, return_index=True)
        dup = np.ones(len(tt), dtype=bool)
        dup[first] = False
        prev_max = np.maximum.accumulate(np.r_[np.iinfo(np.int64).min, tt[:-1]])
        earlier = (tt < prev_max) & ~dup
        for k in np.flatnonzero(dup):
            i = timed[k]
            findings.append(Finding("duplicate", int(t[i]), int(end[i]),
                                    f"time {ms_to_iso(t[i])} appears more than once", sample=_sample(raw, i)))
        for k in np.flatnonzero(earlier):
            i = timed[k]
            findings.append(Finding("out_of_order", int(t[i]), int(end[i]),
                                    f"time {ms_to_iso(t[i])} comes after the later time {ms_to_iso(prev_max[k])}",
                                    sample=_sample(raw, i)))
        bad[timed[dup | earlier]] = True

    for i, median in _jumps(t, c, ~bad, context):
        findings.append(Finding("bad_ohlc", int(t[i]), int(end[i]),
                                f"close {c[i]:g} is {_times(c[i], median)} its neighbours' median {median:g} at "
                                f"{ms_to_iso(t[i])}: not a plausible price", sample=_sample(raw, i)))
        bad[i] = True
    good = ~bad
    findings += _flags(t, end, o, h, lo, c, v, good, raw)
    return PageCheck(good=good, findings=findings)


def _times(x: float, ref: float) -> str:
    ratio = x / ref
    return f"{ratio:,.0f}×" if ratio >= 1 else f"1/{1 / ratio:,.0f} of"


def _jumps(t, c, good, context) -> list[tuple[int, float]]:
    """Rows whose close is IMPLAUSIBLE_JUMP× away from the median close of the five bars
    centred on it (page rows and stored candles merged by time)."""
    idx = np.flatnonzero(good)
    if not len(idx):
        return []
    times, closes, page = t[idx], c[idx], np.ones(len(idx), bool)
    if context is not None and len(context[0]):
        ctx_t, ctx_c = np.asarray(context[0], np.int64), np.asarray(context[1], np.float64)
        keep = ~np.isin(ctx_t, times)
        times = np.r_[times, ctx_t[keep]]
        closes = np.r_[closes, ctx_c[keep]]
        page = np.r_[page, np.zeros(int(keep.sum()), bool)]
        order = np.argsort(times, kind="stable")
        times, closes, page = times[order], closes[order], page[order]
    if len(times) < 2:
        return []
    n = len(closes)
    if n >= 3:  # ends mirrored (c2 c1 | c0 c1 ...): the first bar is still judged by its neighbours
        padded = np.r_[closes[2], closes[1], closes, closes[-2], closes[-3]]
        median = np.partition(np.vstack([padded[k:k + n] for k in range(5)]), 2, axis=0)[2]
    else:
        median = np.full(n, np.median(closes))
    # the bar itself is in its window: one broken value among its neighbours cannot move the median
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = closes / median
    hit = page & np.isfinite(ratio) & ((ratio > IMPLAUSIBLE_JUMP) | (ratio < 1 / IMPLAUSIBLE_JUMP))
    # page rows appear in time order, as in idx
    page_pos = np.cumsum(page) - 1
    return [(int(idx[page_pos[k]]), float(median[k])) for k in np.flatnonzero(hit)]


def check_arrays(arrays: CandleArrays, timeframe: str) -> PageCheck:
    return check_page(arrays.time, arrays.open, arrays.high, arrays.low, arrays.close, arrays.volume, timeframe)


def _flags(t, end, o, h, lo, c, v, good, raw) -> list[Finding]:
    """Outliers and stale runs among the rows that will be stored."""
    out: list[Finding] = []
    idx = np.flatnonzero(good)
    if len(idx) > 1:
        moves = np.abs(np.diff(np.log(c[idx])))
        floor = OUTLIER_MIN_LOG_MOVE
        if len(moves) >= OUTLIER_MIN_ROWS:
            floor = max(floor, OUTLIER_MEDIAN_MULTIPLE * float(np.median(moves)))
        for k in np.flatnonzero(moves > floor):
            i, p = idx[k + 1], idx[k]
            pct = (c[i] / c[p] - 1) * 100
            out.append(Finding("outlier", int(t[i]), int(end[i]),
                               f"close moved {pct:+.1f} % in one bar ({c[p]} → {c[i]}) at {ms_to_iso(t[i])}",
                               rejected=False, sample=_sample(raw, i)))
    flat = good & (o == h) & (h == lo) & (lo == c) & (v == 0)
    if flat.sum() >= STALE_MIN_RUN:
        edges = np.diff(np.r_[0, flat.astype(np.int8), 0])
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if b - a >= STALE_MIN_RUN:
                out.append(Finding("stale", int(t[a]), int(end[b - 1]),
                                   f"{b - a} flat bars with no volume from {ms_to_iso(t[a])} to {ms_to_iso(t[b - 1])}",
                                   rejected=False, row_count=int(b - a), sample=_sample(raw, a)))
    return out
