"""The stepping API runs the backtest's own compiled steps: bar by bar it reproduces
engine.run trade for trade, starts from open positions, books exchange fills, lets a
pre-trade hook reject or resize, and applies the market's tick and minimum notional."""

import math

import numpy as np
import pytest

from quant.engine import EngineConfig, run, trades_as_records
from quant.engine.stepper import (apply_external_fill, bar_at, new_state, signal_row,
                                  state_from_position, step)
from quant.strategies import Bars, Signals, all_strategies, timeframe_ms

HOUR = 3_600_000
START = 1_700_000_000_000 - 1_700_000_000_000 % (4 * HOUR)


def random_walk(n=1500, seed=7):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.003, n))
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.006, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.006, n))
    volume = rng.lognormal(0, 0.8, n)
    return Bars(START + np.arange(n) * timeframe_ms("1h"), opens, high, low, close, volume, "1h")


def replay(bars, signals, config, hook=None):
    state = new_state(config)
    trades, equity = [], []
    for i in range(len(bars)):
        result = step(state, bar_at(bars, i), signal_row(signals, i), hook=hook)
        trades += result.trades
        equity.append(result.equity)
    return state, trades, np.array(equity)


FIELDS = ("entry_price", "exit_price", "size", "fees", "pnl", "return", "exit_reason", "side",
          "entry_time", "exit_time")

CONFIGS = [
    EngineConfig(fee=0.001, slippage=0.0005, stop_loss=0.02, take_profit=0.03, trailing_stop=0.015,
                 allow_short=True),
    EngineConfig(fee=0.0005, sizing="risk", size_value=0.01, stop_loss=0.01, trailing_stop=0.02,
                 amount_step=0.001, min_amount=0.002),
    EngineConfig(fee=0.001, sizing="notional", size_value=2500.0, take_profit=0.01, allow_short=True,
                 price_step=0.01, min_notional=5.0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["sl_tp_trail_short", "risk_trail", "notional_tick"])
@pytest.mark.parametrize("strategy", all_strategies(), ids=lambda s: s.key)
def test_stepping_bar_by_bar_equals_run(strategy, config):
    bars = random_walk()
    signals = strategy.signals(bars, {})
    expected = run(bars, signals, config)
    state, trades, equity = replay(bars, signals, config)
    assert len(expected.trades) > 3, "the comparison would be vacuous"
    records = trades_as_records(expected)
    assert len(trades) == len(records)
    for got, want, raw in zip(trades, records, expected.trades):
        assert got["entry_index"] == raw["entry_index"] and got["exit_index"] == raw["exit_index"]
        for name in FIELDS:
            assert got[name] == want[name], (name, got, want)
    np.testing.assert_array_equal(equity, expected.equity)
    assert state.equity == expected.final_equity
    assert state.skipped_entries == expected.skipped_entries
    assert state.bars_held / len(bars) == expected.exposure
    position = expected.open_position
    assert (position is None) == (state.side is None)
    if position:
        assert (state.side, state.size, state.entry_price, state.stop_loss, state.take_profit,
                state.trailing_stop) == (position["side"], position["size"], position["entry_price"],
                                         position["stop_loss"], position["take_profit"],
                                         position["trailing_stop"])


def hand_bars(rows):
    """Bars from (open, high, low, close) rows, one hour apart."""
    o, h, lo, c = (np.array(col, dtype=float) for col in zip(*rows))
    return Bars(START + np.arange(len(rows)) * HOUR, o, h, lo, c, np.ones(len(rows)), "1h")


def test_start_from_an_open_position_and_stop_out():
    config = EngineConfig(fee=0.001)
    state = state_from_position(config, side="long", size=2.0, entry_price=100.0, cash=800.0,
                                entry_fee=0.2, stop_loss=95.0, take_profit=120.0)
    assert state.equity == 800.0 and state.side == "long"
    first = step(state, {"open": 101, "high": 103, "low": 99, "close": 102})
    assert first.trades == [] and first.equity == pytest.approx(800 + 2 * 2.0)
    second = step(state, {"open": 101, "high": 101, "low": 94, "close": 96})  # touches the 95 stop
    (trade,) = second.trades
    assert trade["exit_reason"] == "stop_loss" and trade["exit_price"] == 95.0
    assert trade["entry_index"] == -1 and trade["exit_index"] == 1
    assert trade["fees"] == pytest.approx(0.2 + 2 * 95 * 0.001)
    assert trade["pnl"] == pytest.approx(2 * (95 - 100) - 0.2 - 0.19)
    assert state.side is None and state.cash == pytest.approx(800 - 10 - 0.19)


def test_open_position_exits_on_the_strategy_signal_at_the_next_open():
    state = state_from_position(EngineConfig(fee=0.0), side="long", size=1.0, entry_price=50.0, cash=100.0)
    result = step(state, (51, 52, 50, 51), {"exits_long": True})
    assert [i.kind for i in result.intents] == ["exit"] and result.intents[0].direction == "sell"
    result = step(state, (53, 54, 52, 53))
    assert result.trades[0]["exit_price"] == 53.0 and result.trades[0]["pnl"] == 3.0
    assert state.cash == 103.0


def test_external_fills_open_add_reduce_and_close():
    config = EngineConfig(fee=0.001, stop_loss=0.05)
    state = new_state(config, cash=10_000)
    result = step(state, (100, 101, 99, 100), {"entries_long": True})
    (intent,) = result.intents
    assert intent.kind == "entry" and intent.stop_loss == pytest.approx(95.0)
    # The exchange fills 10 units at 100.5 with a 1.005 fee; the pending entry's stop applies.
    fill = apply_external_fill(state, "buy", 10, 100.5, 1.005)
    assert fill.fills[0].amount == 10 and state.side == "long" and state.stop_loss == pytest.approx(95.0)
    assert state.pending == [] and state.cash == pytest.approx(10_000 - 1.005)
    apply_external_fill(state, "buy", 10, 101.5, 1.015)  # add: average price
    assert state.size == 20 and state.entry_price == pytest.approx(101.0)
    partial = apply_external_fill(state, "sell", 5, 103.0, 0.515)
    (trade,) = partial.trades
    assert trade["size"] == 5 and trade["exit_reason"] == "external"
    assert trade["fees"] == pytest.approx((1.005 + 1.015) / 4 + 0.515)
    assert trade["pnl"] == pytest.approx(5 * 2.0 - (1.005 + 1.015) / 4 - 0.515)
    assert state.size == 15
    rest = apply_external_fill(state, "sell", 15, 99.0, 1.485)
    assert rest.trades[0]["pnl"] == pytest.approx(15 * -2.0 - (1.005 + 1.015) * 0.75 - 1.485)
    assert state.side is None and state.trade_count == 2
    assert state.cash == pytest.approx(10_000 + 10 - 30 - 1.005 - 1.015 - 0.515 - 1.485)
    assert state.fees_paid == pytest.approx(1.005 + 1.015 + 0.515 + 1.485)


def test_external_fill_errors_name_the_problem():
    state = new_state(EngineConfig())
    with pytest.raises(ValueError, match="amount"):
        apply_external_fill(state, "buy", 0, 100, 0)
    with pytest.raises(ValueError, match="side"):
        apply_external_fill(state, "long", 1, 100, 0)
    with pytest.raises(ValueError, match="allow_short"):
        apply_external_fill(state, "sell", 1, 100, 0)
    with pytest.raises(ValueError, match="low"):
        step(state, {"open": 100, "high": 101, "low": 102, "close": 100})


def test_live_mode_takes_fills_from_the_exchange_only():
    config = EngineConfig(fee=0.0, trailing_stop=0.1)
    state = new_state(config, cash=1000)
    step(state, (100, 100, 100, 100), {"entries_long": True}, simulate_fills=False)
    apply_external_fill(state, "buy", 5, 100.0, 0.0)
    result = step(state, (100, 130, 60, 120), simulate_fills=False)  # far below the stop: no fill
    assert result.fills == [] and state.side == "long" and state.trailing_stop == pytest.approx(117.0)


def test_hook_rejects_and_resizes_entries():
    bars = random_walk(600)
    signals = all_strategies()[0].signals(bars, {})
    config = EngineConfig(fee=0.001)
    plain = run(bars, signals, config)
    assert len(plain.trades) > 4
    seen = []

    def reject_all(intent, state):
        seen.append(intent)
        return None if intent.kind == "entry" else intent

    state, trades, equity = replay(bars, signals, config, hook=reject_all)
    assert trades == [] and state.rejected_intents == len(seen) > 0 and equity[-1] == config.cash

    def half(intent, state):
        return intent.resize(intent.estimated_amount / 2) if intent.kind == "entry" else intent

    state, trades, _ = replay(bars, signals, config, hook=half)
    assert [t["entry_price"] for t in trades] == list(plain.trades["entry_price"])
    # The first entry has the same cash: half the estimate at the signal close, whatever the open.
    assert 0.4 < trades[0]["size"] / plain.trades["size"][0] < 0.6

    def bad(intent, state):
        return "yes"

    with pytest.raises(ValueError, match="hook must return"):
        replay(bars, signals, config, hook=bad)


def test_protective_levels_round_to_the_tick_the_exchange_way():
    config = EngineConfig(fee=0.0, stop_loss=0.0123, take_profit=0.0177, price_step=0.05, allow_short=True)
    state = new_state(config)
    (intent,) = step(state, (100, 100, 100, 100), {"entries_long": True}).intents
    # Long: sell levels round DOWN (stop 98.77 -> 98.75, target 101.77 -> 101.75).
    assert intent.stop_loss == pytest.approx(98.75) and intent.take_profit == pytest.approx(101.75)
    state = new_state(config)
    (intent,) = step(state, (100, 100, 100, 100), {"entries_short": True}).intents
    # Short: buy levels round UP (stop 101.23 -> 101.25, target 98.23 -> 98.25).
    assert intent.stop_loss == pytest.approx(101.25) and intent.take_profit == pytest.approx(98.25)
    bars = hand_bars([(100, 100, 100, 100), (100, 100.5, 98.76, 99), (99, 99.5, 98.75, 99)])
    signals = Signals(np.array([1, 0, 0], bool), np.zeros(3, bool))
    result = run(bars, signals, config)
    # 98.76 does not touch the rounded 98.75 stop; the next bar does.
    assert result.trades["exit_index"][0] == 2 and result.trades["exit_price"][0] == pytest.approx(98.75)


def test_entries_below_min_notional_are_skipped_and_counted():
    bars = hand_bars([(100, 100, 100, 100)] * 4)
    signals = Signals(np.array([1, 0, 0, 0], bool), np.array([0, 1, 0, 0], bool))
    small = EngineConfig(sizing="notional", size_value=9.0, fee=0.0, min_notional=10.0)
    result = run(bars, signals, small)
    assert len(result.trades) == 0 and result.skipped_entries == 1
    ok = run(bars, signals, EngineConfig(sizing="notional", size_value=11.0, fee=0.0, min_notional=10.0))
    assert len(ok.trades) == 1 and ok.trades["size"][0] == pytest.approx(0.11)
    state, trades, _ = replay(bars, signals, small)
    assert trades == [] and state.skipped_entries == 1


def test_existing_configs_are_unchanged_by_the_new_market_fields():
    config = EngineConfig()
    assert config.price_step == 0.0 and config.min_notional == 0.0
    assert EngineConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="price_step"):
        EngineConfig(price_step=-1)
    assert math.isnan(config.as_array()[6])  # no stop loss


def test_orders_are_decimal_on_the_market_grid():
    from decimal import Decimal

    from quant.engine.orders import MarketRuleError, MarketRules

    rules = MarketRules.from_steps("0.01", "0.001", min_amount="0.002", min_notional="5")
    order = rules.order("sell", amount=0.123456, price=101.2399)
    assert order.amount == Decimal("0.123") and order.price == Decimal("101.23")
    assert rules.order("buy", amount=0.1, price=101.2301).price == Decimal("101.24")
    assert rules.price(0.1 + 0.2, "sell") == Decimal("0.30")  # shortest repr, not 0.30000000000000004
    with pytest.raises(MarketRuleError, match="amount 0.001 is below the market minimum 0.002"):
        rules.order("buy", amount=0.0019, price=100)
    with pytest.raises(MarketRuleError, match="notional"):
        rules.order("buy", amount=0.04, price=100)
    assert rules.engine_settings() == {"price_step": 0.01, "amount_step": 0.001, "min_amount": 0.002,
                                       "min_notional": 5.0}
