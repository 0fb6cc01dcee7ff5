"""TradePulse strategy library: pure-Python strategies producing vectorised signals.

Import from here::

    from quant.strategies import Bars, get_strategy
    strategy = get_strategy("sma_cross")
    signals = strategy.signals(bars, {"fast": 10, "slow": 30})

Importing this package registers every built-in strategy. No Django imports anywhere.
"""

from .base import (TIMEFRAMES, Bars, BoolParam, CategoricalParam, FloatParam, IndicatorCache,
                   IntParam, Param, ParameterError, Signals, Strategy, UnknownStrategy,
                   align_to_base, all_strategies, get_strategy, register, timeframe_ms)

# Imported for their side effect: each module registers its strategies.
from . import breakout, crossover, liquidity, reversion  # noqa: E402,F401

__all__ = [
    "TIMEFRAMES", "Bars", "BoolParam", "CategoricalParam", "FloatParam", "IndicatorCache",
    "IntParam", "Param", "ParameterError", "Signals", "Strategy", "UnknownStrategy",
    "align_to_base", "all_strategies", "get_strategy", "register", "timeframe_ms",
]
