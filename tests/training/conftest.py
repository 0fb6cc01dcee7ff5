"""Training tests use the backtests' deliberately built markets and candles."""
from tests.backtests.conftest import MIN, T0, gappy_market, market, ms_dt, wave_candles  # noqa: F401
