"""A sweep row must equal the metrics of an individual run with the same parameters."""

import numpy as np
import pytest

from quant.engine import EngineConfig, run
from quant.engine.sweep import param_grid, sweep
from quant.metrics import compute_all
from quant.strategies import Bars, ParameterError, get_strategy


@pytest.fixture(scope="module")
def bars():
    rng = np.random.default_rng(11)
    n = 5000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    opens = np.r_[close[0], close[:-1]]
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.002, n))
    return Bars(1_700_000_000_000 + np.arange(n) * 900_000, opens, high, low, close,
                rng.lognormal(0, 1, n), "15m")


CONFIG = EngineConfig(cash=5000.0, fee=0.001, slippage=0.0005, stop_loss=0.02, take_profit=0.04,
                      amount_step=0.001, allow_short=True)


def test_param_grid_is_the_cartesian_product():
    assert param_grid({"fast": [5, 10], "slow": [20, 30]}) == [
        {"fast": 5, "slow": 20}, {"fast": 5, "slow": 30}, {"fast": 10, "slow": 20}, {"fast": 10, "slow": 30}]


@pytest.mark.parametrize("key,grid", [
    ("sma_cross", param_grid({"fast": [5, 10, 20], "slow": [30, 50]})),
    ("rsi_reversion", param_grid({"period": [7, 14], "lower": [25, 30]})),
    ("donchian_breakout", [{"atr_stop": 0.0}, {"atr_stop": 2.0, "entry_period": 30}]),
    ("htf_sweep", [{"htf": "1h"}, {"htf": "4h", "use_levels": False}]),
])
def test_sweep_equals_individual_runs(bars, key, grid):
    rows = sweep(bars, key, grid, CONFIG)
    strategy = get_strategy(key)
    assert len(rows) == len(grid)
    traded = 0
    for params, row in zip(grid, rows):
        result = run(bars, strategy.signals(bars, params), CONFIG)
        expected = compute_all(result)
        assert row["params"] == strategy.validate_params(params)
        assert {k: v for k, v in row.items() if k != "params"} == expected
        traded += expected["trade_count"] > 0
    assert traded, "no combination traded; the comparison would be vacuous"


def test_sweep_results_do_not_depend_on_the_number_of_workers(bars):
    grid = param_grid({"fast": [3, 5, 8, 13], "slow": [21, 34, 55]})
    assert sweep(bars, "sma_cross", grid, CONFIG, workers=1) == sweep(bars, "sma_cross", grid, CONFIG, workers=4)


def test_invalid_combination_is_named(bars):
    with pytest.raises(ParameterError, match="combination 1"):
        sweep(bars, "sma_cross", [{"fast": 5, "slow": 20}, {"fast": 30, "slow": 20}], CONFIG)
    rows = sweep(bars, "sma_cross", [{"fast": 5, "slow": 20}, {"fast": 30, "slow": 20}], CONFIG, skip_invalid=True)
    assert "error" not in rows[0] and "fast: 30 must be below slow" in rows[1]["error"]
