"""Half-open integer intervals [start, end): union, difference, runs of consecutive bars.

Pure functions on sorted lists of (start, end) tuples; used for coverage, gaps and retention.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Interval = tuple[int, int]


def union(*groups: Iterable[Interval]) -> list[Interval]:
    """Merge overlapping or touching intervals into a sorted disjoint list."""
    items = sorted((int(a), int(b)) for group in groups for a, b in group if b > a)
    out: list[Interval] = []
    for a, b in items:
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def subtract(base: Iterable[Interval], remove: Iterable[Interval]) -> list[Interval]:
    """Parts of `base` not in `remove` (both any order; result sorted and disjoint)."""
    result: list[Interval] = []
    cuts = union(remove)
    for a, b in union(base):
        start = a
        for c, d in cuts:
            if d <= start or c >= b:
                continue
            if c > start:
                result.append((start, c))
            start = max(start, d)
            if start >= b:
                break
        if start < b:
            result.append((start, b))
    return result


def intersect(base: Iterable[Interval], window: Interval) -> list[Interval]:
    lo, hi = window
    return [(max(a, lo), min(b, hi)) for a, b in union(base) if b > lo and a < hi]


def total(intervals: Iterable[Interval]) -> int:
    return sum(b - a for a, b in intervals)


def runs(times: np.ndarray, step: int) -> list[Interval]:
    """Sorted, strictly increasing open times → [(first, last + step), ...] of consecutive bars."""
    if len(times) == 0:
        return []
    breaks = np.flatnonzero(np.diff(times) != step)
    starts = np.r_[times[0], times[breaks + 1]]
    ends = np.r_[times[breaks], times[-1]] + step
    return list(zip(starts.tolist(), ends.tolist()))


def contains(intervals: list[Interval], times: np.ndarray) -> np.ndarray:
    """Mask of `times` inside any of the sorted disjoint `intervals`."""
    if not intervals or len(times) == 0:
        return np.zeros(len(times), dtype=bool)
    starts = np.fromiter((a for a, _ in intervals), dtype=np.int64, count=len(intervals))
    ends = np.fromiter((b for _, b in intervals), dtype=np.int64, count=len(intervals))
    idx = np.searchsorted(starts, times, side="right") - 1
    inside = idx >= 0
    inside[inside] = times[inside] < ends[idx[inside]]
    return inside
