"""The bar grid for fixed timeframes and calendar months (variable-length month bars open at
00:00 UTC on the 1st), checked against the calendar itself (datetime), not against itself."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from quant import timeframes as tf


def ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize("t, floor, ceil, nxt", [
    (ms(2024, 2, 14, 9, 30), ms(2024, 2, 1), ms(2024, 3, 1), ms(2024, 3, 1)),      # leap February
    (ms(2024, 3, 1), ms(2024, 3, 1), ms(2024, 3, 1), ms(2024, 4, 1)),              # on the grid
    (ms(2023, 12, 31, 23, 59, 59), ms(2023, 12, 1), ms(2024, 1, 1), ms(2024, 1, 1)),  # across a year
    (ms(1969, 12, 15), ms(1969, 12, 1), ms(1970, 1, 1), ms(1970, 1, 1)),           # before the epoch
])
def test_month_floor_ceil_and_next_follow_the_calendar(t, floor, ceil, nxt):
    assert tf.floor_time(t, "1M") == floor
    assert tf.ceil_time(t, "1M") == ceil
    assert tf.next_open(t, "1M") == nxt


def test_month_bars_have_the_lengths_of_their_months():
    opens = tf.bar_opens(ms(2023, 11, 20), ms(2024, 4, 1), "1M")
    assert opens.tolist() == [ms(2023, 12, 1), ms(2024, 1, 1), ms(2024, 2, 1), ms(2024, 3, 1)]
    lengths_days = (tf.close_times(opens, "1M") - opens) // 86_400_000
    assert lengths_days.tolist() == [31, 31, 29, 31]
    assert tf.count_bars(ms(2023, 11, 20), ms(2024, 4, 1), "1M") == 4
    assert tf.count_bars(ms(2024, 1, 1), ms(2024, 1, 1), "1M") == 0
    assert tf.count_bars(ms(2020, 1, 1), ms(2025, 1, 1), "1M") == 60


def test_aligned_accepts_only_the_first_of_a_month_at_midnight():
    times = np.array([ms(2024, 2, 1), ms(2024, 2, 2), ms(2024, 2, 1, 0, 1), ms(2024, 3, 1), ms(2024, 2, 29)])
    assert tf.aligned(times, "1M").tolist() == [True, False, False, True, False]


def test_fixed_timeframes_keep_their_grid():
    t = ms(2024, 2, 14, 9, 30)
    assert tf.floor_time(t, "1h") == ms(2024, 2, 14, 9) and tf.next_open(t, "1h") == ms(2024, 2, 14, 10)
    assert tf.floor_time(t, "1w") == ms(2024, 2, 12)  # a Monday
    assert datetime.fromtimestamp(tf.floor_time(t, "1w") / 1000, tz=UTC).weekday() == 0
    assert tf.count_bars(ms(2024, 1, 1), ms(2024, 1, 2), "1h") == 24
    assert tf.bar_opens(ms(2024, 1, 1), ms(2024, 1, 1, 3), "1h").tolist() == [ms(2024, 1, 1, h) for h in range(3)]
    assert tf.close_times(np.array([ms(2024, 1, 1)]), "1d").tolist() == [ms(2024, 1, 2)]


def test_annualisation_counts_twelve_months_and_a_365_day_year():
    assert tf.bars_per_year("1M") == 12
    assert tf.bars_per_year("1h") == 8760 and tf.bars_per_year("1d") == 365


def test_a_month_has_no_fixed_length_and_unknown_timeframes_are_named():
    with pytest.raises(ValueError, match="no fixed length"):
        tf.timeframe_ms("1M")
    with pytest.raises(ValueError, match="unknown timeframe '3M'"):
        tf.floor_time(0, "3M")
    assert 28 * 86_400_000 < tf.nominal_ms("1M") < 31 * 86_400_000


def test_metrics_annualise_monthly_bars_with_twelve():
    from quant import metrics

    equity = np.array([100.0, 101.0, 99.5, 102.0, 103.5])
    assert metrics.bars_per_year("1M") == 12
    assert metrics.sharpe(equity, metrics.bars_per_year("1M")) == pytest.approx(
        metrics.sharpe(equity, 1.0) * np.sqrt(12))
