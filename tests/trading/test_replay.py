"""Replay parity: `run_trading --replay` (the trading loop with the PaperBroker over stored
candles) gives exactly `backtest`'s trades, open position and final equity, for every library
strategy, with the same options (costs, sizing, stops, shorts, size step)."""
from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from quant.strategies import all_strategies

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (4 * HOUR)


def random_walk(n=1500, seed=7) -> CandleArrays:
    """A seeded random walk (built for the test, stored like imported candles)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.003, n))
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.006, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.006, n))
    return CandleArrays(T0 + np.arange(n, dtype=np.int64) * HOUR, opens, high, low, close, rng.lognormal(0, 0.8, n),
                        timeframe="1h")


@pytest.fixture
def walk_market(db):
    exchange = md.exchange_get_or_create(name="Replay files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="RW/USD", amount_step="0.001",
                                                price_step="0.01")
    result = md.candles_ingest(market=market, timeframe="1h", rows=random_walk(), source="test")
    assert result.stored == 1500
    return market


def run_json(command: str, *args) -> dict:
    out = StringIO()
    call_command(command, *args, "--json", stdout=out)
    return json.loads(out.getvalue())


BASE = ["--exchange", "replay-files", "--symbol", "RW/USD", "--timeframe", "1h"]
SETTINGS = {
    "sl_tp_trail_short": ["--fee", "0.001", "--slippage", "0.0005", "--stop-loss", "0.02", "--take-profit", "0.03",
                          "--trailing-stop", "0.015", "--allow-short"],
    "risk_trail": ["--fee", "0.0005", "--sizing", "risk", "--size", "0.01", "--stop-loss", "0.01",
                   "--trailing-stop", "0.02"],
    "notional_range": ["--fee", "0.001", "--sizing", "notional", "--size", "2500", "--take-profit", "0.01",
                       "--cash", "5000", "--start", str(T0 + 100 * HOUR), "--end", str(T0 + 1400 * HOUR)],
}


@pytest.mark.parametrize("settings_key", list(SETTINGS))
@pytest.mark.parametrize("strategy", [s.key for s in all_strategies()])
def test_replay_equals_backtest_for_every_library_strategy(walk_market, strategy, settings_key):
    args = ["--strategy", strategy, *BASE, *SETTINGS[settings_key]]
    backtest = run_json("backtest", *args)
    replayed = run_json("run_trading", "--replay", *args)
    assert backtest["candles"] == replayed["candles"]
    assert replayed["trades"] == backtest["trades"]
    assert replayed["open_position"] == backtest["open_position"]
    assert replayed["final_equity"] == backtest["final_equity"]
    # every trade went through the broker: an entry order and fill, an exit fill (signal or stop)
    assert replayed["orders"] >= len(replayed["trades"])
    assert replayed["fills"] == 2 * len(replayed["trades"]) + (1 if replayed["open_position"] else 0)


def test_every_strategy_trades_in_the_parity_data(walk_market):
    """The parity above is not vacuous: each strategy trades on this data with these settings."""
    for strategy in all_strategies():
        data = run_json("run_trading", "--replay", "--strategy", strategy.key, *BASE,
                        *SETTINGS["sl_tp_trail_short"])
        assert len(data["trades"]) >= 3, strategy.key


def test_replay_refuses_what_backtest_refuses(walk_market):
    with pytest.raises(CommandError, match="strategy"):
        call_command("run_trading", "--replay", "--strategy", "nope", *BASE)
    with pytest.raises(CommandError, match="--exchange"):
        call_command("run_trading", "--replay", "--strategy", "sma_cross", "--symbol", "RW/USD")
    with pytest.raises(CommandError, match="fee"):
        call_command("run_trading", "--replay", "--strategy", "sma_cross", *BASE, "--fee", "2")
