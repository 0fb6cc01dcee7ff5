"""Local Binance-spot exchange simulator for tests and benchmarks (no internet).

Typical conftest usage (one line)::

    from tests.exchange_sim import simulator_fixture

    exchange_sim = simulator_fixture(now=1_700_000_000_000)

or, when the fixture must also export the ccxt overrides::

    @pytest.fixture
    def exchange_sim(monkeypatch):
        with running_simulator(now=1_700_000_000_000) as sim:
            monkeypatch.setenv("TRADEPULSE_CCXT_OVERRIDES", sim.ccxt_overrides_json())
            yield sim
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .server import (
    DEFAULT_MARKETS,
    INTERVALS,
    MALFORMED_KINDS,
    ApiError,
    ExchangeSimulator,
    Faults,
    MarketSpec,
    RequestRecord,
)

__all__ = [
    "DEFAULT_MARKETS",
    "INTERVALS",
    "MALFORMED_KINDS",
    "ApiError",
    "ExchangeSimulator",
    "Faults",
    "MarketSpec",
    "RequestRecord",
    "running_simulator",
    "simulator_fixture",
]


@contextmanager
def running_simulator(**kwargs: Any) -> Iterator[ExchangeSimulator]:
    """Start an ExchangeSimulator(**kwargs) on a free port, yield it, always stop it."""
    sim = ExchangeSimulator(**kwargs)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def simulator_fixture(*, scope: str = "function", name: str | None = None, env_var: str | None = None,
                      **kwargs: Any):
    """Build a pytest fixture yielding a running ExchangeSimulator(**kwargs).

    ``exchange_sim = simulator_fixture(now=...)`` in a conftest is all that is needed.
    With ``env_var="TRADEPULSE_CCXT_OVERRIDES"`` the fixture also sets that
    environment variable to ``sim.ccxt_overrides_json()`` for its lifetime
    (restoring the previous value afterwards).
    """
    import os

    import pytest

    def _fixture():
        with running_simulator(**kwargs) as sim:
            if env_var is None:
                yield sim
                return
            old = os.environ.get(env_var)
            os.environ[env_var] = sim.ccxt_overrides_json()
            try:
                yield sim
            finally:
                if old is None:
                    os.environ.pop(env_var, None)
                else:
                    os.environ[env_var] = old

    return pytest.fixture(scope=scope, name=name)(_fixture)
