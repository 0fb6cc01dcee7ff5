"""A strategy with a REAL, built-in edge on data built for it, and pure random walks with none.

DELIBERATELY CONSTRUCTED, not market data. In ``edge_bars`` a volume spike at bar t (volume
15-60, against 9-11 otherwise) announces that the price will rise from bar t+1's open to bar
t+2's open, by 0.3 % plus a little more for a bigger spike; every other bar-to-bar move is
random (±0.1 %). ``VolumeTells`` buys at the next open when volume exceeds ``threshold`` and
sells ``hold`` bars later: with ``hold = 1`` it captures exactly the announced move, longer
holds add random bars. So the edge is real (it holds in every part of the data, in and out of
sample and in the hold-out) and the best parameters are knowable: a verdict of "likely
robust" is the right answer. ``random_walk_bars`` has no structure at all: every strategy's
expected return is zero there.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from quant.strategies import Bars, FloatParam, IntParam, Signals, Strategy
from quant.strategies import base as strategies_base

MIN = 60_000
HOUR = 3_600_000
T0 = 1_699_999_200_000  # a whole hour (and minute) in epoch ms


class VolumeTells(Strategy):
    """Test strategy: long at the next open after a volume spike, out `hold` bars later."""

    key = "volume_tells_test"
    name = "Volume tells (test)"
    params = (FloatParam("threshold", 30.0, 12.0, 60.0, step=1.0, help="Volume that counts as a spike."),
              IntParam("hold", 2, 1, 4, help="Bars to hold after entering."))

    @classmethod
    def warmup(cls, params, timeframe):
        return 1

    @classmethod
    def compute(cls, data: Bars, params, cache):
        entries = data.volume > params["threshold"]
        exits = np.zeros_like(entries)
        exits[params["hold"]:] = entries[:-params["hold"]]
        return Signals(entries_long=entries, exits_long=exits)


@contextmanager
def registered(strategy=VolumeTells):
    """Make a test strategy known to the library for the duration of a test only."""
    strategies_base.register(strategy)
    try:
        yield strategy
    finally:
        strategies_base._REGISTRY.pop(strategy.key, None)


def edge_arrays(n: int, seed: int = 5):
    """``(time, open, high, low, close, volume)`` of the constructed edge (module docstring)."""
    rng = np.random.default_rng(seed)
    volume = rng.uniform(9.0, 11.0, n)
    spikes = np.zeros(n, dtype=bool)
    t = 2
    while t < n - 8:
        if rng.random() < 0.12:
            spikes[t] = True
            t += 6  # spikes apart by more than the longest hold
        else:
            t += 1
    volume[spikes] = rng.uniform(15.0, 60.0, spikes.sum())
    step = rng.normal(0.0, 0.001, n)  # step[j]: log move from open[j] to open[j + 1]
    at = np.flatnonzero(spikes) + 1
    step[at] = 0.003 + 0.00005 * (volume[at - 1] - 15.0)
    opens = 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(step[:-1]))))
    close = np.r_[opens[1:], opens[-1] * np.exp(step[-1])]
    high = np.maximum(opens, close) * 1.0002
    low = np.minimum(opens, close) * 0.9998
    time = T0 + np.arange(n, dtype=np.int64) * MIN
    return time, opens, high, low, close, volume


def edge_bars(n: int, seed: int = 5) -> Bars:
    return Bars(*edge_arrays(n, seed), "1m")


def random_walk_bars(n: int, seed: int) -> Bars:
    """SYNTHETIC hourly bars of a driftless random walk in log price: no edge for anyone."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    opens = np.r_[100.0, close[:-1]]
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.001, n))
    return Bars(T0 + np.arange(n, dtype=np.int64) * HOUR, opens, high, low, close, np.ones(n), "1h")
