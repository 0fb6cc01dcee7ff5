"""Market-data fixtures: the local Binance simulator (clock fixed), the seeded exchange, markets,
candle factories. Retries and lease polling are made fast; nothing reaches the internet."""
from __future__ import annotations

import numpy as np
import pytest

from apps.marketdata import exchanges, services
from apps.marketdata.arrays import CandleArrays
from apps.marketdata.models import Market
from apps.marketdata.selectors import candles_as_arrays
from apps.marketdata.services import downloads
from tests.exchange_sim import running_simulator

NOW = 1_700_000_000_000  # the simulator's clock: 2023-11-14T22:13:20Z
MIN = 60_000
HOUR = 60 * MIN
T0 = NOW - NOW % HOUR - 48 * HOUR  # an aligned start two days before "now"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(exchanges, "RETRY_BASE_DELAY", 0.01)
    monkeypatch.setattr(downloads, "LEASE_POLL_S", 0.02)


@pytest.fixture
def sim(settings):
    with running_simulator(now=NOW) as simulator:
        settings.CCXT_OVERRIDES = simulator.ccxt_overrides()
        yield simulator


@pytest.fixture
def binance(db):
    return services.exchange_get_or_create(name="binance")


@pytest.fixture
def btc(sim, binance) -> Market:
    services.exchange_load_markets(exchange=binance)
    return Market.objects.select_related("exchange").get(exchange=binance, symbol="BTC/USDT")


@pytest.fixture
def file_market(db) -> Market:
    exchange = services.exchange_get_or_create(name="Test files")
    return services.market_get_or_create_for_import(exchange=exchange, symbol="SYN/USD")


def make_candles(n: int, start: int = T0, step: int = MIN, seed: int = 1) -> CandleArrays:
    """n clean, aligned, consecutive candles (a seeded random walk)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    opens = np.r_[100.0, close[:-1]]
    high = np.maximum(opens, close) * 1.001
    low = np.minimum(opens, close) * 0.999
    return CandleArrays(start + np.arange(n, dtype=np.int64) * step, opens, high, low, close, rng.random(n) + 1,
                        timeframe="1m")


def sim_rows(sim, symbol: str, timeframe: str, start: int, end: int, *, faults: bool = False) -> list[tuple]:
    """The candles the exchange has for [start, end) (clean unless `faults`): (time, o, h, l, c, v)."""
    out, since = [], start
    while since < end:
        rows = sim.candles(symbol, timeframe, since, end - 1, 1000, apply_faults=faults)
        if not rows:
            break
        out += [(int(r[0]), *(float(x) for x in r[1:6])) for r in rows]
        since = int(rows[-1][0]) + 1
    return out


def stored_rows(market, timeframe: str) -> list[tuple]:
    a = candles_as_arrays(market, timeframe)
    return list(zip(a.time.tolist(), a.open.tolist(), a.high.tolist(), a.low.tolist(), a.close.tolist(),
                    a.volume.tolist()))


def run_download(owner, market, start, end, timeframe="1m", **kwargs):
    job = services.download_start(owner=owner, market=market, timeframe=timeframe, start_ms=start, end_ms=end,
                                  enqueue=False, **kwargs)
    return services.download_run(job_id=job.pk)
