"""Parameter stability: neighbours of the chosen parameters and how far the objective falls."""

import numpy as np
import pytest

from quant.engine import EngineConfig
from quant.optimisation.objective import Evaluator, score_params
from quant.optimisation.stability import neighbours, parameter_stability
from quant.optimisation.walkforward import folds
from quant.strategies import Bars, FloatParam, IntParam, Strategy


def _changes(items):
    return {item["change"]: item for item in items}


def test_integer_neighbours_move_one_step_or_ten_percent():
    items = _changes(neighbours("sma_cross", {"fast": 10, "slow": 30}))
    assert set(items) == {"fast -1", "fast +1", "slow -3", "slow +3"}
    assert items["slow +3"]["params"] == {"fast": 10, "slow": 33}
    assert all(item["error"] is None for item in items.values())
    big = _changes(neighbours("sma_cross", {"fast": 150, "slow": 400}))
    assert set(big) == {"fast -15", "fast +15", "slow -40", "slow +40"}


def test_neighbours_stay_within_bounds_and_report_cross_field_violations():
    at_bound = _changes(neighbours("sma_cross", {"fast": 2, "slow": 500}))
    assert set(at_bound) == {"fast +1", "slow -50"}  # 1 and 550 are out of bounds: dropped
    tight = _changes(neighbours("sma_cross", {"fast": 29, "slow": 30}))
    assert "must be below slow" in tight["fast +3"]["error"]
    assert "must be below slow" in tight["slow -3"]["error"]
    assert tight["fast -3"]["error"] is None


def test_float_categorical_and_bool_neighbours():
    bollinger = _changes(neighbours("bollinger_breakout", {"period": 20, "k": 2.0}))
    assert bollinger["k -0.2"]["params"]["k"] == pytest.approx(1.8)
    assert bollinger["k +0.2"]["params"]["k"] == pytest.approx(2.2)
    sweep = _changes(neighbours("htf_sweep", {"htf": "4h", "use_levels": True}))
    assert {"htf=1h", "htf=2h", "htf=6h", "htf=12h", "htf=1d", "use_levels=False"} <= set(sweep)


class _Unstepped(Strategy):
    """Not registered: a float without a step, one on a log scale."""

    key = "unstepped_test"
    params = (IntParam("n", 5, 1, 10), FloatParam("x", 0.0, -1.0, 1.0),
              FloatParam("scale", 1.0, 0.01, 100.0, log=True))


def test_floats_without_a_step_move_by_a_relative_amount():
    items = _changes(neighbours(_Unstepped, {"n": 5, "x": 0.0, "scale": 1.0}, relative_step=0.1))
    assert items["x +0.2"]["params"]["x"] == pytest.approx(0.2)  # value 0: 10 % of the range
    assert items["scale +0.1"]["params"]["scale"] == pytest.approx(1.1)
    assert items["scale -0.0909091"]["params"]["scale"] == pytest.approx(1 / 1.1)


def test_stability_of_a_peak_and_of_a_plateau():
    def peak(p):
        return 10.0 - abs(p["fast"] - 10) - abs(p["slow"] - 30) / 3

    result = parameter_stability(peak, "sma_cross", {"fast": 10, "slow": 30})
    assert result["base_value"] == 10.0
    assert [n["value"] for n in result["neighbours"]] == [9.0, 9.0, 9.0, 9.0]
    assert result["mean_ratio"] == pytest.approx(0.9) and result["min_ratio"] == pytest.approx(0.9)
    assert result["relative_drop"] == pytest.approx(0.1)
    assert result["per_param"]["slow"]["relative_drop"] == pytest.approx(0.1)

    plateau = parameter_stability(lambda p: 2.0, "sma_cross", {"fast": 10, "slow": 30})
    assert plateau["relative_drop"] == 0.0 and plateau["worst_relative_drop"] == 0.0


def test_stability_with_a_negative_base_has_no_ratio_but_a_drop():
    result = parameter_stability(lambda p: -1.0 - (p["fast"] != 10), "sma_cross", {"fast": 10, "slow": 30})
    assert result["base_value"] == -1.0
    assert result["mean_ratio"] is None
    assert result["relative_drop"] == pytest.approx(0.5)  # (-1 - -1.5) / 1
    assert result["skipped"] == []


def test_stability_on_real_backtests_uses_the_in_sample_objective():
    rng = np.random.default_rng(4)  # SYNTHETIC random walk
    n = 3000
    close = 100 * np.exp(np.cumsum(rng.normal(0.0002, 0.008, n)))
    opens = np.r_[close[0], close[:-1]]
    bars = Bars(1_700_000_000_000 + np.arange(n) * 3_600_000, opens, np.maximum(opens, close) * 1.001,
                np.minimum(opens, close) * 0.999, close, np.ones(n), "1h")
    evaluator = Evaluator(bars, "sma_cross", EngineConfig(fee=0.0005))
    windows = [f.in_sample for f in folds(n, k=3, warmup_bars=60)]

    def score(p):
        return score_params(evaluator, p, windows, objective="sharpe", min_trades=5).value

    result = parameter_stability(score, "sma_cross", {"fast": 8, "slow": 40})
    assert result["base_value"] == pytest.approx(score({"fast": 8, "slow": 40}))
    assert result["n_evaluated"] == 4
    assert all(np.isfinite(n["value"]) for n in result["neighbours"])
    assert result["relative_drop"] is not None
