"""Schemathesis over /api/schema/: every operation, present and future, is fuzzed in CI.

The operations are read from the schema the code generates (an endpoint added later is fuzzed
without touching this file); each is a test of its own. Requests go in-process to the WSGI app,
authenticated by API token as a trader who owns real objects (candles, a backtest with trades, a
strategy config, a training run, a download job, a quality issue); path ids are drawn from those
objects half of the time, so detail actions run on real data. Valid and invalid input both; every
response must not be a server error and must match the schema. Bounded: a few examples each.
"""
from __future__ import annotations

import numpy as np
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from apps.accounts.services import token_create
from apps.backtests import services as backtests
from apps.marketdata import services as md
from apps.marketdata.models import DataQualityIssue, Market
from apps.training import services as training
from tests.backtests.conftest import MIN, T0, market, ms_dt, wave_candles  # noqa: F401
from tests.marketdata.conftest import sim  # noqa: F401
from tests.training.training_fixtures import _optuna_connections_closed  # noqa: F401

_SERVED: list[dict] = []
CHECKS = [not_a_server_error, response_schema_conformance]
EXAMPLES = 10


def _operations() -> list[str]:
    spec = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item
                  if method in ("get", "post", "put", "patch", "delete"))


@pytest.fixture
def owned(db, market, alice, sim):  # noqa: F811
    """Alice's objects, by the collection they live in (the first path segment after /api/v1/)."""
    candles = wave_candles(1000)
    broken = candles.close.copy()
    broken[500] = np.nan  # one rejected row: a quality issue
    md.candles_ingest(market=market, timeframe="1m", source="test",
                      rows=np.column_stack([candles.time + 10_000 * MIN, candles.open, candles.high, candles.low,
                                            broken, candles.volume]))
    run = backtests.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(T0),
                                    end=ms_dt(T0 + 1000 * MIN), strategy_key="sma_cross",
                                    parameters={"fast": 10, "slow": 30}, enqueue=False)
    backtests.backtest_execute(run.pk)
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    config = backtests.backtest_save_as_config(run=run, owner=alice)
    train = training.training_create(owner=alice, market=market, timeframe="1m", start=ms_dt(T0),
                                     end=ms_dt(T0 + 1000 * MIN), strategy_key="sma_cross", n_trials=4, folds=2,
                                     min_trades=0, enqueue=False)
    binance = md.exchange_get_or_create(name="binance")
    md.exchange_load_markets(exchange=binance)
    btc = Market.objects.get(exchange=binance, symbol="BTC/USDT")
    job = md.download_start(owner=alice, market=btc, timeframe="1h", start_ms=T0, end_ms=T0 + 10 * 60 * MIN,
                            enqueue=False)
    issue = DataQualityIssue.objects.filter(market=market).first()
    return {"backtests": [run.pk], "strategy-configs": [config.pk], "training-runs": [train.pk],
            "download-jobs": [job.pk], "quality-issues": [issue.pk], "markets": [market.pk, btc.pk],
            "exchanges": [market.exchange_id, binance.pk], "strategies": ["sma_cross"]}


@pytest.fixture
def api_schema(owned):
    # As Django's test client does: a request must not close the test's connection and transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        if not _SERVED:  # the schema as /api/schema/ serves it, fetched once per process
            _SERVED.append(schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application()).raw_schema)
        schema = schemathesis.openapi.from_dict(_SERVED[0])
        schema.app, schema.location = get_wsgi_application(), "/api/schema/"
        yield schema
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _cases(operation, owned: dict):
    """Generated cases, and as many again with the path's parameter set to a real object's id."""
    names = [p.name for p in operation.path_parameters]
    collection = operation.path.removeprefix("/api/v1/").split("/")[0]
    real = owned.get(collection, [v for ids in owned.values() for v in ids if isinstance(v, int)])
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    generated = [operation.as_strategy(mode) for mode in modes]
    if len(names) == 1:
        generated += [st.sampled_from(real).flatmap(
            lambda value, mode=mode: operation.as_strategy(mode, path_parameters={names[0]: value})) for mode in modes]
    return st.one_of(generated)


@pytest.mark.timeout(900)  # the first operation of a worker also builds the test database
@pytest.mark.parametrize("label", _operations())
def test_api_answers_without_server_errors_and_as_documented(label, api_schema, owned, alice):
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is generated but not served at /api/schema/"
    headers = {"Authorization": f"Token {token_create(user=alice, name='fuzz', expires_in_days=1)[1]}"}

    @given(case=_cases(operation, owned))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
