"""Bar lengths and bar grids: the one timeframe table of the whole platform (market data,
strategies, engine).

Fixed timeframes ("1m" … "1w") have a length in ms and open on multiples of it since the epoch,
except weeks, which open on Mondays (1970-01-05) as on exchanges. Calendar months ("1M") have no
fixed length (28 to 31 days): a month bar opens at 00:00 UTC on the 1st, so a table of ms cannot
describe it. The grid functions below (`floor_time`, `ceil_time`, `next_open`, `bar_opens`,
`count_bars`, `aligned`, `close_times`, `bars_per_year`) work for both kinds and are the ones
to use for anything that walks the grid; `timeframe_ms` is only for fixed timeframes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TIMEFRAMES", "CALENDAR_TIMEFRAMES", "timeframe_ms", "is_calendar", "check_grid_timeframe",
           "floor_time", "ceil_time", "next_open", "bar_opens", "count_bars", "aligned", "close_times",
           "bars_per_year", "nominal_ms"]

_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_YEAR_MS = 365 * _DAY

TIMEFRAMES: dict[str, int] = {
    "1m": _MINUTE, "5m": 5 * _MINUTE, "15m": 15 * _MINUTE, "30m": 30 * _MINUTE,
    "1h": _HOUR, "2h": 2 * _HOUR, "4h": 4 * _HOUR, "6h": 6 * _HOUR, "12h": 12 * _HOUR,
    "1d": _DAY, "1w": 7 * _DAY,
}
# Calendar timeframes: bars open at 00:00 UTC on the 1st of every `months` months.
CALENDAR_TIMEFRAMES: dict[str, int] = {"1M": 1}
# Epoch day 0 (1970-01-01) was a Thursday; weeks open on Monday (1970-01-05) like on exchanges.
_WEEK_OFFSET_MS = 4 * _DAY


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar of a fixed ``timeframe`` in milliseconds ("1m" → 60_000, "1w" → 604_800_000).

    Raises ``ValueError`` naming the supported timeframes for anything else, and for calendar
    months, whose length varies (use the grid functions of this module for those).
    """
    try:
        return TIMEFRAMES[timeframe]
    except (KeyError, TypeError):
        if timeframe in CALENDAR_TIMEFRAMES:
            raise ValueError(f"{timeframe!r} bars have no fixed length (a month is 28 to 31 days); "
                             "use the calendar-aware grid functions") from None
        raise ValueError(f"unknown timeframe {timeframe!r}; supported: {', '.join(TIMEFRAMES)}") from None


def is_calendar(timeframe: str) -> bool:
    return timeframe in CALENDAR_TIMEFRAMES


def check_grid_timeframe(timeframe: str) -> None:
    """ValueError naming the known timeframes unless ``timeframe`` is fixed or calendar."""
    if timeframe not in TIMEFRAMES and timeframe not in CALENDAR_TIMEFRAMES:
        known = [*TIMEFRAMES, *CALENDAR_TIMEFRAMES]
        raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(known)}")


def _offset(timeframe: str) -> int:
    return _WEEK_OFFSET_MS if timeframe == "1w" else 0


# --- months as integers: month index m = (year - 1970) * 12 + (month - 1) ----------------------------
def _month_index(t_ms):
    """Month index of the UTC month each epoch-ms time falls in (scalar or array)."""
    return np.asarray(t_ms, dtype="int64").astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)


def _month_open(index):
    """Epoch ms of 00:00 UTC on the 1st of month ``index`` (scalar or array)."""
    return np.asarray(index, dtype=np.int64).astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)


# --- the grid ----------------------------------------------------------------------------------------
def floor_time(t_ms: int, timeframe: str) -> int:
    """Open time of the bar containing ``t_ms``."""
    check_grid_timeframe(timeframe)
    if timeframe in CALENDAR_TIMEFRAMES:
        months = CALENDAR_TIMEFRAMES[timeframe]
        return int(_month_open(int(_month_index(int(t_ms))) // months * months))
    step, off = TIMEFRAMES[timeframe], _offset(timeframe)
    return (int(t_ms) - off) // step * step + off


def next_open(t_ms: int, timeframe: str) -> int:
    """Open time of the bar after the one containing ``t_ms`` (= that bar's close time)."""
    check_grid_timeframe(timeframe)
    if timeframe in CALENDAR_TIMEFRAMES:
        months = CALENDAR_TIMEFRAMES[timeframe]
        return int(_month_open(int(_month_index(int(t_ms))) // months * months + months))
    return floor_time(t_ms, timeframe) + TIMEFRAMES[timeframe]


def ceil_time(t_ms: int, timeframe: str) -> int:
    """First bar open time at or after ``t_ms``."""
    floor = floor_time(t_ms, timeframe)
    return floor if floor == int(t_ms) else next_open(t_ms, timeframe)


def bar_opens(start_ms: int, end_ms: int, timeframe: str) -> np.ndarray:
    """int64 open times of every bar opening in [start_ms, end_ms)."""
    first = ceil_time(start_ms, timeframe)
    if end_ms <= first:
        return np.empty(0, dtype=np.int64)
    if timeframe in CALENDAR_TIMEFRAMES:
        months = CALENDAR_TIMEFRAMES[timeframe]
        a = int(_month_index(first))
        b = int(_month_index(int(end_ms) - 1))
        return _month_open(np.arange(a, b + 1, months, dtype=np.int64))
    return np.arange(first, int(end_ms), TIMEFRAMES[timeframe], dtype=np.int64)


def count_bars(start_ms: int, end_ms: int, timeframe: str) -> int:
    """How many bars open in [start_ms, end_ms)."""
    first = ceil_time(start_ms, timeframe)
    if end_ms <= first:
        return 0
    if timeframe in CALENDAR_TIMEFRAMES:
        months = CALENDAR_TIMEFRAMES[timeframe]
        return (int(_month_index(int(end_ms) - 1)) - int(_month_index(first))) // months + 1
    return -(-(int(end_ms) - first) // TIMEFRAMES[timeframe])


def aligned(times: np.ndarray, timeframe: str) -> np.ndarray:
    """Boolean mask: which int64 ms times are bar open times of ``timeframe``."""
    times = np.asarray(times, dtype=np.int64)
    check_grid_timeframe(timeframe)
    if timeframe in CALENDAR_TIMEFRAMES:
        months = CALENDAR_TIMEFRAMES[timeframe]
        index = _month_index(times)
        return (_month_open(index) == times) & (index % months == 0)
    return (times - _offset(timeframe)) % TIMEFRAMES[timeframe] == 0


def close_times(times: np.ndarray, timeframe: str) -> np.ndarray:
    """Close time (= next bar's open) of each bar opening at ``times``."""
    times = np.asarray(times, dtype=np.int64)
    check_grid_timeframe(timeframe)
    if timeframe in CALENDAR_TIMEFRAMES:
        months = CALENDAR_TIMEFRAMES[timeframe]
        return _month_open(_month_index(times) // months * months + months)
    return times + TIMEFRAMES[timeframe]


def bars_per_year(timeframe: str) -> float:
    """Bars of ``timeframe`` in a year, for annualising: a 365-day year for fixed timeframes
    (crypto trades 24/7: "1h" → 8760, "1d" → 365), 12 for months."""
    check_grid_timeframe(timeframe)
    if timeframe in CALENDAR_TIMEFRAMES:
        return 12.0 / CALENDAR_TIMEFRAMES[timeframe]
    return _YEAR_MS / TIMEFRAMES[timeframe]


def nominal_ms(timeframe: str) -> int:
    """A bar's typical length: exact for fixed timeframes, the mean month (365.2425 / 12 days)
    for calendar ones. For estimates only (page sizes, progress), never for the grid."""
    check_grid_timeframe(timeframe)
    if timeframe in CALENDAR_TIMEFRAMES:
        return round(CALENDAR_TIMEFRAMES[timeframe] * 365.2425 / 12 * _DAY)
    return TIMEFRAMES[timeframe]
