"""Walk-forward folds and the hold-out split: exact boundaries, no overlap, no leakage."""

import itertools

import numpy as np
import pytest

from quant.engine import EngineConfig
from quant.optimisation.objective import Evaluator
from quant.optimisation.walkforward import Window, folds, holdout_split
from quant.strategies import Bars

HOUR = 3_600_000
T0 = 1_700_000_000_000


def _ranges(fold_list):
    return [(f.in_sample.range, f.out_of_sample.range) for f in fold_list]


def test_rolling_folds_have_the_exact_expected_boundaries():
    # 100 bars, 10 reserved for warm-up: OOS = 90 // (3 + 3) = 15, IS = 90 - 3 * 15 = 45.
    result = folds(100, k=3, scheme="rolling", warmup_bars=10)
    assert _ranges(result) == [((10, 55), (55, 70)), ((25, 70), (70, 85)), ((40, 85), (85, 100))]
    assert all(f.in_sample.warmup == 10 and f.out_of_sample.warmup == 10 for f in result)
    assert [f.in_sample.read_start for f in result] == [0, 15, 30]


def test_anchored_folds_grow_from_the_first_usable_bar():
    result = folds(100, k=3, scheme="anchored", warmup_bars=10)
    assert _ranges(result) == [((10, 55), (55, 70)), ((10, 70), (70, 85)), ((10, 85), (85, 100))]


def test_explicit_lengths_put_the_folds_at_the_end_of_the_range():
    result = folds(100, k=2, in_sample_bars=30, out_of_sample_bars=20)
    assert _ranges(result) == [((30, 60), (60, 80)), ((50, 80), (80, 100))]
    anchored = folds(100, k=2, scheme="anchored", in_sample_bars=30, out_of_sample_bars=20)
    assert _ranges(anchored) == [((30, 60), (60, 80)), ((30, 80), (80, 100))]


def test_one_given_length_fills_the_rest():
    assert _ranges(folds(100, k=4, out_of_sample_bars=10)) == [
        ((0, 60), (60, 70)), ((10, 70), (70, 80)), ((20, 80), (80, 90)), ((30, 90), (90, 100))]
    # OOS rounds down ((100 - 41) // 4 = 14); the 3 spare bars go unused at the start.
    assert _ranges(folds(100, k=4, in_sample_bars=41))[0] == ((3, 44), (44, 58))


@pytest.mark.parametrize("n,k,scheme,warmup,is_len,oos_len", [
    (n, k, scheme, warmup, is_len, oos_len)
    for n, k, scheme, warmup, (is_len, oos_len) in itertools.product(
        (60, 257, 1000), (1, 2, 5), ("rolling", "anchored"), (0, 7, 40),
        ((None, None), (20, None), (None, 8), (25, 9)))
])
def test_folds_never_overlap_or_leak(n, k, scheme, warmup, is_len, oos_len):
    try:
        result = folds(n, k=k, scheme=scheme, warmup_bars=warmup, in_sample_bars=is_len,
                       out_of_sample_bars=oos_len)
    except ValueError:
        return  # impossible configurations are refused (tested separately)
    assert len(result) == k
    for i, f in enumerate(result):
        ins, oos = f.in_sample, f.out_of_sample
        assert f.index == i
        assert ins.read_start >= 0 and oos.read_start >= 0, "warm-up must come from real bars"
        assert ins.start < ins.end == oos.start < oos.end <= n, "OOS starts where IS ends, after it"
        assert ins.start >= warmup, "every window gets its full warm-up"
        if scheme == "anchored":
            assert ins.start == result[0].in_sample.start
        else:
            assert ins.n_bars == result[0].in_sample.n_bars
        if i:
            assert oos.start == result[i - 1].out_of_sample.end, "OOS windows are contiguous"
            assert oos.n_bars == result[0].out_of_sample.n_bars
    assert result[-1].out_of_sample.end == n, "OOS windows tile the end of the range"


def test_holdout_is_the_final_share_and_its_warmup_reads_only_the_past():
    optimise, holdout = holdout_split(1000, 0.2, warmup_bars=50)
    assert optimise.range == (0, 800)
    assert holdout.range == (800, 1000)
    assert holdout.read_start == 750  # warm-up from the end of the optimisation range
    fold_list = folds(optimise.end, k=4, warmup_bars=50)
    assert max(f.out_of_sample.end for f in fold_list) == optimise.end
    assert all(w.end <= holdout.start for f in fold_list for w in (f.in_sample, f.out_of_sample))


def test_times_are_epoch_ms_and_half_open():
    time = T0 + np.arange(200, dtype=np.int64) * HOUR
    optimise, holdout = holdout_split(time, 0.25)
    assert (optimise.start_ms, optimise.end_ms) == (T0, T0 + 150 * HOUR)
    assert (holdout.start_ms, holdout.end_ms) == (T0 + 150 * HOUR, T0 + 200 * HOUR)
    result = folds(time[:optimise.end], k=2, in_sample_bars=50, out_of_sample_bars=25)
    assert result[0].in_sample.start_ms == T0 + 50 * HOUR
    assert result[0].out_of_sample.to_dict() == {
        "start": T0 + 100 * HOUR, "end": T0 + 125 * HOUR, "start_index": 100, "end_index": 125, "warmup_bars": 0}
    assert result[1].out_of_sample.end_ms == T0 + 150 * HOUR  # close of the last optimisation bar


def test_bars_objects_are_accepted():
    bars = _bars(120)
    assert folds(bars, k=2)[1].out_of_sample.end_ms == T0 + 120 * HOUR
    assert holdout_split(bars, 0.5)[1].start_ms == T0 + 60 * HOUR


@pytest.mark.parametrize("kwargs,message", [
    ({"k": 5, "warmup_bars": 15}, "too few bars for 5 folds"),
    ({"k": 0}, "k (number of folds) must be a positive integer"),
    ({"k": 2, "scheme": "expanding"}, "scheme must be one of rolling, anchored"),
    ({"k": 2, "in_sample_bars": 15, "out_of_sample_bars": 5}, "need 25 bars but only 20 are usable"),
    ({"k": 3, "out_of_sample_bars": 7}, "in-sample window of -1 bar(s) is too short"),
    ({"k": 2, "in_sample_bars": 18}, "out-of-sample windows of 1 bar(s) are too short"),
    ({"k": 2, "warmup_bars": -1}, "warmup_bars must be an integer >= 0"),
])
def test_impossible_fold_configurations_are_refused_with_the_numbers(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        folds(20, **kwargs)


@pytest.mark.parametrize("share,message", [
    (0, "strictly between 0 and 1"), (1.0, "strictly between 0 and 1"), (-0.1, "strictly between 0 and 1"),
    (0.001, "less than one bar"), (0.99, "leaves 1 bar"),
])
def test_impossible_holdout_shares_are_refused(share, message):
    with pytest.raises(ValueError, match=message):
        holdout_split(100, share)


# --------------------------------------------------------------------------- no lookahead in windows

def _bars(n, seed=3):
    rng = np.random.default_rng(seed)  # SYNTHETIC random walk
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[close[0], close[:-1]]
    high = np.maximum(opens, close) * 1.002
    low = np.minimum(opens, close) * 0.998
    return Bars(T0 + np.arange(n, dtype=np.int64) * HOUR, opens, high, low, close, np.ones(n), "1h")


def test_a_window_never_reads_bars_after_its_end_nor_trades_in_its_warmup():
    bars = _bars(1500)
    window = Window(400, 1000, 200)
    clean = Evaluator(bars, "sma_cross", EngineConfig(fee=0.0)).run({"fast": 5, "slow": 20}, window,
                                                                      keep_arrays=True)
    # Wreck every bar outside [read_start, end): the result must not change at all.
    wrecked = {k: getattr(bars, k).copy() for k in ("open", "high", "low", "close")}
    for arr in wrecked.values():
        arr[:window.read_start] = np.nan
        arr[window.end:] = 1e9
    poisoned = Bars(bars.time, wrecked["open"], wrecked["high"], wrecked["low"], wrecked["close"],
                    bars.volume, "1h")
    again = Evaluator(poisoned, "sma_cross", EngineConfig(fee=0.0)).run({"fast": 5, "slow": 20}, window,
                                                                         keep_arrays=True)
    assert again.metrics == clean.metrics
    assert np.array_equal(again.equity, clean.equity)
    assert clean.metrics["trade_count"] > 5
    # The equity curve covers exactly the window and starts flat with the cash.
    assert len(clean.equity) == window.n_bars and clean.equity[0] == EngineConfig().cash
