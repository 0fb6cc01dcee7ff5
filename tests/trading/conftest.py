"""Trading fixtures: the local Binance simulator (clock fixed) reached by the real ccxt client
through the one factory, a Binance exchange with its markets, a config, and accounts.
Retries are made fast; nothing reaches the internet."""
from __future__ import annotations

from decimal import Decimal

import pytest

from apps.marketdata import services as md
from apps.marketdata.models import Market
from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.brokers import ccxt as ccxt_broker
from apps.trading.models import Mode
from tests.exchange_sim import running_simulator

NOW = 1_700_000_000_000  # the simulator's clock: 2023-11-14T22:13:20Z
MIN = 60_000
BAR = NOW - NOW % 3_600_000 - 3_600_000  # an hourly signal bar's open time
API_KEY, API_SECRET = "sim-api-key", "sim-api-secret"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(ccxt_broker, "RETRY_DELAY", 0.01)


@pytest.fixture
def sim(settings):
    with running_simulator(now=NOW) as simulator:
        overrides = simulator.ccxt_overrides()
        overrides["binance"]["timeout"] = 1500  # ms: the timeout-after-accept fault sleeps 2 s
        settings.CCXT_OVERRIDES = overrides
        simulator.set_faults(timeout_sleep_s=2.0)
        yield simulator


@pytest.fixture
def binance(db):
    return md.exchange_get_or_create(name="binance")


@pytest.fixture
def btc(sim, binance) -> Market:
    md.exchange_load_markets(exchange=binance)
    return Market.objects.select_related("exchange").get(exchange=binance, symbol="BTC/USDT")


@pytest.fixture
def config(alice, btc):
    return config_create(owner=alice, strategy_key="sma_cross", market=btc, timeframe="1h",
                         parameters={"fast": 5, "slow": 20})


@pytest.fixture
def testnet(alice, binance, btc):
    return services.account_create(owner=alice, name="Binance testnet", exchange=binance, mode=Mode.TESTNET,
                                   api_key=API_KEY, api_secret=API_SECRET, reason="test")


@pytest.fixture
def paper(alice, binance):
    return services.account_create(owner=alice, name="Paper", exchange=binance, mode=Mode.PAPER,
                                   paper_balance=Decimal("10000"), reason="test")


@pytest.fixture
def deployment(alice, config, testnet):
    services.account_test_connection(account=testnet)  # sets the balance baseline
    testnet.refresh_from_db()
    d = services.deployment_create(owner=alice, config=config, account=testnet, capital=Decimal("5000"), reason="t")
    return services.deployment_activate(deployment=d, reason="start trading")
