"""Engine rules on tiny hand-built series. Each expected number is worked out by hand."""

import math

import numpy as np
import pytest

from quant.engine import EngineConfig, EXIT_REASONS, run, trades_as_records
from quant.strategies import Bars, Signals

MINUTE = 60_000
T0 = 1_700_000_000_000


def make_bars(opens, highs=None, lows=None, closes=None):
    """1m bars; highs/lows default to max/min of open and close."""
    opens = np.asarray(opens, dtype=float)
    closes = opens if closes is None else np.asarray(closes, dtype=float)
    highs = np.maximum(opens, closes) if highs is None else np.asarray(highs, dtype=float)
    lows = np.minimum(opens, closes) if lows is None else np.asarray(lows, dtype=float)
    n = len(opens)
    return Bars(T0 + np.arange(n) * MINUTE, opens, highs, lows, closes, np.ones(n), "1m")


def make_signals(n, entries=(), exits=(), short_entries=(), short_exits=(), stop=None, target=None):
    def mask(idx):
        m = np.zeros(n, dtype=bool)
        m[list(idx)] = True
        return m

    return Signals(mask(entries), mask(exits), mask(short_entries), mask(short_exits),
                   stop_price=stop, take_profit_price=target)


def cfg(**kw):
    kw.setdefault("cash", 1000.0)
    kw.setdefault("fee", 0.0)
    return EngineConfig(**kw)


# ----------------------------------------------------------------------------- fills

def test_market_orders_fill_at_next_bars_open():
    bars = make_bars(opens=[10, 11, 12, 13, 14, 15], closes=[10.5, 11.5, 12.5, 13.5, 14.5, 15.5])
    result = run(bars, make_signals(6, entries=[1], exits=[3]), cfg(cash=1200.0))
    (trade,) = result.trades
    assert trade["entry_index"] == 2 and trade["exit_index"] == 4
    assert trade["entry_price"] == 12.0 and trade["exit_price"] == 14.0
    assert trade["entry_time"] == T0 + 2 * MINUTE and trade["exit_time"] == T0 + 4 * MINUTE
    assert trade["size"] == pytest.approx(100.0)
    assert trade["pnl"] == pytest.approx(200.0)
    assert EXIT_REASONS[int(trade["exit_reason"])] == "signal"
    assert result.final_equity == pytest.approx(1400.0)


def test_slippage_worsens_entry_and_exit():
    bars = make_bars(opens=[10, 11, 12, 13, 14, 15])
    result = run(bars, make_signals(6, entries=[1], exits=[3]), cfg(cash=1212.0, slippage=0.01))
    (trade,) = result.trades
    assert trade["entry_price"] == pytest.approx(12.12)  # buy at 12 * 1.01
    assert trade["exit_price"] == pytest.approx(13.86)  # sell at 14 * 0.99
    assert trade["size"] == pytest.approx(100.0)
    assert trade["pnl"] == pytest.approx(100 * (13.86 - 12.12))


def test_fee_is_charged_on_entry_and_on_exit():
    bars = make_bars(opens=[10, 11, 12, 13, 14, 15])
    # 1212 buys 100 units at 12 with a 1 % fee (1200 + 12).
    result = run(bars, make_signals(6, entries=[1], exits=[3]), cfg(cash=1212.0, fee=0.01))
    (trade,) = result.trades
    assert trade["size"] == pytest.approx(100.0)
    assert trade["fees"] == pytest.approx(12.0 + 14.0)
    assert trade["pnl"] == pytest.approx(200.0 - 26.0)
    assert trade["return"] == pytest.approx(174.0 / 1212.0)
    assert result.final_equity == pytest.approx(1212.0 + 174.0)
    # While held, equity is cash minus the entry fee plus the move from the entry price.
    assert result.equity[2] == pytest.approx(1212.0 - 12.0)
    assert result.equity[3] == pytest.approx(1212.0 - 12.0 + 100.0)


def test_equity_is_marked_at_each_close():
    bars = make_bars(opens=[10, 10, 10, 12, 12], closes=[10, 10, 11, 13, 12])
    result = run(bars, make_signals(5, entries=[1]), cfg(cash=1000.0))
    # 100 units from bar 2's open at 10.
    np.testing.assert_allclose(result.equity, [1000, 1000, 1100, 1300, 1200])


# ----------------------------------------------------------------------------- sizing

def test_fraction_sizing_spends_that_share_of_equity():
    bars = make_bars(opens=[10] * 5)
    result = run(bars, make_signals(5, entries=[1]), cfg(sizing="fraction", size_value=0.5))
    assert result.open_position["size"] == pytest.approx(50.0)


def test_notional_sizing_spends_a_fixed_amount_including_fee():
    bars = make_bars(opens=[10] * 5)
    result = run(bars, make_signals(5, entries=[1]), cfg(sizing="notional", size_value=303.0, fee=0.01))
    assert result.open_position["size"] == pytest.approx(30.0)  # 30 * 10 + 3 fee = 303


def test_notional_sizing_is_capped_at_equity():
    bars = make_bars(opens=[10] * 5)
    result = run(bars, make_signals(5, entries=[1]), cfg(sizing="notional", size_value=5000.0))
    assert result.open_position["size"] == pytest.approx(100.0)


def test_risk_sizing_loses_the_risk_fraction_when_the_stop_is_hit():
    # Signal close 10, stop 5 % below = 9.5; entry at 10; risk 1 % of 1000 = 10 per trade.
    bars = make_bars(opens=[10, 10, 10, 9.8], lows=[10, 10, 10, 9.0], closes=[10, 10, 10, 9.2])
    result = run(bars, make_signals(4, entries=[1]),
                 cfg(sizing="risk", size_value=0.01, stop_loss=0.05))
    (trade,) = result.trades
    assert trade["size"] == pytest.approx(20.0)  # 10 / (10 - 9.5)
    assert trade["pnl"] == pytest.approx(-10.0)


def test_risk_sizing_counts_fees_and_slippage_in_the_risk():
    bars = make_bars(opens=[10, 10, 10, 9.8], lows=[10, 10, 10, 9.0], closes=[10, 10, 10, 9.2])
    result = run(bars, make_signals(4, entries=[1]),
                 cfg(sizing="risk", size_value=0.01, stop_loss=0.05, fee=0.001, slippage=0.001))
    (trade,) = result.trades
    entry, stop_fill = 10 * 1.001, 9.5 * 0.999
    per_unit = (entry - stop_fill) + 0.001 * (entry + stop_fill)
    assert trade["size"] == pytest.approx(10.0 / per_unit)
    assert trade["pnl"] == pytest.approx(-10.0)


def test_risk_sizing_without_any_stop_is_refused():
    bars = make_bars(opens=[10] * 4)
    with pytest.raises(ValueError, match="risk sizing needs a stop"):
        run(bars, make_signals(4, entries=[1]), cfg(sizing="risk", size_value=0.01))


def test_size_is_rounded_down_to_the_step_so_cost_and_fee_fit():
    # 1000 / (10 * 1.001) = 99.9 units; rounding to nearest (100) would cost 1001.
    bars = make_bars(opens=[10] * 5)
    result = run(bars, make_signals(5, entries=[1]), cfg(fee=0.001, amount_step=1.0))
    position = result.open_position
    assert position["size"] == 99.0
    assert position["size"] * 10 + position["entry_fee"] <= 1000.0


def test_size_that_fits_exactly_is_not_rounded_away():
    # 1001 / 10.01 is exactly 100 units (1000 + 1 fee); float division gives 99.999...
    bars = make_bars(opens=[10] * 5)
    result = run(bars, make_signals(5, entries=[1]), cfg(cash=1001.0, fee=0.001, amount_step=1.0))
    position = result.open_position
    assert position["size"] == 100.0
    assert position["size"] * 10 + position["entry_fee"] <= 1001.0


@pytest.mark.parametrize("step", [0.0, 0.001, 0.1, 0.3])
def test_cost_plus_entry_fee_never_exceeds_the_allotment(step):
    bars = make_bars(opens=[3.3333, 3.3333, 7.77, 1.2345, 1.2345])
    result = run(bars, make_signals(5, entries=[1, 3], exits=[2]),
                 cfg(cash=997.0, fee=0.00075, slippage=0.0013, amount_step=step, size_value=0.37))
    equity_before = [997.0]
    for trade in result.trades:
        fee = trade["size"] * trade["entry_price"] * 0.00075
        assert trade["size"] * trade["entry_price"] + fee <= 0.37 * equity_before[-1]
        equity_before.append(equity_before[-1] + trade["pnl"])
    if step:
        assert all(abs(t / step - round(t / step)) < 1e-6 for t in result.trades["size"])


def test_entry_below_min_amount_is_skipped_and_counted():
    bars = make_bars(opens=[10] * 5)
    result = run(bars, make_signals(5, entries=[1]), cfg(min_amount=150.0))
    assert result.open_position is None and len(result.trades) == 0
    assert result.skipped_entries == 1
    np.testing.assert_allclose(result.equity, 1000.0)


# ----------------------------------------------------------------------------- protective exits

def test_stop_loss_fills_at_the_level():
    # Stop 5 % under the signal close 10 = 9.5; bar 3 opens 9.8 and trades down to 9.4.
    bars = make_bars(opens=[10, 10, 10, 9.8, 9.5], lows=[10, 10, 9.9, 9.4, 9.5], closes=[10, 10, 10, 9.6, 9.5])
    result = run(bars, make_signals(5, entries=[1]), cfg(stop_loss=0.05))
    (trade,) = result.trades
    assert trade["exit_index"] == 3
    assert trade["exit_price"] == pytest.approx(9.5)
    assert trades_as_records(result)[0]["exit_reason"] == "stop_loss"
    assert trade["pnl"] == pytest.approx(100 * (9.5 - 10.0))


def test_stop_loss_gapped_through_fills_at_the_open():
    bars = make_bars(opens=[10, 10, 10, 9.0, 9.0], lows=[10, 10, 9.9, 8.8, 9.0], closes=[10, 10, 10, 9.1, 9.0])
    result = run(bars, make_signals(5, entries=[1]), cfg(stop_loss=0.05))
    (trade,) = result.trades
    assert trade["exit_index"] == 3 and trade["exit_price"] == pytest.approx(9.0)


def test_stop_is_live_on_the_entry_bar_itself():
    bars = make_bars(opens=[10, 10, 10, 10], lows=[10, 10, 9.3, 10], closes=[10, 10, 9.8, 10])
    result = run(bars, make_signals(4, entries=[1]), cfg(stop_loss=0.05))
    (trade,) = result.trades
    assert trade["entry_index"] == 2 and trade["exit_index"] == 2
    assert trade["exit_price"] == pytest.approx(9.5)


def test_slippage_applies_to_stop_exits():
    bars = make_bars(opens=[10, 10, 10, 9.8], lows=[10, 10, 10, 9.4], closes=[10, 10, 10, 9.6])
    result = run(bars, make_signals(4, entries=[1]), cfg(stop_loss=0.05, slippage=0.01))
    assert result.trades[0]["exit_price"] == pytest.approx(9.5 * 0.99)


def test_stop_is_checked_first_when_a_bar_touches_stop_and_target():
    bars = make_bars(opens=[10, 10, 10, 10], highs=[10, 10, 10, 10.6], lows=[10, 10, 10, 9.4],
                     closes=[10, 10, 10, 10])
    result = run(bars, make_signals(4, entries=[1]), cfg(stop_loss=0.05, take_profit=0.05))
    (trade,) = result.trades
    assert trades_as_records(result)[0]["exit_reason"] == "stop_loss"
    assert trade["exit_price"] == pytest.approx(9.5)


def test_take_profit_fills_at_the_level():
    bars = make_bars(opens=[10, 10, 10, 10.2], highs=[10, 10, 10, 10.7], lows=[10, 10, 10, 10.1],
                     closes=[10, 10, 10, 10.3])
    result = run(bars, make_signals(4, entries=[1]), cfg(take_profit=0.05))
    (trade,) = result.trades
    assert trades_as_records(result)[0]["exit_reason"] == "take_profit"
    assert trade["exit_price"] == pytest.approx(10.5) and trade["exit_index"] == 3


def test_take_profit_gapped_through_fills_at_the_better_open():
    bars = make_bars(opens=[10, 10, 10, 10.8], highs=[10, 10, 10, 11], lows=[10, 10, 10, 10.7],
                     closes=[10, 10, 10, 10.9])
    result = run(bars, make_signals(4, entries=[1]), cfg(take_profit=0.05))
    assert result.trades[0]["exit_price"] == pytest.approx(10.8)


def test_levels_are_set_from_the_signal_close_not_the_fill():
    # Signal close 10 -> stop 9.5 even though the entry fills higher at 10.4.
    bars = make_bars(opens=[10, 10, 10.4, 10.4], lows=[10, 10, 9.6, 9.45], closes=[10, 10, 10, 9.6])
    result = run(bars, make_signals(4, entries=[1]), cfg(stop_loss=0.05))
    (trade,) = result.trades
    assert trade["entry_price"] == pytest.approx(10.4)
    assert trade["exit_index"] == 3 and trade["exit_price"] == pytest.approx(9.5)


def test_strategy_stop_price_overrides_the_fraction():
    stop = np.full(4, np.nan)
    stop[1] = 9.0
    bars = make_bars(opens=[10, 10, 10, 9.8], lows=[10, 10, 10, 8.9], closes=[10, 10, 10, 9.2])
    result = run(bars, make_signals(4, entries=[1], stop=stop), cfg(stop_loss=0.05))
    assert result.trades[0]["exit_price"] == pytest.approx(9.0)


def test_strategy_take_profit_price_overrides_the_fraction():
    target = np.full(4, np.nan)
    target[1] = 10.2
    bars = make_bars(opens=[10, 10, 10, 10.1], highs=[10, 10, 10, 10.3], closes=[10, 10, 10, 10.1])
    result = run(bars, make_signals(4, entries=[1], target=target), cfg(take_profit=0.05))
    assert result.trades[0]["exit_price"] == pytest.approx(10.2)


def test_trailing_stop_ratchets_with_the_highest_high_and_checks_the_next_bar():
    # 10 % trail from the signal close 10. Highs before bar 3: 10 and 11 -> level 9.9, so
    # bar 3's low 11.2 is safe (its own high 12.5 would have put the level at 11.25).
    # Bar 4: level 12.5 * 0.9 = 11.25, bar opens 12 and dips to 11.0 -> exit at 11.25.
    bars = make_bars(opens=[10, 10, 10, 11.5, 12.0, 12.0], highs=[10, 10, 11, 12.5, 12.2, 12.0],
                     lows=[10, 10, 10, 11.2, 11.0, 12.0], closes=[10, 10, 10.8, 12.0, 11.5, 12.0])
    result = run(bars, make_signals(6, entries=[1]), cfg(trailing_stop=0.1))
    (trade,) = result.trades
    assert trade["exit_index"] == 4
    assert trade["exit_price"] == pytest.approx(11.25)
    assert trades_as_records(result)[0]["exit_reason"] == "trailing_stop"


def test_trailing_stop_gapped_through_fills_at_the_open():
    bars = make_bars(opens=[10, 10, 10, 12, 10.5], highs=[10, 10, 12, 12, 10.6],
                     lows=[10, 10, 10, 11.5, 10.2], closes=[10, 10, 12, 12, 10.5])
    result = run(bars, make_signals(5, entries=[1]), cfg(trailing_stop=0.1))
    assert result.trades[0]["exit_price"] == pytest.approx(10.5)  # level 10.8, opened at 10.5


# ----------------------------------------------------------------------------- signal handling

def test_signal_on_the_last_bar_does_nothing():
    bars = make_bars(opens=[10, 11, 12])
    result = run(bars, make_signals(3, entries=[2]), cfg())
    assert len(result.trades) == 0 and result.open_position is None
    np.testing.assert_allclose(result.equity, 1000.0)
    assert result.exposure == 0.0


def test_position_open_at_the_end_is_reported_not_traded():
    bars = make_bars(opens=[10, 10, 10, 12], closes=[10, 10, 11, 13])
    result = run(bars, make_signals(4, entries=[1]), cfg(fee=0.01, cash=1010.0))
    assert len(result.trades) == 0
    position = result.open_position
    assert position["side"] == "long" and position["entry_index"] == 2
    assert position["entry_time"] == T0 + 2 * MINUTE
    assert position["entry_price"] == 10.0 and position["size"] == pytest.approx(100.0)
    assert position["mark_price"] == 13.0
    assert position["unrealized_pnl"] == pytest.approx(300.0 - 10.0)
    assert result.final_equity == pytest.approx(1010.0 + 290.0)


def test_exit_while_flat_and_entry_while_in_position_are_ignored():
    bars = make_bars(opens=[10, 10, 10, 12, 13, 14])
    result = run(bars, make_signals(6, entries=[1, 2, 3], exits=[0, 4]), cfg())
    (trade,) = result.trades
    assert trade["entry_index"] == 2 and trade["exit_index"] == 5
    assert trade["entry_price"] == 10.0  # later entry signals did not add or re-price
    assert trade["size"] == pytest.approx(100.0)


def test_entry_and_exit_of_the_same_side_on_one_bar_cancel_when_flat():
    bars = make_bars(opens=[10] * 4)
    result = run(bars, make_signals(4, entries=[1], exits=[1]), cfg())
    assert len(result.trades) == 0 and result.open_position is None


def test_after_a_stop_exit_a_new_entry_can_follow_on_the_next_open():
    bars = make_bars(opens=[10, 10, 10, 10, 10], lows=[10, 10, 9.0, 10, 10], closes=[10, 10, 10, 10, 10])
    result = run(bars, make_signals(5, entries=[1, 2]), cfg(stop_loss=0.05))
    assert len(result.trades) == 1 and result.trades[0]["exit_index"] == 2
    assert result.open_position["entry_index"] == 3


def test_exposure_counts_bars_with_a_position():
    bars = make_bars(opens=[10] * 10)
    # Held on bars 2, 3 (signal exit at bar 4's open) and 6..9 (open at the end): 6 of 10.
    result = run(bars, make_signals(10, entries=[1, 5], exits=[3]), cfg())
    assert result.exposure == pytest.approx(0.6)


# ----------------------------------------------------------------------------- shorts

def test_short_side_when_allowed():
    bars = make_bars(opens=[10, 10, 10, 9, 8, 8])
    signals = make_signals(6, short_entries=[1], short_exits=[3])
    result = run(bars, signals, cfg(allow_short=True, slippage=0.01, fee=0.001))
    (trade,) = result.trades
    entry, exit_ = 10 * 0.99, 8 * 1.01  # sell short lower, buy back higher
    size = 1000.0 / (entry * 1.001)
    assert trade["side"] == -1
    assert trade["entry_price"] == pytest.approx(entry) and trade["exit_price"] == pytest.approx(exit_)
    assert trade["size"] == pytest.approx(size)
    fees = size * entry * 0.001 + size * exit_ * 0.001
    assert trade["fees"] == pytest.approx(fees)
    assert trade["pnl"] == pytest.approx(size * (entry - exit_) - fees)
    assert trades_as_records(result)[0]["side"] == "short"
    # Equity while short rises as price falls: bar 3 close 9.
    assert result.equity[3] == pytest.approx(1000.0 - size * entry * 0.001 + size * (entry - 9.0))


def test_short_signals_are_ignored_unless_allowed():
    bars = make_bars(opens=[10, 10, 10, 9, 8, 8])
    result = run(bars, make_signals(6, short_entries=[1], short_exits=[3]), cfg())
    assert len(result.trades) == 0 and result.open_position is None


def test_short_stop_loss_is_above_the_entry():
    bars = make_bars(opens=[10, 10, 10, 10.2], highs=[10, 10, 10, 10.6], closes=[10, 10, 10, 10.2])
    result = run(bars, make_signals(4, short_entries=[1]), cfg(allow_short=True, stop_loss=0.05))
    (trade,) = result.trades
    assert trade["exit_price"] == pytest.approx(10.5)
    assert trade["pnl"] == pytest.approx(-100 * 0.5)


def test_short_trailing_stop_follows_the_lowest_low_of_earlier_bars():
    # Trail 10 % above the signal close 10 -> 11. Lows before bar 3: 10, 9 -> level 9.9, so
    # bar 3's high 9.5 is safe (its own low 8 would have put the level at 8.8).
    # Bar 4: level 8 * 1.1 = 8.8; opens 8.5, trades up to 9.0 -> buy back at 8.8.
    bars = make_bars(opens=[10, 10, 10, 9, 8.5], highs=[10, 10, 10, 9.5, 9.0],
                     lows=[10, 10, 9, 8, 8.4], closes=[10, 10, 9.5, 8.6, 8.9])
    result = run(bars, make_signals(5, short_entries=[1]), cfg(allow_short=True, trailing_stop=0.1))
    (trade,) = result.trades
    assert trade["exit_index"] == 4 and trade["exit_price"] == pytest.approx(8.8)
    assert trades_as_records(result)[0]["exit_reason"] == "trailing_stop"
    assert trade["pnl"] == pytest.approx(100 * (10 - 8.8))


def test_short_take_profit_is_below_the_entry():
    bars = make_bars(opens=[10, 10, 10, 9.8], highs=[10, 10, 10, 9.9], lows=[10, 10, 10, 9.4],
                     closes=[10, 10, 10, 9.6])
    result = run(bars, make_signals(4, short_entries=[1]), cfg(allow_short=True, take_profit=0.05))
    (trade,) = result.trades
    assert trades_as_records(result)[0]["exit_reason"] == "take_profit"
    assert trade["exit_price"] == pytest.approx(9.5)


def test_exit_and_opposite_entry_on_one_bar_reverse_at_the_next_open():
    bars = make_bars(opens=[10, 10, 11, 12, 11, 10])
    signals = make_signals(6, entries=[1], exits=[2], short_entries=[2], short_exits=[4])
    result = run(bars, signals, cfg(allow_short=True))
    long_trade, short_trade = result.trades
    assert (long_trade["side"], long_trade["entry_index"], long_trade["exit_index"]) == (1, 2, 3)
    assert (short_trade["side"], short_trade["entry_index"], short_trade["exit_index"]) == (-1, 3, 5)
    assert long_trade["exit_price"] == short_trade["entry_price"] == 12.0


# ----------------------------------------------------------------------------- output shape

def test_trades_as_records_has_exactly_the_documented_keys():
    bars = make_bars(opens=[10, 11, 12, 13, 14, 15])
    records = trades_as_records(run(bars, make_signals(6, entries=[1], exits=[3]), cfg()))
    assert set(records[0]) == {"entry_time", "exit_time", "entry_price", "exit_price", "size", "fees",
                               "pnl", "return", "exit_reason", "side"}
    assert isinstance(records[0]["entry_time"], int) and records[0]["exit_reason"] == "signal"


def test_run_accepts_a_mapping_of_arrays():
    bars = make_bars(opens=[10, 11, 12, 13, 14, 15])
    data = {"time": bars.time, "open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close}
    a = run(bars, make_signals(6, entries=[1], exits=[3]), cfg())
    b = run(data, make_signals(6, entries=[1], exits=[3]), cfg())
    np.testing.assert_array_equal(a.trades, b.trades)


def test_mismatched_signal_length_is_an_error():
    with pytest.raises(ValueError, match="entries_long"):
        run(make_bars(opens=[10] * 5), make_signals(4), cfg())


def test_invalid_config_is_rejected_with_the_field_name():
    with pytest.raises(ValueError, match="fee"):
        EngineConfig(fee=-0.1)
    with pytest.raises(ValueError, match="sizing"):
        EngineConfig(sizing="kelly")
    with pytest.raises(ValueError, match="stop_loss"):
        EngineConfig(stop_loss=1.5)
    assert EngineConfig.from_dict(EngineConfig(stop_loss=0.02).to_dict()) == EngineConfig(stop_loss=0.02)


def test_same_inputs_give_identical_results():
    rng = np.random.default_rng(7)
    n = 2000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[close[0], close[:-1]]
    bars = make_bars(opens, np.maximum(opens, close) * 1.003, np.minimum(opens, close) * 0.997, close)
    signals = Signals(rng.random(n) < 0.05, rng.random(n) < 0.05, rng.random(n) < 0.05, rng.random(n) < 0.05)
    config = cfg(fee=0.001, slippage=0.0005, stop_loss=0.02, take_profit=0.03, trailing_stop=0.025,
                 allow_short=True, amount_step=0.01)
    a, b = run(bars, signals, config), run(bars, signals, config)
    assert len(a.trades) > 20
    assert a.trades.tobytes() == b.trades.tobytes()
    assert a.equity.tobytes() == b.equity.tobytes()
    assert a.open_position == b.open_position
    # Every closed trade's P&L is accounted for in the final equity.
    open_pnl = a.open_position["unrealized_pnl"] if a.open_position else 0.0
    assert a.final_equity == pytest.approx(1000.0 + a.trades["pnl"].sum() + open_pnl)
    assert not math.isnan(a.final_equity)
