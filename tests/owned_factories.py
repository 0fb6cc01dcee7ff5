"""One object per owned model, for the test that walks the API router
(tests/test_owned_endpoints.py). Every viewset under /api/v1/ that serves an OwnedModel gets the
permission suite automatically; it needs a way to build one of its objects, owned by a given
user. An owned endpoint without a factory here FAILS that test: add one next to the others.

A factory takes the owner and returns a saved object the owner holds (through the app's create
service where it is cheap, so the owner's permissions are granted the way they are in use).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

FACTORIES: dict[type, Callable] = {}

MIN = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (60 * MIN)


def factory(model_path: str):
    """Register `make(owner) -> object` for the model at "app_label.ModelName"."""

    def register(make):
        FACTORIES[model_path] = make
        return make

    return register


def factory_for(model) -> Callable | None:
    return FACTORIES.get(f"{model._meta.app_label}.{model.__name__}")


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _file_market(symbol: str = "SYN/USD", bars: int = 400):
    """A file-source market with `bars` clean 1m candles (a sine wave; built for tests)."""
    from apps.marketdata import services as md
    from apps.marketdata.arrays import CandleArrays
    from apps.marketdata.models import Candle

    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol=symbol, amount_step="0.001")
    if not Candle.objects.filter(market=market).exists():
        i = np.arange(bars)
        close = 100 + 5 * np.sin(2 * np.pi * i / 60)
        opens = np.r_[close[0], close[:-1]]
        md.candles_ingest(market=market, timeframe="1m", source="test", rows=CandleArrays(
            T0 + i.astype(np.int64) * MIN, opens, np.maximum(opens, close) + 0.2, np.minimum(opens, close) - 0.2,
            close, np.full(bars, 10.0), timeframe="1m"))
    return market


@factory("backtests.BacktestRun")
def backtest_run(owner):
    from apps.backtests.services import backtest_create

    return backtest_create(owner=owner, market=_file_market(), timeframe="1m", start=_dt(T0),
                           end=_dt(T0 + 400 * MIN), strategy_key="sma_cross", enqueue=False)


@factory("strategies.StrategyConfig")
def strategy_config(owner):
    from apps.strategies.services import config_create

    return config_create(owner=owner, strategy_key="sma_cross", market=_file_market(), timeframe="1m",
                         parameters={"fast": 10, "slow": 30}, name=f"{owner.username}'s config")


@factory("marketdata.DownloadJob")
def download_job(owner):
    from apps.marketdata import services as md

    exchange = md.exchange_get_or_create(name="binance")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="BTC/USDT")
    return md.download_start(owner=owner, market=market, timeframe="1m", start_ms=T0, end_ms=T0 + 60 * MIN,
                             enqueue=False)


@factory("training.TrainingRun")
def training_run(owner):
    # A stored run as the create service leaves it (its optuna study is not needed to check who
    # may see it); creating it through training_create would build a study per test.
    from apps.training.models import TrainingRun
    from tradepulse.core.permissions import grant_owner

    run = TrainingRun.objects.create(owner=owner, market=_file_market(), timeframe="1m", start=_dt(T0),
                                     end=_dt(T0 + 400 * MIN), strategy_key="sma_cross", name="factory run")
    grant_owner(run)
    return run


@factory("trading.ExchangeAccount")
def exchange_account(owner):
    from decimal import Decimal

    from apps.trading.services.accounts import account_create

    return account_create(owner=owner, name=f"{owner.username} paper", exchange=_file_market().exchange,
                          mode="paper", paper_balance=Decimal("10000"), paper_currency="USD")


@factory("trading.Deployment")
def deployment(owner):
    from decimal import Decimal

    from apps.trading.services.deployments import deployment_create

    return deployment_create(owner=owner, config=strategy_config(owner), account=exchange_account(owner),
                             capital=Decimal("1000"), name=f"{owner.username} deployment")


@factory("alerts.Channel")
def alert_channel(owner):
    from apps.alerts.services import channel_create

    return channel_create(owner=owner, name=f"{owner.username}'s mail", kind="email", email="ops@example.test")
