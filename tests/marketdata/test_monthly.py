"""Monthly candles ("1M") end to end: months are 28 to 31 days, so nothing may step by a fixed
length. Downloaded from the exchange (ccxt against the local simulator), stored with their
coverage, backtested and cut into walk-forward windows on the calendar."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from apps.backtests import services as backtests
from apps.marketdata import services, storage
from apps.marketdata.arrays import CandleArrays
from apps.marketdata.models import DataQualityIssue
from apps.marketdata.selectors import candles_as_arrays, coverage_for_market
from apps.marketdata.serializers import coverage_data
from quant.engine import EngineConfig, run as engine_run
from quant.metrics import compute_all
from quant.optimisation.objective import Evaluator
from quant.optimisation.walkforward import folds, holdout_split
from quant.strategies import Bars, get_strategy
from quant.timeframes import aligned, bar_opens
from tradepulse.core.jobs import JobState

from .conftest import run_download, sim_rows, stored_rows


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def day(ms_: int) -> str:
    return datetime.fromtimestamp(ms_ / 1000, tz=UTC).strftime("%Y-%m-%d")


def monthly(n: int, start: str = "2010-01-01", seed: int = 4) -> CandleArrays:
    """n consecutive month candles from `start` (a seeded random walk built for the test)."""
    rng = np.random.default_rng(seed)
    time = bar_opens(ms(start), ms("2100-01-01"), "1M")[:n]
    close = 100 * np.exp(np.cumsum(rng.normal(0.01, 0.08, n)))
    opens = np.r_[100.0, close[:-1]]
    return CandleArrays(time, opens, np.maximum(opens, close) * 1.03, np.minimum(opens, close) * 0.97, close,
                        rng.uniform(1e3, 2e3, n), timeframe="1M")


def test_monthly_candles_download_on_the_calendar_and_resume_with_nothing_twice(alice, btc, sim):
    job = run_download(alice, btc, ms("2017-01-01"), ms("2023-11-01"), timeframe="1M")
    assert job.state == JobState.SUCCEEDED, job.error
    # BTC/USDT lists on 2017-08-17: the first whole month opens 2017-09-01; the last closed month is
    # October 2023 (the simulator's clock is 2023-11-14).
    assert job.total_candles == 82 and job.progress == 100.0  # Jan 2017 … Oct 2023, month by month
    rows = stored_rows(btc, "1M")
    assert rows == sim_rows(sim, "BTC/USDT", "1M", ms("2017-01-01"), ms("2023-11-01"))
    assert len(rows) == 74 and day(rows[0][0]) == "2017-09-01" and day(rows[-1][0]) == "2023-10-01"
    times = np.array([r[0] for r in rows])
    assert aligned(times, "1M").all() and {day(t)[8:] for t in times} == {"01"}
    assert set(np.diff(times) // 86_400_000) == {28, 29, 30, 31}  # no fixed step anywhere
    coverage = coverage_for_market(btc, "1M")
    assert coverage.ranges == [(ms("2017-09-01"), ms("2023-11-01"))] and coverage.candles == 74
    assert storage.coverage_from_candles(btc.pk, "1M") == coverage.ranges  # the table agrees with the candles
    gap = DataQualityIssue.objects.get(market=btc, timeframe="1M", kind="gap")
    assert gap.exchange_has_no_data and "8 bars missing from 2017-01-01" in gap.detail  # Jan-Aug 2017
    sim.clear_requests()
    again = run_download(alice, btc, ms("2017-01-01"), ms("2023-11-01"), timeframe="1M")
    assert again.message == "Already stored: nothing to download" and sim.requests_to("klines") == []


def test_month_coverage_counts_calendar_months_and_names_a_missing_month(file_market):
    candles = monthly(36, "2020-01-01")
    keep = np.r_[0:13, 14:36]  # February 2021 missing
    services.candles_ingest(market=file_market, timeframe="1M", source="test", rows=CandleArrays(
        *(getattr(candles, f)[keep] for f in ("time", "open", "high", "low", "close", "volume")), timeframe="1M"))
    coverage = coverage_for_market(file_market, "1M")
    assert coverage.ranges == [(ms("2020-01-01"), ms("2021-02-01")), (ms("2021-03-01"), ms("2023-01-01"))]
    assert coverage.candles == 35 and [(g.start_ms, g.end_ms, g.candles) for g in coverage.gaps] == [
        (ms("2021-02-01"), ms("2021-03-01"), 1)]
    data = coverage_data(coverage, file_market)
    assert [r["candles"] for r in data["ranges"]] == [13, 22] and data["gaps"][0]["candles"] == 1
    assert storage.coverage_from_candles(file_market.pk, "1M") == coverage.ranges
    # a month bar must open at 00:00 UTC on the 1st: anything else is refused and named
    bad = monthly(1, "2023-01-01")
    result = services.candles_ingest(market=file_market, timeframe="1M", source="test", rows=CandleArrays(
        bad.time + 86_400_000, bad.open, bad.high, bad.low, bad.close, bad.volume, timeframe="1M"))
    assert result.stored == 0 and result.findings[0].kind == "misaligned"
    assert result.findings[0].end_ms == ms("2023-02-01")  # the finding covers up to that bar's close


def test_a_backtest_on_monthly_candles_steps_month_by_month(alice, file_market, django_capture_on_commit_callbacks):
    candles = monthly(120)
    services.candles_ingest(market=file_market, timeframe="1M", source="test", rows=candles)
    params = {"fast": 2, "slow": 6}
    with django_capture_on_commit_callbacks(execute=True):
        run = backtests.backtest_create(owner=alice, market=file_market, timeframe="1M", strategy_key="sma_cross",
                                        parameters=params, start=datetime(2012, 1, 1, tzinfo=UTC),
                                        end=datetime(2020, 1, 1, tzinfo=UTC), fee=0.001)
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED, run.error
    assert run.candle_count == 96 and (run.warmup_bars, run.warmup_missing) == (7, 0)  # warm-up from 2011
    time, equity = run.equity_curve.unpack()
    assert day(time[0]) == "2012-01-01" and day(time[-1]) == "2019-12-01" and aligned(time, "1M").all()
    # the same as the engine on those bars, annualised with 12 bars a year, no duration in ms
    everything = Bars(candles.time, candles.open, candles.high, candles.low, candles.close, candles.volume, "1M")
    signals = get_strategy("sma_cross").signals(everything, params)
    first = int(np.searchsorted(everything.time, ms("2012-01-01")))
    last = int(np.searchsorted(everything.time, ms("2020-01-01")))
    sliced = everything[first:last]
    cut = get_strategy("sma_cross").signals(everything[:last], params)
    expected = engine_run(sliced, type(signals)(cut.entries_long[first:], cut.exits_long[first:]),
                          EngineConfig(fee=0.001))
    metrics = compute_all(expected)
    assert run.metrics["trade_count"] == len(expected.trades) > 3
    assert run.metrics["sharpe"] == pytest.approx(metrics["sharpe"], rel=1e-12)
    assert run.metrics["max_drawdown_duration_ms"] is None and run.metrics["max_drawdown_duration_bars"] >= 0
    # the command gives the same and prints the range on the month grid
    out = StringIO()
    call_command("backtest", "--strategy", "sma_cross", "--params", json.dumps(params), "--exchange", "test-files",
                 "--symbol", "SYN/USD", "--timeframe", "1M", "--start", "2012-01-01", "--end", "2020-01-01",
                 "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["candles"] == 96 and data["end"] == "2020-01-01T00:00:00Z"
    assert data["metrics"]["sharpe"] == run.metrics["sharpe"]


def test_walk_forward_windows_of_monthly_bars_start_and_end_on_month_opens():
    c = monthly(240)
    bars = Bars(c.time, c.open, c.high, c.low, c.close, c.volume, "1M")
    optimise, holdout = holdout_split(bars, 0.2, warmup_bars=13)
    assert (optimise.n_bars, holdout.n_bars) == (192, 48) and day(holdout.start_ms) == "2026-01-01"
    assert day(holdout.end_ms) == "2030-01-01"  # the close of December 2029: a month, not 30 days, later
    windows = folds(bars[:optimise.end], k=3, warmup_bars=13)
    evaluator = Evaluator(bars, "sma_cross", EngineConfig(fee=0.0))
    for fold in windows:
        for window in (fold.in_sample, fold.out_of_sample):
            assert day(window.start_ms)[8:] == "01" and day(window.end_ms)[8:] == "01"
            assert window.end_ms == int(bars.time[window.end]) if window.end < len(bars) else True
            metrics = evaluator.metrics({"fast": 3, "slow": 12}, window)
            assert metrics["max_drawdown_duration_ms"] is None  # months have no fixed length
    assert windows[-1].out_of_sample.end == optimise.end


def test_monthly_candles_through_the_api(api, alice, file_market):
    services.candles_ingest(market=file_market, timeframe="1M", source="test", rows=monthly(24, "2021-01-01"))
    body = api(alice).get(f"/api/v1/candles/?market={file_market.pk}&timeframe=1M&start=2021-06-01").json()
    assert body["timeframe"] == "1M" and body["count"] == 19
    assert [day(t) for t in body["time"][:3]] == ["2021-06-01", "2021-07-01", "2021-08-01"]
    assert body["time"] == candles_as_arrays(file_market, "1M", start_ms=ms("2021-06-01")).time.tolist()
