"""API: download jobs (visibility, create, cancel, retry, fill gaps), exchanges, markets,
candles with a row cap, coverage, quality issues."""
from __future__ import annotations

import numpy as np
import pytest
from guardian.shortcuts import assign_perm

from apps.accounts.services import quota_set
from apps.marketdata import services
from apps.marketdata import api as md_api
from apps.marketdata.models import DataQualityIssue, DownloadJob
from apps.marketdata.services import downloads

from tests.permission_suite import check_private_to_owner

from .conftest import MIN, T0, make_candles, run_download

ISO_T0 = "2023-11-12T22:00:00Z"


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(downloads, "PAGE_LIMIT", 100)


@pytest.fixture
def alices_job(alice, btc):
    return services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + 10 * MIN,
                                   enqueue=False)


# --- visibility: written once, applied to every job endpoint ---------------------------------------

PEOPLE = {
    "owner": ("alice", 200),
    "colleague": ("bob", 404),
    "colleague with a share": ("bob", 200),
    "outsider": ("charlie", 404),
    "operator": ("olivia", 200),
    "viewer": ("victor", 404),
}


@pytest.mark.parametrize("who", list(PEOPLE))
def test_job_visibility(who, request, api, alices_job):
    username, expected = PEOPLE[who]
    user = request.getfixturevalue(username)
    if who == "colleague with a share":
        assign_perm("marketdata.view_downloadjob", user, alices_job)
    client = api(user)
    detail = client.get(f"/api/v1/download-jobs/{alices_job.pk}/")
    assert detail.status_code == expected
    listed = [j["id"] for j in client.get("/api/v1/download-jobs/").json()["results"]]
    assert (alices_job.pk in listed) == (expected == 200)
    if expected == 404:
        for verb in ("cancel", "retry"):
            response = client.post(f"/api/v1/download-jobs/{alices_job.pk}/{verb}/")
            assert response.status_code in (403, 404)  # never a hint that the job exists
            assert response.status_code == 404 or username == "victor"
        assert DownloadJob.objects.get(pk=alices_job.pk).state == "queued"


def test_jobs_pass_the_platform_permission_suite(api, alices_job, alice, bob, charlie, olivia):
    check_private_to_owner(api, list_url="/api/v1/download-jobs/", obj=alices_job, owner=alice, colleague=bob,
                           outsider=charlie, operator=olivia)


def test_a_shared_viewer_may_not_cancel(api, bob, alices_job):
    assign_perm("marketdata.view_downloadjob", bob, alices_job)
    response = api(bob).post(f"/api/v1/download-jobs/{alices_job.pk}/cancel/")
    assert response.status_code == 403
    assert DownloadJob.objects.get(pk=alices_job.pk).state == "queued"


def test_anonymous_gets_401(api, db):
    assert api().get("/api/v1/download-jobs/").status_code == 401


# --- create, cancel, retry -------------------------------------------------------------------------

def test_create_runs_the_download_and_reports_progress(api, alice, btc, sim, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice).post("/api/v1/download-jobs/", {"market": btc.pk, "timeframe": "1m", "start": ISO_T0,
                                                              "end": T0 + 250 * MIN}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["symbol"] == "BTC/USDT" and body["start"] == ISO_T0 and body["total_candles"] == 250
    job = api(alice).get(f"/api/v1/download-jobs/{body['id']}/").json()
    assert (job["state"], job["progress"], job["rows_stored"]) == ("succeeded", 100.0, 250)
    assert job["candles_per_second"] > 0 and job["owner"] == "alice"


def test_create_by_exchange_and_symbol_loads_markets_when_needed(api, alice, binance, sim):
    response = api(alice).post("/api/v1/download-jobs/", {"exchange": binance.pk, "symbol": "eth/usdt",
                                                          "timeframe": "1h", "start": ISO_T0, "end": T0 + 60 * MIN},
                               format="json")
    assert response.status_code == 201 and response.json()["symbol"] == "ETH/USDT"


@pytest.mark.parametrize("payload, status, message", [
    ({"symbol": "XYZ/USDT"}, 400, "Unknown symbol 'XYZ/USDT' on binance."),
    ({"start": "2023-11-13T00:00:00", "end": "2023-11-12T00:00:00"}, 400,
     "end: The end (2023-11-12T00:00:00Z) must be after the start (2023-11-13T00:00:00Z)."),
    ({"timeframe": "7m"}, 400, 'timeframe: "7m" is not a valid choice.'),
    ({"start": "yesterday"}, 400, "start: 'yesterday' is neither epoch milliseconds nor an ISO-8601 time"),
    ({"symbol": ""}, 400, "symbol: This field may not be blank."),
])
def test_bad_input_is_a_400_that_names_the_problem(api, alice, binance, sim, payload, status, message):
    body = {"exchange": binance.pk, "symbol": "BTC/USDT", "timeframe": "1m", "start": ISO_T0, "end": T0 + MIN, **payload}
    response = api(alice).post("/api/v1/download-jobs/", body, format="json")
    assert response.status_code == status
    assert response.json()["error"]["message"] == message


def test_an_unreachable_exchange_is_a_502_with_the_reason(api, alice, binance, sim):
    sim.set_faults(server_error_next=100, endpoints=("*",))
    response = api(alice).post("/api/v1/download-jobs/", {"exchange": binance.pk, "symbol": "BTC/USDT",
                                                          "timeframe": "1m", "start": ISO_T0, "end": T0 + MIN},
                               format="json")
    assert response.status_code == 502
    assert response.json()["error"]["message"].startswith("binance is not available after 6 attempts")


def test_a_viewer_cannot_start_downloads(api, victor, btc):
    response = api(victor).post("/api/v1/download-jobs/", {"market": btc.pk, "timeframe": "1m", "start": ISO_T0,
                                                           "end": T0 + MIN}, format="json")
    assert response.status_code == 403


def test_cancel_and_retry(api, alice, alices_job, sim, django_capture_on_commit_callbacks):
    client = api(alice)
    cancelled = client.post(f"/api/v1/download-jobs/{alices_job.pk}/cancel/").json()
    assert cancelled["state"] == "cancelled"
    again = client.post(f"/api/v1/download-jobs/{alices_job.pk}/cancel/")
    assert again.status_code == 400 and "already cancelled" in again.json()["error"]["message"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/download-jobs/{alices_job.pk}/retry/").json()["state"] == "queued"
    assert client.get(f"/api/v1/download-jobs/{alices_job.pk}/").json()["state"] == "succeeded"


def test_fill_gaps_endpoint(api, alice, btc, sim):
    run_download(alice, btc, T0, T0 + 10 * MIN)
    run_download(alice, btc, T0 + 20 * MIN, T0 + 30 * MIN)
    response = api(alice).post("/api/v1/download-jobs/fill-gaps/", {"market": btc.pk, "timeframe": "1m"}, format="json")
    assert response.status_code == 201
    assert [(j["start_ms"], j["end_ms"], j["kind"]) for j in response.json()] == [(T0 + 10 * MIN, T0 + 20 * MIN, "fill")]


def test_job_list_has_a_query_budget(api, alice, btc, django_assert_max_num_queries):
    quota_set(key="downloads_concurrent", value=25, user=alice, reason="the test queues 25 downloads")
    for i in range(25):  # enough rows that one query per row would blow the budget
        services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0 + i * MIN,
                                end_ms=T0 + (i + 1) * MIN, enqueue=False)
    client = api(alice)
    with django_assert_max_num_queries(12):
        body = client.get("/api/v1/download-jobs/").json()
    assert body["count"] == 25 and len(body["results"]) == 25


# --- exchanges and markets ------------------------------------------------------------------------

def test_exchanges_list_and_load_markets(api, alice, victor, binance, sim):
    listed = {e["code"]: e for e in api(victor).get("/api/v1/exchanges/?is_file_source=false").json()["results"]}
    assert "binance" in listed and "1m" in listed["binance"]["timeframes"]
    assert api(victor).post(f"/api/v1/exchanges/{binance.pk}/load-markets/").status_code == 403
    response = api(alice).post(f"/api/v1/exchanges/{binance.pk}/load-markets/")
    assert response.status_code == 200
    assert response.json()["created"] == 3 and response.json()["exchange"]["market_count"] == 3


def test_market_list_query_budget(api, victor, file_market, django_assert_max_num_queries):
    for i in range(25):  # enough rows that one query per row would blow the budget
        services.market_get_or_create_for_import(exchange=file_market.exchange, symbol=f"C{i}/USD")
    client = api(victor)
    with django_assert_max_num_queries(10):
        body = client.get(f"/api/v1/markets/?exchange={file_market.exchange_id}").json()
    assert body["count"] == 26 and len(body["results"]) == 26


def test_markets_search_and_filters(api, victor, btc):
    client = api(victor)
    found = client.get("/api/v1/markets/?search=eth").json()["results"]
    assert [m["symbol"] for m in found] == ["ETH/USDT"]
    usdt = client.get(f"/api/v1/markets/?exchange={btc.exchange_id}&quote=USDT&active=true").json()
    assert usdt["count"] == 3
    btc_row = client.get(f"/api/v1/markets/{btc.pk}/").json()
    assert btc_row["price_step"] == "0.01000000000000000000" and btc_row["amount_precision"] == 5
    assert btc_row["limits"]["cost"]["min"] == "5"


# --- candles -------------------------------------------------------------------------------------

def test_candles_by_range_and_latest(api, victor, file_market):
    services.candles_ingest(market=file_market, timeframe="1m", rows=make_candles(50))
    client = api(victor)
    body = client.get(f"/api/v1/candles/?market={file_market.pk}&timeframe=1m&start={T0 + 10 * MIN}"
                      f"&end=2023-11-12T22:20:00Z").json()
    assert body["count"] == 10 and body["time"][0] == T0 + 10 * MIN and body["time"][-1] == T0 + 19 * MIN
    assert len(body["close"]) == 10 and body["symbol"] == "SYN/USD"
    latest = client.get(f"/api/v1/candles/?market={file_market.pk}&timeframe=1m&limit=5").json()
    assert latest["time"] == [T0 + i * MIN for i in range(45, 50)]


def test_candles_beyond_the_cap_are_a_clear_400(api, alice, file_market, monkeypatch):
    monkeypatch.setattr(md_api, "MAX_CANDLES_PER_REQUEST", 20)
    services.candles_ingest(market=file_market, timeframe="1m", rows=make_candles(50))
    response = api(alice).get(f"/api/v1/candles/?market={file_market.pk}&timeframe=1m&start={T0}")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == ("The range holds 50 candles; one request returns at most 20. "
                                                   "Narrow the range or pick a longer timeframe.")
    bad = api(alice).get(f"/api/v1/candles/?market={file_market.pk}&timeframe=1m&start={T0 + MIN}&end={T0}")
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("end: The end")


# --- coverage and quality ----------------------------------------------------------------------------

def test_coverage_lists_ranges_and_gaps_per_series(api, victor, file_market):
    rows = make_candles(100)
    keep = np.ones(100, bool)
    keep[40:45] = False
    services.candles_ingest(market=file_market, timeframe="1m", rows=rows.take(keep))
    body = api(victor).get(f"/api/v1/coverage/?market={file_market.pk}").json()
    assert len(body) == 1
    series = body[0]
    assert (series["symbol"], series["timeframe"], series["candles"], series["missing_candles"]) == ("SYN/USD", "1m", 95, 5)
    assert [(r["start_ms"], r["end_ms"]) for r in series["ranges"]] == [(T0, T0 + 40 * MIN), (T0 + 45 * MIN, T0 + 100 * MIN)]
    assert series["gaps"] == [{"start_ms": T0 + 40 * MIN, "end_ms": T0 + 45 * MIN, "start": "2023-11-12T22:40:00Z",
                               "end": "2023-11-12T22:45:00Z", "candles": 5, "exchange_has_no_data": False,
                               "before_retention": False, "fillable": True}]


def test_quality_issues_list_filter_and_resolve(api, alice, victor, olivia, file_market):
    bad = np.array([[T0, 100, 99, 98, 100.5, 1], [T0 + MIN, 100, 101, 99, 100, -1]], dtype=float)
    services.candles_ingest(market=file_market, timeframe="1m", rows=bad)
    rows = api(victor).get("/api/v1/quality-issues/?resolved=false&kind=bad_ohlc").json()["results"]
    assert sorted(r["detail"].split(" at ")[0] for r in rows) == ["high 99.0 is below max(open, close) 100.5",
                                                                  "negative volume -1.0"]
    issue = DataQualityIssue.objects.filter(market=file_market).first()
    assert api(victor).post(f"/api/v1/quality-issues/{issue.pk}/resolve/").status_code == 403
    # an issue found outside any user's download (an import, a check) is resolved by operators
    assert api(alice).post(f"/api/v1/quality-issues/{issue.pk}/resolve/").status_code == 403
    assert api(olivia).post(f"/api/v1/quality-issues/{issue.pk}/resolve/").json()["resolved_at"] is not None
    assert api(victor).get("/api/v1/quality-issues/?resolved=false").json()["count"] == 1
