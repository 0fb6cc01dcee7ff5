"""Hold-out split and walk-forward folds, as half-open bar index ranges. Pure numpy.

Layout of a training period of ``n`` bars::

    |<---------------- optimisation range ---------------->|<--- hold-out --->|
    | warm-up | IS 0      | OOS 0 | OOS 1 | ... | OOS k-1  |                  |
                          (rolling: IS i slides so it ends where OOS i starts;
                           anchored: IS i always starts at the first IS bar)

Rules every function here guarantees (and ``tests/backtests/test_walkforward.py`` checks):

* Ranges are half-open bar indices ``[start, end)`` into the bars the caller passed.
* The hold-out is the final share of the period. The optimiser only ever gets the
  optimisation range; nothing in a fold reaches ``optimise.end`` or beyond.
* Within a fold, in-sample (IS) and out-of-sample (OOS) windows do not overlap and the OOS
  window starts where the IS window ends. OOS windows are contiguous and do not overlap
  across folds; they tile the end of the optimisation range.
* ``warmup`` bars are read from BEFORE a window's start so indicators are defined (and,
  for recursive ones, converged: the one rule of :mod:`quant.strategies.warmup`) on its
  first bar; trades and metrics count only inside ``[start, end)``; the warm-up bars are
  never traded nor counted. No window ever reads a
  bar at or after its own ``end``. The folds reserve the first ``warmup_bars`` bars of the
  range for this, so every window gets its full warm-up. The hold-out's warm-up reads the
  end of the optimisation range: that is the past, which a live strategy would also see.
* Times, when a time array (or Bars) is given, are epoch ms: ``start_ms`` is the open time
  of the first bar and ``end_ms`` the close time of the last bar (= the open of the next
  one), so times are half-open too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Window", "Fold", "SCHEMES", "DEFAULT_IS_TO_OOS_RATIO", "MIN_WINDOW_BARS",
           "holdout_split", "folds"]

SCHEMES = ("rolling", "anchored")

DEFAULT_IS_TO_OOS_RATIO = 3
"""When neither window length is given, each in-sample window is (at least) this many times
as long as an out-of-sample window: a common walk-forward proportion that leaves enough
in-sample bars to fit and enough OOS windows to judge."""

MIN_WINDOW_BARS = 2
"""Shortest window that has a per-bar return (equity at two closes)."""


@dataclass(frozen=True)
class Window:
    """Bars ``[start, end)`` whose trades and metrics count, reading ``warmup`` bars before.

    ``start_ms`` / ``end_ms`` are epoch ms (open of the first bar, close of the last) when
    the caller gave times, else None.
    """

    start: int
    end: int
    warmup: int = 0
    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def read_start(self) -> int:
        """First bar the strategy may read (``start - warmup``)."""
        return self.start - self.warmup

    @property
    def n_bars(self) -> int:
        """Bars that count (``end - start``)."""
        return self.end - self.start

    @property
    def range(self) -> tuple[int, int]:
        """``(start, end)``."""
        return self.start, self.end

    def to_dict(self) -> dict:
        """JSON-able: ``start``/``end`` in epoch ms (None without times), the bar indices
        ``start_index``/``end_index`` (half-open) and ``warmup_bars``."""
        return {"start": self.start_ms, "end": self.end_ms, "start_index": self.start,
                "end_index": self.end, "warmup_bars": self.warmup}


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: optimise on ``in_sample``, then test on ``out_of_sample``."""

    index: int
    in_sample: Window
    out_of_sample: Window

    def to_dict(self) -> dict:
        """JSON-able: ``{"index", "in_sample": {...}, "out_of_sample": {...}}``."""
        return {"index": self.index, "in_sample": self.in_sample.to_dict(),
                "out_of_sample": self.out_of_sample.to_dict()}


# --------------------------------------------------------------------------- helpers

def _length_and_times(n_or_time, bar_ms: int | None) -> tuple[int, np.ndarray | None, int | None]:
    """Accept an int, an int64 time array (epoch ms of bar opens) or a Bars object; returns the
    bar count, the times and the close time of the last bar (None when unknown)."""
    if hasattr(n_or_time, "time") and hasattr(n_or_time, "end_ms"):  # Bars: their own grid (months too)
        return len(n_or_time), np.asarray(n_or_time.time, dtype=np.int64), n_or_time.end_ms
    if isinstance(n_or_time, (int, np.integer)) and not isinstance(n_or_time, bool):
        if n_or_time < 0:
            raise ValueError(f"number of bars must be >= 0, got {n_or_time}")
        return int(n_or_time), None, None
    time = np.asarray(n_or_time)
    if time.ndim != 1 or time.dtype.kind not in "iu":
        raise ValueError("expected a number of bars, a 1-d integer array of epoch-ms times, or Bars")
    time = time.astype(np.int64, copy=False)
    if bar_ms is None and len(time) > 1:
        bar_ms = int(np.min(np.diff(time)))  # gaps only make differences longer
    return len(time), time, (int(time[-1]) + bar_ms if bar_ms is not None and len(time) else None)


def _window(start: int, end: int, warmup: int, time: np.ndarray | None, last_end_ms: int | None) -> Window:
    if time is None or start >= end:
        return Window(start, end, warmup)
    end_ms = int(time[end]) if end < len(time) else last_end_ms
    return Window(start, end, warmup, int(time[start]), end_ms)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- public API

def holdout_split(n_or_time, holdout_share: float, *, warmup_bars: int = 0,
                  bar_ms: int | None = None) -> tuple[Window, Window]:
    """Split a period into ``(optimise, holdout)``; the hold-out is the final share.

    ``n_or_time``: a bar count, the bars' open times (epoch ms) or a Bars object.
    ``holdout_share`` in (0, 1): the hold-out gets ``round(n * share)`` bars (at least one).
    The optimiser must only ever see ``optimise`` (``[0, n - n_holdout)``). The hold-out
    window reads ``min(warmup_bars, optimise.end)`` warm-up bars from the end of the
    optimisation range (the past). Raises ValueError for a share outside (0, 1) or when
    either part would be empty.
    """
    n, time, last_end = _length_and_times(n_or_time, bar_ms)
    if isinstance(holdout_share, bool) or not isinstance(holdout_share, (int, float)) \
            or not 0.0 < float(holdout_share) < 1.0:
        raise ValueError(f"holdout share must be a fraction strictly between 0 and 1, got {holdout_share!r}")
    if warmup_bars < 0:
        raise ValueError(f"warmup_bars must be >= 0, got {warmup_bars}")
    n_holdout = int(round(n * float(holdout_share)))
    if n_holdout < 1:
        raise ValueError(f"a hold-out share of {holdout_share} of {n} bars is less than one bar")
    split = n - n_holdout
    if split < MIN_WINDOW_BARS:
        raise ValueError(f"a hold-out share of {holdout_share} of {n} bars leaves {split} bar(s) "
                         f"to optimise on; need at least {MIN_WINDOW_BARS}")
    return (_window(0, split, 0, time, last_end),
            _window(split, n, min(int(warmup_bars), split), time, last_end))


def folds(n_or_time, *, k: int, scheme: str = "rolling", in_sample_bars: int | None = None,
          out_of_sample_bars: int | None = None, warmup_bars: int = 0,
          bar_ms: int | None = None) -> list[Fold]:
    """Walk-forward folds over the OPTIMISATION range only (pass ``optimise`` bars/times).

    ``k`` folds; OOS windows of equal length tile the end of the range. ``scheme``:
    "rolling" (each IS window has the same length and ends where its OOS starts) or
    "anchored" (every IS window starts at the first usable bar and grows).

    Window lengths: with neither given, OOS = usable // (k + DEFAULT_IS_TO_OOS_RATIO) and
    the first IS window takes the rest (>= 3 x OOS), where usable = n - warmup_bars. With one
    given, the other fills the usable bars (OOS rounds down; spare bars go to the first IS
    window). With both, the folds sit at the end of the range and earlier bars go unused.
    For "anchored", ``in_sample_bars`` is the length of the FIRST IS window.

    The first ``warmup_bars`` bars are reserved so every window (IS and OOS) has its full
    warm-up before ``start``. Raises ValueError with the numbers when the configuration
    cannot fit (too few bars for k folds, non-positive lengths, unknown scheme).
    """
    n, time, last_end = _length_and_times(n_or_time, bar_ms)
    k = _positive_int("k (number of folds)", k)
    if scheme not in SCHEMES:
        raise ValueError(f"walk-forward scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if isinstance(warmup_bars, bool) or not isinstance(warmup_bars, (int, np.integer)) or warmup_bars < 0:
        raise ValueError(f"warmup_bars must be an integer >= 0, got {warmup_bars!r}")
    if in_sample_bars is not None:
        in_sample_bars = _positive_int("in_sample_bars", in_sample_bars)
    if out_of_sample_bars is not None:
        out_of_sample_bars = _positive_int("out_of_sample_bars", out_of_sample_bars)
    usable = n - int(warmup_bars)
    need = MIN_WINDOW_BARS * (k + 1)
    if usable < need:
        raise ValueError(
            f"too few bars for {k} folds: {n} bars minus {warmup_bars} warm-up bars leave {max(usable, 0)}; "
            f"an in-sample window and {k} out-of-sample windows need at least {need}")

    if in_sample_bars is None and out_of_sample_bars is None:
        oos = usable // (k + DEFAULT_IS_TO_OOS_RATIO)
        is_len = usable - k * oos
    elif in_sample_bars is None:
        oos = out_of_sample_bars
        is_len = usable - k * oos
    elif out_of_sample_bars is None:
        is_len = in_sample_bars
        oos = (usable - is_len) // k
    else:
        is_len, oos = in_sample_bars, out_of_sample_bars
    if oos < MIN_WINDOW_BARS:
        raise ValueError(f"out-of-sample windows of {oos} bar(s) are too short for {k} folds over "
                         f"{usable} usable bars; need at least {MIN_WINDOW_BARS} each")
    if is_len < MIN_WINDOW_BARS:
        raise ValueError(f"in-sample window of {is_len} bar(s) is too short: {k} out-of-sample windows "
                         f"of {oos} bars leave {usable - k * oos} of {usable} usable bars")
    if is_len + k * oos > usable:
        raise ValueError(f"{k} folds of {is_len} in-sample + {oos} out-of-sample bars need "
                         f"{is_len + k * oos} bars but only {usable} are usable "
                         f"({n} bars minus {warmup_bars} warm-up)")

    base = n - (is_len + k * oos)  # first IS bar; >= warmup_bars by the checks above
    result = []
    for i in range(k):
        oos_start = base + is_len + i * oos
        is_start = base if scheme == "anchored" else oos_start - is_len
        result.append(Fold(
            index=i,
            in_sample=_window(is_start, oos_start, int(warmup_bars), time, last_end),
            out_of_sample=_window(oos_start, oos_start + oos, int(warmup_bars), time, last_end),
        ))
    return result
