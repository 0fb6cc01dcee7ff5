"""Typed evidence on configs: written when a config is made from a backtest or a training
candidate, queryable by source, and shown in the API, the admin and on the strategies page."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.backtests import services as backtests
from apps.marketdata.selectors import candles_as_arrays
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.models import ConfigEvidence, EvidenceSource, Source, StrategyConfig
from apps.strategies.selectors import latest_evidence
from apps.training import services as training
from quant.strategies import Bars
from quant.strategies.provenance import bars_fingerprint, code_version
from tests.backtests.conftest import MIN, T0, ms_dt
from tests.training.training_fixtures import (_optuna_connections_closed, training_kwargs,  # noqa: F401
                                              training_market)


def finished_backtest(owner, market, capture, **settings):
    with capture(execute=True):
        run = backtests.backtest_create(owner=owner, market=market, timeframe="1m", strategy_key="sma_cross",
                                        parameters={"fast": 10, "slow": 30}, start=ms_dt(T0),
                                        end=ms_dt(T0 + 1000 * MIN), **settings)
    run.refresh_from_db()
    return run


def test_config_from_a_backtest_carries_the_run_as_evidence(api, alice, market, django_capture_on_commit_callbacks):
    run = finished_backtest(alice, market, django_capture_on_commit_callbacks, stop_loss=0.02, fee=0.002)
    config = backtests.backtest_save_as_config(run=run, owner=alice)
    row = latest_evidence(config, EvidenceSource.BACKTEST)
    assert row is not None and latest_evidence(config, EvidenceSource.HOLDOUT) is None
    assert (row.period_start, row.period_end) == (run.start, run.end)
    assert row.fingerprint == run.fingerprint and row.code_version == run.code_version == code_version("sma_cross")
    assert row.trades == run.metrics["trade_count"] > 0
    assert (row.sharpe, row.max_drawdown, row.total_return) == (run.metrics["sharpe"], run.metrics["max_drawdown"],
                                                                run.metrics["total_return"])
    assert row.oos_sharpe is None and row.dsr is None and row.pbo is None  # not measured: empty, never 0
    assert row.run == run

    body = api(alice).get(f"/api/v1/strategy-configs/{config.pk}/").json()
    [evidence] = body["evidence"]
    assert evidence["source"] == "backtest" and evidence["trades"] == run.metrics["trade_count"]
    assert evidence["sharpe"] == run.metrics["sharpe"] and evidence["fingerprint"] == run.fingerprint
    assert evidence["run"] == {"type": "backtests.backtestrun", "id": run.pk, "url": f"/backtests/{run.pk}/"}
    listed = api(alice).get("/api/v1/strategy-configs/").json()["results"]
    assert listed[0]["evidence"][0]["id"] == evidence["id"]


def test_config_list_reads_evidence_in_a_fixed_number_of_queries(api, alice, market,
                                                                  django_capture_on_commit_callbacks,
                                                                  django_assert_max_num_queries):
    run = finished_backtest(alice, market, django_capture_on_commit_callbacks)
    for _ in range(15):
        backtests.backtest_save_as_config(run=run, owner=alice)
    client = api(alice)
    with django_assert_max_num_queries(12):
        results = client.get("/api/v1/strategy-configs/?page_size=50").json()["results"]
    assert len(results) == 15 and all(len(c["evidence"]) == 1 for c in results)


def test_admin_shows_evidence_inline_with_a_link_to_the_run(client, admin_user, alice, market,
                                                           django_capture_on_commit_callbacks):
    run = finished_backtest(alice, market, django_capture_on_commit_callbacks)
    config = backtests.backtest_save_as_config(run=run, owner=alice)
    client.force_login(admin_user)
    page = client.get(f"/admin/strategies/strategyconfig/{config.pk}/change/").content.decode()
    assert "Execution settings" in page and f'href="/backtests/{run.pk}/"' in page
    assert f"backtestrun {run.pk}" in page and run.fingerprint[:12] in page


def _fingerprint(market, start: datetime, end: datetime) -> str:
    a = candles_as_arrays(market, "1m", start_ms=int(start.timestamp() * 1000), end_ms=int(end.timestamp() * 1000))
    return bars_fingerprint(Bars(a.time, a.open, a.high, a.low, a.close, a.volume, "1m"))


def test_training_configs_carry_settings_and_out_of_sample_and_holdout_evidence(
        api, alice, training_market, django_capture_on_commit_callbacks):
    settings = dict(fee=0.0005, slippage=0.0002, stop_loss=0.03, take_profit=0.06, allow_short=True)
    with django_capture_on_commit_callbacks(execute=True):
        run = training.training_create(owner=alice, **training_kwargs(training_market, n_workers=1, **settings))
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert run.code_version == code_version("sma_cross")
    configs = list(StrategyConfig.objects.filter(source=Source.TRAINING).order_by("pk"))
    assert configs and [c.pk for c in configs] == run.result["configs_created"]
    for config, cand in zip(configs, run.result["candidates"]):
        assert config.execution_settings() == run.execution_settings()
        assert {f: getattr(config, f) for f in settings} == settings
        assert config.code_version == run.code_version
        oos = latest_evidence(config, EvidenceSource.TRAINING_OOS)
        holdout = latest_evidence(config, EvidenceSource.HOLDOUT)
        # Walk-forward out of sample is the run's (each fold tested the parameters its own study chose).
        combined, held = run.result["out_of_sample"]["metrics"], cand["holdout"]["metrics"]
        assert oos.sharpe == oos.oos_sharpe == combined["sharpe"] and oos.trades == combined["trade_count"]
        assert oos.max_drawdown == combined["max_drawdown"]
        first = min(f["out_of_sample"]["start"] for f in run.result["folds"])
        last = max(f["out_of_sample"]["end"] for f in run.result["folds"])
        assert oos.period_start == datetime.fromtimestamp(first / 1000, tz=UTC)
        assert oos.period_end == datetime.fromtimestamp(last / 1000, tz=UTC)
        assert oos.fingerprint == _fingerprint(training_market, oos.period_start, oos.period_end)
        assert holdout.sharpe == held["sharpe"] and holdout.trades == held["trade_count"]
        assert holdout.period_start == run.holdout_start == datetime.fromtimestamp(cand["holdout"]["start"] / 1000,
                                                                                   tz=UTC)
        assert holdout.fingerprint == _fingerprint(training_market, holdout.period_start, holdout.period_end)
        assert holdout.fingerprint != oos.fingerprint
        for row in (oos, holdout):
            assert row.dsr == cand["dsr"]["value"] and row.pbo == run.result["pbo"]
            assert row.run == run and row.trial == cand["number"] and row.code_version == run.code_version

    # Asking for a candidate's config by hand returns the one already saved, with its evidence.
    cand = run.result["candidates"][0]
    body = api(alice).post(f"/api/v1/training-runs/{run.pk}/create-config/", {"trial": cand["number"]},
                           format="json").json()
    assert {f: body[f] for f in EXECUTION_FIELDS} == run.execution_settings()
    assert sorted(e["source"] for e in body["evidence"]) == ["holdout", "training_oos"]
    assert {e["run"]["url"] for e in body["evidence"]} == {f"/training/{run.pk}/"}
    assert ConfigEvidence.objects.filter(config_id=body["id"]).count() == 2


@pytest.mark.parametrize("source", ["paper", "live"])
def test_evidence_of_a_later_stage_is_the_latest_of_its_source(alice, market, source):
    from apps.strategies import services

    config = services.config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1m")
    for day, sharpe in ((1, 0.5), (3, 1.5), (2, 0.9)):
        services.config_evidence_record(config=config, source=source, period_start=ms_dt(T0),
                                        period_end=ms_dt(T0 + day * 86_400_000), trades=4, sharpe=sharpe)
    assert latest_evidence(config, source).sharpe == 1.5
    assert latest_evidence(config, "backtest") is None
