"""Quotas on expensive work (issue 9, finding 4): per-role defaults from a migration, a user's own
limit beating their roles', enforced by the create services so the API (400), the dashboard
(which posts to the API and shows its message) and the commands (one line, non-zero exit) all
refuse the same way, naming the limit, its value and where it comes from."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from apps.accounts import quotas, services
from apps.accounts.models import Quota, QuotaKey
from apps.audit.models import AuditEvent
from apps.backtests import services as backtests
from apps.backtests.models import BacktestRun
from apps.marketdata import services as md
from apps.marketdata.models import DownloadJob, Exchange, Market
from apps.marketdata.services.downloads import EARLIEST_START_MS
from apps.training import services as training
from apps.training.models import TrainingRun
from tests.backtests.conftest import MIN, T0, market, ms_dt  # noqa: F401
from tests.conftest import make_user
from tests.training.training_fixtures import training_kwargs, training_market  # noqa: F401

Q = QuotaKey
HOUR = 60 * MIN


def own_limit(user, key, value):
    return services.quota_set(key=key, value=value, user=user, reason="test: a person's own limit")


@pytest.fixture
def ccxt_market(db):
    """A market on a ccxt exchange, stored without touching the network (a queued download job
    needs no exchange until a worker runs it)."""
    exchange, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    return Market.objects.get_or_create(exchange=exchange, symbol="BTC/USDT",
                                        defaults={"base": "BTC", "quote": "USDT"})[0]


def start_download(user, market, bars=60, start=T0):
    return md.download_start(owner=user, market=market, timeframe="1m", start_ms=start, end_ms=start + bars * MIN,
                             enqueue=False)


def start_backtest(user, market):
    return backtests.backtest_create(owner=user, market=market, timeframe="1m", strategy_key="sma_cross",
                                     start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN), enqueue=False)


# --- where a limit comes from ----------------------------------------------------------------------

def test_every_role_has_every_limit_from_the_migration(db):
    for role in ("Admin", "Operator", "Trader", "Viewer"):
        keys = set(Quota.objects.filter(role__name=role).values_list("key", flat=True))
        assert keys == set(QuotaKey.values), role
    trader = {q.key: q.value for q in Quota.objects.filter(role__name="Trader")}
    assert trader[Q.TRAINING_TRIALS] < 100_000 and trader[Q.TRAINING_WORKERS] < 64 and trader[Q.TRAINING_FOLDS] < 50
    assert trader[Q.DOWNLOAD_CANDLES] < 30_000_000


def test_a_users_own_limit_beats_the_roles_higher_or_lower(alice):
    assert quotas.limit_for(alice, Q.TRAINING_TRIALS) == quotas.Limit(Q.TRAINING_TRIALS, 2_000, "role Trader")
    own_limit(alice, Q.TRAINING_TRIALS, 50)
    assert quotas.limit_for(alice, Q.TRAINING_TRIALS) == quotas.Limit(Q.TRAINING_TRIALS, 50, "your own limit")
    own_limit(alice, Q.TRAINING_TRIALS, 9_000)  # above the role's: the override still wins
    assert quotas.limit_for(alice, Q.TRAINING_TRIALS).value == 9_000


def test_with_several_roles_the_most_generous_applies_and_with_none_there_is_no_limit(db):
    both = make_user("both", "Trader")
    both.groups.add(Group.objects.get(name="Operator"))
    assert quotas.limit_for(both, Q.TRAINING_WORKERS) == quotas.Limit(Q.TRAINING_WORKERS, 32, "role Operator")
    nobody = make_user("nobody", None)
    assert quotas.limit_for(nobody, Q.TRAINING_WORKERS).value is None


def test_setting_a_limit_needs_a_reason_and_is_audited(alice):
    with pytest.raises(ValidationError, match="Say why"):
        services.quota_set(key=Q.TRAINING_FOLDS, value=3, user=alice, reason=" ")
    trader = Group.objects.get(name="Trader")
    services.quota_set(key=Q.TRAINING_FOLDS, value=12, role=trader, reason="folds beyond 12 never helped")
    event = AuditEvent.objects.get(action="accounts.quota.set")
    assert event.changes == {"value": [20, 12]} and event.reason == "folds beyond 12 never helped"
    assert Quota.objects.get(role=trader, key=Q.TRAINING_FOLDS).value == 12


def test_removing_a_users_limit_brings_back_the_roles_and_is_audited_with_a_snapshot(alice):
    quota = own_limit(alice, Q.TRAINING_TRIALS, 50)
    services.quota_delete(quota=quota, reason="the trial budget is back to normal")
    assert quotas.limit_for(alice, Q.TRAINING_TRIALS).value == 2_000
    event = AuditEvent.objects.get(action="accounts.quota.deleted")
    assert event.metadata["snapshot"]["value"] == 50 and event.metadata["snapshot"]["holder"] == "user alice"


def test_operator_changes_a_limit_in_the_admin_with_a_reason(client, olivia, alice):
    client.force_login(olivia)
    quota = own_limit(alice, Q.TRAINING_WORKERS, 2)
    response = client.post(f"/admin/accounts/quota/{quota.pk}/change/",
                           {"value": 6, "reason": "alice runs the weekly sweep"})
    assert response.status_code == 302, response.content.decode()[:2000]
    quota.refresh_from_db()
    assert (quota.value, quota.reason) == (6, "alice runs the weekly sweep")
    event = AuditEvent.objects.filter(action="accounts.quota.set").first()
    assert event.changes == {"value": [2, 6]} and event.actor_label == "olivia"


# --- each limit, passing and failing -----------------------------------------------------------------

@pytest.mark.parametrize("key, field", [(Q.TRAINING_TRIALS, "n_trials"), (Q.TRAINING_WORKERS, "n_workers"),
                                        (Q.TRAINING_FOLDS, "folds")])
def test_training_size_limits(alice, training_market, key, field):  # noqa: F811
    value = training_kwargs(training_market)[field]
    own_limit(alice, key, value - 1)
    with pytest.raises(ValidationError) as err:
        training.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    text = err.value.message_dict[field][0]
    assert text == (f"{QuotaKey(key).label} is limited to {value - 1:,} (your own limit); "
                    f"you asked for {value:,}.")
    assert not TrainingRun.objects.exists()
    own_limit(alice, key, value)
    training.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    assert TrainingRun.objects.count() == 1


def test_training_runs_at_once(alice, training_market):  # noqa: F811
    own_limit(alice, Q.TRAINING_CONCURRENT, 1)
    first = training.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    with pytest.raises(ValidationError, match=r"Training runs queued or running at once is limited to 1 "
                                              r"\(your own limit\); you have 1 queued or running"):
        training.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    training.training_cancel(run=first, reason="make room")
    training.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    assert TrainingRun.objects.filter(state="queued").count() == 1


def test_a_training_batch_counts_every_run_it_would_queue(alice, training_market):  # noqa: F811
    own_limit(alice, Q.TRAINING_CONCURRENT, 1)
    kwargs = training_kwargs(training_market)
    series = [(kwargs.pop("market"), kwargs.pop("timeframe"))]
    kwargs.pop("strategy_key")
    with pytest.raises(ValidationError, match="you have 0 queued or running and asked for 2 more"):
        training.training_create_batch(owner=alice, strategy_keys=["sma_cross", "ema_cross"], series=series,
                                       enqueue=False, **kwargs)
    assert not TrainingRun.objects.exists()


def test_backtests_at_once(alice, market):  # noqa: F811
    own_limit(alice, Q.BACKTESTS_CONCURRENT, 2)
    first = start_backtest(alice, market)
    start_backtest(alice, market)
    with pytest.raises(ValidationError, match=r"Backtests queued or running at once is limited to 2 \(your own "
                                              r"limit\); you have 2 queued or running"):
        start_backtest(alice, market)
    backtests.backtest_execute(first.pk)  # finished work frees its place
    start_backtest(alice, market)
    assert BacktestRun.objects.count() == 3


def test_downloads_at_once_and_the_role_is_named(alice, ccxt_market):
    Quota.objects.filter(role__name="Trader", key=Q.DOWNLOADS_CONCURRENT).update(value=1)
    first = start_download(alice, ccxt_market)
    with pytest.raises(ValidationError, match=r"Downloads queued or running at once is limited to 1 \(role Trader\)"):
        start_download(alice, ccxt_market, start=T0 + HOUR)
    md.download_cancel(job=first)
    start_download(alice, ccxt_market, start=T0 + HOUR)
    assert DownloadJob.objects.filter(state="queued").count() == 1


def test_candles_per_download(alice, ccxt_market):
    own_limit(alice, Q.DOWNLOAD_CANDLES, 100)
    with pytest.raises(ValidationError) as err:
        start_download(alice, ccxt_market, bars=101)
    assert err.value.message_dict["end"] == [
        "Candles in one download is limited to 100 (your own limit); you asked for 101."]
    assert start_download(alice, ccxt_market, bars=100).total_candles == 100


def test_gap_fills_start_only_as_many_jobs_as_the_limit_leaves_room_for(alice, market, ccxt_market):  # noqa: F811
    # Three gaps in stored candles of the ccxt market, and room for two downloads.
    from tests.backtests.conftest import wave_candles
    from apps.marketdata.arrays import CandleArrays

    c = wave_candles(400)
    keep = [i for i in range(400) if i not in (100, 200, 300)]
    md.candles_ingest(market=ccxt_market, timeframe="1m", source="test", rows=CandleArrays(
        c.time[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep], c.volume[keep], timeframe="1m"))
    own_limit(alice, Q.DOWNLOADS_CONCURRENT, 2)
    jobs = md.gaps_fill(owner=alice, market=ccxt_market, timeframe="1m")
    assert len(jobs) == 2
    with pytest.raises(ValidationError, match="limited to 2"):
        md.gaps_fill(owner=alice, market=ccxt_market, timeframe="1m")


@pytest.mark.parametrize("start, end, field, text", [
    (EARLIEST_START_MS - HOUR, EARLIEST_START_MS + HOUR, "start", "before 2009-01-03T00:00:00Z, Bitcoin's first block"),
    (T0, 99_999_999_999_000, "end", "(5138-11-16T09:46:39Z) is in the future"),
])
def test_date_ranges_stay_within_what_an_exchange_can_have(alice, ccxt_market, start, end, field, text):
    with pytest.raises(ValidationError) as err:
        md.download_start(owner=alice, market=ccxt_market, timeframe="1m", start_ms=start, end_ms=end, enqueue=False)
    assert text in err.value.message_dict[field][0]
    assert not DownloadJob.objects.exists()


def test_an_end_a_day_ahead_is_refused_but_now_is_fine(alice, ccxt_market):
    from apps.marketdata.timeframes import now_ms

    own_limit(alice, Q.DOWNLOAD_CANDLES, 10_000_000)
    with pytest.raises(ValidationError, match="is in the future"):
        md.download_start(owner=alice, market=ccxt_market, timeframe="1h", start_ms=now_ms() - 48 * HOUR,
                          end_ms=now_ms() + 24 * HOUR, enqueue=False)
    job = md.download_start(owner=alice, market=ccxt_market, timeframe="1h", start_ms=now_ms() - 48 * HOUR,
                            end_ms=now_ms(), enqueue=False)
    assert 47 <= job.total_candles <= 48


# --- every door ---------------------------------------------------------------------------------------

def test_api_answers_400_naming_the_limit(api, alice, training_market):  # noqa: F811
    kwargs = training_kwargs(training_market, n_trials=3_000)
    body = {**kwargs, "market": training_market.pk, "start": kwargs["start"].isoformat(),
            "end": kwargs["end"].isoformat()}
    response = api(alice).post("/api/v1/training-runs/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "n_trials: Trials per study of a training run is limited to 2,000 (role Trader); you asked for 3,000.")


def test_command_exits_non_zero_with_one_line(alice, ccxt_market):
    own_limit(alice, Q.DOWNLOAD_CANDLES, 10)
    with pytest.raises(CommandError) as err:
        call_command("download_candles", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1m",
                     "--start", str(T0), "--end", str(T0 + 60 * MIN), "--owner", "alice", stdout=StringIO())
    assert str(err.value) == "Candles in one download is limited to 10 (your own limit); you asked for 60."


def test_a_user_sees_limits_and_usage_in_the_api_and_on_the_page(api, client, alice, market):  # noqa: F811
    own_limit(alice, Q.BACKTESTS_CONCURRENT, 3)
    start_backtest(alice, market)
    rows = {r["key"]: r for r in api(alice).get("/api/v1/me/quotas/").json()}
    assert rows["backtests_concurrent"] == {"key": "backtests_concurrent", "label": "Backtests queued or running at "
                                            "once", "value": 3, "source": "your own limit", "used": 1,
                                            "concurrent": True}
    assert rows["training_trials"]["value"] == 2_000 and rows["training_trials"]["source"] == "role Trader"
    assert rows["training_trials"]["used"] is None
    client.force_login(alice)
    page = client.get("/account/preferences/").content.decode()
    assert "Your limits" in page and "Trials per study of a training run" in page and "2,000" in page
    assert json.dumps(rows["backtests_concurrent"]["source"]).strip('"') in page
