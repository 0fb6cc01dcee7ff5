"""Each metric against a hand computation on a tiny series."""

import json
import math

import numpy as np
import pytest

from quant import metrics
from quant.engine import EngineConfig, run
from quant.strategies import Bars, Signals

# Equity with a recovered 25 % drawdown: high 120 at bar 1, low 90 at bar 2, back above at bar 4.
EQUITY = np.array([100.0, 120.0, 90.0, 100.0, 130.0, 125.0])
RETURNS = np.array([0.2, -0.25, 1 / 9, 0.3, -5 / 130])  # r_i = e_i / e_{i-1} - 1
PNL = np.array([10.0, -5.0, 20.0, -5.0, 0.0])
TRADE_RETURNS = np.array([0.1, -0.05, 0.2, -0.05, 0.0])


def test_bars_per_year_uses_a_365_day_year():
    assert metrics.bars_per_year("1m") == 525_600
    assert metrics.bars_per_year("1h") == 8_760
    assert metrics.bars_per_year("1d") == 365


def test_per_bar_returns():
    np.testing.assert_allclose(metrics.per_bar_returns(EQUITY), RETURNS)


def test_total_return():
    assert metrics.total_return(EQUITY) == pytest.approx(0.25)


def test_cagr_compounds_over_the_bar_intervals():
    # Two intervals of one "year" each, 100 -> 121: 10 % a year.
    assert metrics.cagr([100.0, 110.0, 121.0], bars_per_year=1) == pytest.approx(0.10)
    # Same growth over 2 intervals when a year has 4 bars: (1.21) ** (4 / 2) - 1.
    assert metrics.cagr([100.0, 110.0, 121.0], bars_per_year=4) == pytest.approx(1.21 ** 2 - 1)


def test_annual_volatility_is_sample_std_times_sqrt_bars_per_year():
    mean = RETURNS.sum() / 5
    std = math.sqrt(((RETURNS - mean) ** 2).sum() / 4)
    assert metrics.annual_volatility(EQUITY, 365) == pytest.approx(std * math.sqrt(365))


def test_sharpe():
    mean = RETURNS.sum() / 5
    std = math.sqrt(((RETURNS - mean) ** 2).sum() / 4)
    assert metrics.sharpe(EQUITY, 365) == pytest.approx(mean / std * math.sqrt(365))


def test_sharpe_is_undefined_for_a_flat_curve():
    assert math.isnan(metrics.sharpe([100.0] * 5, 365))


def test_sortino_uses_downside_deviation_over_all_returns():
    mean = RETURNS.sum() / 5
    downside = math.sqrt((0.25 ** 2 + (5 / 130) ** 2) / 5)
    assert metrics.sortino(EQUITY, 365) == pytest.approx(mean / downside * math.sqrt(365))


def test_max_drawdown_and_its_duration_when_recovered():
    assert metrics.max_drawdown(EQUITY) == pytest.approx(0.25)  # 120 -> 90
    assert metrics.max_drawdown_duration(EQUITY) == 3  # from bar 1 to bar 4
    assert metrics.max_drawdown_duration_ms(EQUITY, 3_600_000) == 3 * 3_600_000


def test_max_drawdown_duration_runs_to_the_end_when_not_recovered():
    equity = [100.0, 110.0, 99.0, 105.0, 111.0, 90.0]
    assert metrics.max_drawdown(equity) == pytest.approx(1 - 90 / 111)
    assert metrics.max_drawdown_duration(equity) == 1  # high at bar 4, last bar is 5


def test_no_drawdown():
    assert metrics.max_drawdown([100.0, 101.0, 102.0]) == 0.0
    assert metrics.max_drawdown_duration([100.0, 101.0, 102.0]) == 0
    assert math.isnan(metrics.calmar([100.0, 101.0, 102.0], 365))


def test_calmar_is_cagr_over_max_drawdown():
    expected = (1.25 ** (365 / 5) - 1) / 0.25
    assert metrics.calmar(EQUITY, 365) == pytest.approx(expected)


def test_probabilistic_sharpe_ratio_matches_the_formula():
    n = 5
    mean = RETURNS.mean()
    sample_std = RETURNS.std(ddof=1)
    pop_std = RETURNS.std(ddof=0)
    skew = ((RETURNS - mean) ** 3).mean() / pop_std ** 3
    kurt = ((RETURNS - mean) ** 4).mean() / pop_std ** 4
    sr = mean / sample_std
    z = sr * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr ** 2)
    expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert metrics.probabilistic_sharpe_ratio(EQUITY) == pytest.approx(expected)
    # Against a higher benchmark the probability falls.
    assert metrics.probabilistic_sharpe_ratio(EQUITY, benchmark_sharpe=0.5) < expected


def test_psr_of_a_clearly_positive_normal_series_is_near_one():
    rng = np.random.default_rng(3)
    equity = 100 * np.cumprod(1 + rng.normal(0.002, 0.01, 2000))
    assert metrics.probabilistic_sharpe_ratio(equity) > 0.99


def test_trade_metrics():
    assert metrics.trade_count(PNL) == 5
    assert metrics.win_rate(PNL) == pytest.approx(2 / 5)
    assert metrics.profit_factor(PNL) == pytest.approx(30 / 10)
    assert metrics.expectancy(TRADE_RETURNS) == pytest.approx(0.04)
    assert metrics.avg_win(TRADE_RETURNS) == pytest.approx(0.15)
    assert metrics.avg_loss(TRADE_RETURNS) == pytest.approx(-0.05)
    assert metrics.best_trade(TRADE_RETURNS) == pytest.approx(0.2)
    assert metrics.worst_trade(TRADE_RETURNS) == pytest.approx(-0.05)


def test_sqn():
    # mean 4, squared deviations 36 + 81 + 256 + 81 + 16 = 470, sample variance 117.5.
    assert metrics.sqn(PNL) == pytest.approx(math.sqrt(5) * 4 / math.sqrt(117.5))


def test_profit_factor_without_losses_is_infinite_and_none_in_compute_all():
    assert metrics.profit_factor([5.0, 1.0]) == math.inf
    assert math.isnan(metrics.profit_factor([]))
    row = metrics.compute_from_arrays(EQUITY, np.array([5.0, 1.0]), np.array([0.05, 0.01]), 0.5, 365)
    assert row["profit_factor"] is None and row["trade_count"] == 2


def test_trade_metrics_without_trades_are_undefined():
    for fn in (metrics.win_rate, metrics.expectancy, metrics.best_trade, metrics.sqn):
        assert math.isnan(fn([]))


def _tiny_result():
    opens = np.array([10.0, 10, 10, 12, 12, 9, 9, 11])
    bars = Bars(np.arange(8) * 3_600_000, opens, opens, opens, opens, np.ones(8), "1h")
    entries = np.zeros(8, bool)
    exits = np.zeros(8, bool)
    entries[[1, 5]] = True
    exits[[3]] = True
    return run(bars, Signals(entries, exits), EngineConfig(cash=1000.0, fee=0.0))


def test_compute_all_on_an_engine_result():
    result = _tiny_result()
    # Long 100 @10 from bar 2, out @12 at bar 4 (+200); long 1200/9 @9 from bar 6, open at the end.
    row = metrics.compute_all(result)
    assert row["trade_count"] == 1
    assert row["win_rate"] == 1.0
    assert row["expectancy"] == pytest.approx(0.2)
    assert row["exposure"] == pytest.approx(4 / 8)
    assert row["final_equity"] == pytest.approx(1200 + 1200 / 9 * 2)
    assert row["total_return"] == pytest.approx((1200 + 1200 / 9 * 2) / 1000 - 1)
    assert row["max_drawdown"] == pytest.approx(0.0)
    assert row["max_drawdown_duration_ms"] == 0
    assert row["sharpe"] == pytest.approx(metrics.sharpe(result.equity, 8760))


def test_compute_all_is_json_safe_for_a_flat_run():
    opens = np.full(5, 10.0)
    bars = Bars(np.arange(5) * 60_000, opens, opens, opens, opens, np.ones(5), "1m")
    result = run(bars, Signals(np.zeros(5, bool), np.zeros(5, bool)), EngineConfig())
    row = metrics.compute_all(result)
    json.dumps(row, allow_nan=False)
    assert row["sharpe"] is None and row["profit_factor"] is None and row["trade_count"] == 0
    assert row["total_return"] == 0.0


def test_compute_all_needs_a_timeframe_or_bars_per_year():
    result = _tiny_result()
    result.timeframe = None
    with pytest.raises(ValueError, match="bars_per_year"):
        metrics.compute_all(result)
    assert metrics.compute_all(result, 8760)["max_drawdown_duration_ms"] is None
