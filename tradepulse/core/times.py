"""The range of times the platform accepts from anyone (API, forms, files, commands).

Crypto markets start with Bitcoin's genesis block (2009-01-03); nothing traded before 1970 and
no exchange has a candle after 2100. Bounding input here keeps a year-5138 end or an offset
that overflows UTC out of every computation and query: each door rejects it with a message.
"""
from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
EARLIEST_MS = 0
LATEST_MS = int(LATEST.timestamp() * 1000)
CRYPTO_EPOCH = datetime(2009, 1, 3, tzinfo=UTC)  # Bitcoin's genesis block: no market data before it
CRYPTO_EPOCH_MS = int(CRYPTO_EPOCH.timestamp() * 1000)


def check_ms(t_ms: int, what: str = "time") -> int:
    """`t_ms` if it lies in [1970, 2100), else ValueError naming the accepted range."""
    if not EARLIEST_MS <= int(t_ms) < LATEST_MS:
        raise ValueError(f"{what} {t_ms} is outside the accepted range 1970-01-01 to 2100-01-01 "
                         f"(epoch ms {EARLIEST_MS} to {LATEST_MS})")
    return int(t_ms)


def check_datetime(value: datetime, what: str = "time") -> datetime:
    """`value` (aware) if it lies in [1970, 2100) in UTC, else ValueError."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"{what} {value.isoformat()} is outside the accepted range 1970-01-01 to 2100-01-01")
    return value
