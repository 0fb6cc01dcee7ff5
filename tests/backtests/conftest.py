"""Backtest fixtures: a file-source market with deliberately built candles (no network)."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays

MIN = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (60 * MIN)  # an hour-aligned start (2023-11-14 22:00 UTC)


def wave_candles(n: int, *, start: int = T0, step: int = MIN, period: int = 120) -> CandleArrays:
    """A clean sine-shaped price (period `period` bars) on a gentle rise: sma_cross trades it
    several times, deterministically. Built for the tests; not market data."""
    i = np.arange(n)
    close = 100 + 0.01 * i + 5 * np.sin(2 * np.pi * i / period)
    opens = np.r_[close[0], close[:-1]]
    high = np.maximum(opens, close) + 0.2
    low = np.minimum(opens, close) - 0.2
    return CandleArrays(start + i.astype(np.int64) * step, opens, high, low, close, np.full(n, 10.0), timeframe="1m")


def ms_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@pytest.fixture
def market(db):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="SYN/USD", amount_step="0.001",
                                                price_step="0.01")
    md.candles_ingest(market=market, timeframe="1m", rows=wave_candles(1000), source="test")
    return market


@pytest.fixture
def gappy_market(db):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="GAP/USD")
    candles = wave_candles(1000)
    keep = np.r_[0:400, 430:1000]  # 30 bars missing from bar 400
    md.candles_ingest(market=market, timeframe="1m", source="test",
                      rows=CandleArrays(candles.time[keep], candles.open[keep], candles.high[keep], candles.low[keep],
                                        candles.close[keep], candles.volume[keep], timeframe="1m"))
    return market
