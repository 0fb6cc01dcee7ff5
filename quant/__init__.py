"""TradePulse's Django-free research and trading core.

Everything numeric lives here, importable without Django: timeframes, bars and the strategy
library (`quant.strategies`), the engine (`quant.engine`), metrics (`quant.metrics`) and
optimisation (`quant.optimisation`: walk-forward, optuna studies, DSR, PBO, verdict).
Apps depend on this package; it never imports Django or an app (tests/test_layout.py).
"""
