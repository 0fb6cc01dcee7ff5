from tests.backtests.conftest import market  # noqa: F401  (the same file-source market with candles)
