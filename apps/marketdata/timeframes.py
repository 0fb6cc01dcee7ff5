"""Timeframes and times for market data: bar lengths, grid alignment, parsing user input.

Bar lengths and the bar grid (floor/ceil/aligned) come from the Django-free core
`quant.timeframes` (one table and one grid for the whole platform). Times are int epoch milliseconds, UTC, everywhere in market data; a bar is
identified by its OPEN time. Every timeframe's bars open on multiples of its length since the
epoch, except weeks, which open on Mondays (1970-01-05), as on exchanges.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime

import numpy as np

from quant.timeframes import TIMEFRAMES, aligned, ceil_time, floor_time, timeframe_ms
from tradepulse.core.times import check_datetime, check_ms

__all__ = [
    "TIMEFRAMES", "timeframe_ms", "check_timeframe", "grid_offset", "floor_time", "ceil_time", "aligned",
    "parse_time_ms", "ms_to_datetime", "ms_to_iso", "now_ms",
]

_DAY_MS = 86_400_000
_WEEK_OFFSET_MS = 4 * _DAY_MS  # 1970-01-01 was a Thursday; weeks open on Monday


def check_timeframe(timeframe: str) -> int:
    """Bar length in ms, or ValueError naming the supported timeframes."""
    return timeframe_ms(timeframe)


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
