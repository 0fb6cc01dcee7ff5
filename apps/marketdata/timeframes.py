"""Timeframes and times for market data: bar lengths, grid alignment, parsing user input.

Bar lengths and the bar grid (floor/ceil/aligned) come from the Django-free core
`quant.timeframes` (one table and one grid for the whole platform). Calendar months ("1M")
are stored too: they have no fixed length, so code that counts or walks bars uses
`bars_between`, `bar_close` and `grid_runs`, not a step in ms. Times are int epoch milliseconds, UTC, everywhere in market data; a bar is
identified by its OPEN time. Every timeframe's bars open on multiples of its length since the
epoch, except weeks, which open on Mondays (1970-01-05), as on exchanges.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime

import numpy as np

from quant.timeframes import (CALENDAR_TIMEFRAMES, TIMEFRAMES, aligned, ceil_time, check_grid_timeframe, close_times,
                              count_bars, floor_time, is_calendar, nominal_ms, timeframe_ms)
from tradepulse.core.times import check_datetime, check_ms

__all__ = [
    "TIMEFRAMES", "ALL_TIMEFRAMES", "timeframe_ms", "check_timeframe", "grid_offset", "floor_time", "ceil_time",
    "aligned", "bars_between", "bar_close", "grid_runs", "shift_bars", "nominal_ms", "is_calendar",
    "parse_time_ms", "ms_to_datetime", "ms_to_iso", "now_ms",
]

#: Every timeframe market data stores: the fixed ones and calendar months ("1M").
ALL_TIMEFRAMES: tuple[str, ...] = (*TIMEFRAMES, *CALENDAR_TIMEFRAMES)

_DAY_MS = 86_400_000
_WEEK_OFFSET_MS = 4 * _DAY_MS  # 1970-01-01 was a Thursday; weeks open on Monday


def check_timeframe(timeframe: str) -> str:
    """The timeframe if market data knows it (fixed or calendar), else ValueError naming them.
    Bars of months differ in length: count and step with the grid helpers below, never a step."""
    check_grid_timeframe(timeframe)
    return timeframe


def bars_between(start_ms: int, end_ms: int, timeframe: str) -> int:
    """Bars of the grid in [start_ms, end_ms) for on-grid bounds (coverage ranges, gaps, jobs):
    ``(end - start) // bar`` for fixed timeframes, calendar months counted as months."""
    if is_calendar(timeframe):
        return count_bars(start_ms, end_ms, timeframe)
    return (int(end_ms) - int(start_ms)) // timeframe_ms(timeframe)


def bar_close(open_ms, timeframe: str):
    """Close time (= the next open) of the bar(s) opening at ``open_ms`` (int or int64 array)."""
    if np.ndim(open_ms) == 0:
        return int(close_times(np.asarray([open_ms], dtype=np.int64), timeframe)[0])
    return close_times(open_ms, timeframe)


def shift_bars(t_ms: int, bars: int, timeframe: str) -> int:
    """``t_ms`` moved by ``bars`` whole bars (negative: back): ``t + bars * step`` for fixed
    timeframes; for months, the same position in the month ``bars`` months away, floored to
    its open (a time inside a month moves to that month's open)."""
    if is_calendar(timeframe):
        months = CALENDAR_TIMEFRAMES[timeframe] * int(bars)
        index = np.asarray([t_ms], dtype=np.int64).astype("datetime64[ms]").astype("datetime64[M]")
        return int((index + np.timedelta64(months, "M")).astype("datetime64[ms]").astype(np.int64)[0])
    return int(t_ms) + int(bars) * timeframe_ms(timeframe)


def grid_runs(times: np.ndarray, timeframe: str) -> list[tuple[int, int]]:
    """Sorted, strictly increasing open times → [(first, close of last), ...] of consecutive bars
    (consecutive: each opens where the previous one closes, months included)."""
    times = np.asarray(times, dtype=np.int64)
    if len(times) == 0:
        return []
    closes = close_times(times, timeframe)
    breaks = np.flatnonzero(times[1:] != closes[:-1])
    starts = np.r_[times[0], times[breaks + 1]]
    ends = np.r_[closes[breaks], closes[-1]]
    return list(zip(starts.tolist(), ends.tolist()))


def grid_offset(timeframe: str) -> int:
    return _WEEK_OFFSET_MS if timeframe == "1w" else 0


# floor_time, ceil_time and aligned are the core's (quant.timeframes): one grid for the platform.


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def ms_to_datetime(t_ms: int | None) -> datetime | None:
    return None if t_ms is None else datetime.fromtimestamp(int(t_ms) / 1000, tz=UTC)


def ms_to_iso(t_ms: int | None) -> str | None:
    """'2023-11-14T22:13:00Z' (seconds shown; milliseconds only when not zero)."""
    if t_ms is None:
        return None
    dt = ms_to_datetime(t_ms)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if t_ms % 1000:
        text += f".{int(t_ms) % 1000:03d}"
    return text + "Z"


_INT_RE = re.compile(r"^[+-]?\d+$")


def parse_time_ms(value) -> int:
    """Epoch milliseconds from user input.

    Accepts an int (epoch ms), a string of digits (epoch ms), an ISO-8601 date or date-time
    ('2023-11-01', '2023-11-01T12:00', '2023-11-01 12:00:00+02:00', '...Z') or a datetime.
    A time without an offset is UTC. Raises ValueError naming the bad value, and for a time
    outside 1970-2100 (tradepulse.core.times).
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, (int, np.integer)):
        return check_ms(int(value))
    if isinstance(value, datetime):
        dt = check_datetime(value if value.tzinfo else value.replace(tzinfo=UTC))
        return check_ms(int(round(dt.timestamp() * 1000)))
    if isinstance(value, date):
        return parse_time_ms(datetime(value.year, value.month, value.day, tzinfo=UTC))
    text = str(value).strip()
    if _INT_RE.match(text):
        return check_ms(int(text))
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is neither epoch milliseconds nor an ISO-8601 time") from None
    return parse_time_ms(dt)
