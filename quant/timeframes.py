"""Bar lengths: the one timeframe table of the whole platform (market data, strategies, engine)."""

from __future__ import annotations

__all__ = ["TIMEFRAMES", "timeframe_ms"]

_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR

TIMEFRAMES: dict[str, int] = {
    "1m": _MINUTE, "5m": 5 * _MINUTE, "15m": 15 * _MINUTE, "30m": 30 * _MINUTE,
    "1h": _HOUR, "2h": 2 * _HOUR, "4h": 4 * _HOUR, "6h": 6 * _HOUR, "12h": 12 * _HOUR,
    "1d": _DAY, "1w": 7 * _DAY,
}
# Epoch day 0 (1970-01-01) was a Thursday; weeks open on Monday (1970-01-05) like on exchanges.
_WEEK_OFFSET_MS = 4 * _DAY


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar of ``timeframe`` in milliseconds ("1m" → 60_000, "1w" → 604_800_000).

    Raises ``ValueError`` naming the supported timeframes for anything else.
    """
    try:
        return TIMEFRAMES[timeframe]
    except (KeyError, TypeError):
        raise ValueError(f"unknown timeframe {timeframe!r}; supported: {', '.join(TIMEFRAMES)}") from None
