"""Training fixtures: a longer wave market, a run factory, and deleting the optuna journals a
test created (only its own: other processes may share the Redis database)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from apps.marketdata import services as md
from apps.training import services
from quant.optimisation.storage import delete_storage

from .conftest import MIN, T0, ms_dt, wave_candles

BARS = 4000
END = T0 + BARS * MIN
BODY_TIMES = {"start": ms_dt(T0).isoformat(), "end": ms_dt(END).isoformat()}


@contextmanager
def own_journals_deleted():
    """Delete, on exit, the optuna journals training created inside the block, and only those.

    Other test processes can share this Redis database (xdist workers and other checkouts'
    slots map onto the same 15 databases). The old teardown deleted every `tradepulse:optuna:*`
    key there, so a training run in another process lost its journal mid-run: "no study named
    … in this storage", "Cannot tell a COMPLETE trial", the run failed (the order-dependent
    flake). Every journal of the platform is named through `services.optuna_storage_url`, so
    what it returned inside the block is the exact list to delete."""
    made: set[str] = set()
    original = services.optuna_storage_url

    def recording(study_name: str) -> str:
        url = original(study_name)
        made.add(url)
        return url

    services.optuna_storage_url = recording
    try:
        yield made
    finally:
        services.optuna_storage_url = original
        for url in made:
            delete_storage(url)


@pytest.fixture(autouse=True)
def _optuna_connections_closed():
    """Every training test deletes the journals it created (own_journals_deleted)."""
    with own_journals_deleted() as made:
        yield made


@pytest.fixture
def training_market(db):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="WAV/USD", amount_step="0.001")
    md.candles_ingest(market=market, timeframe="1m", rows=wave_candles(BARS), source="test")
    return market


def training_kwargs(market, **overrides) -> dict:
    kwargs = dict(market=market, timeframe="1m", strategy_key="sma_cross", start=ms_dt(T0), end=ms_dt(END),
                  objective="sharpe", min_trades=3, sampler="tpe", n_trials=12, folds=3, holdout_share=0.2,
                  seed=7, n_workers=2, top_n=3, fee=0.0005)
    kwargs.update(overrides)
    return kwargs
