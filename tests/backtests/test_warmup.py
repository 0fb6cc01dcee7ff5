"""The one warm-up rule in backtests: a run reads `warmup_bars` stored candles before its start, so
its first bar already has converged indicators and its trades do not depend on where the stored
data begins; without that history it says so and does not trade on unconverged values."""
from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from apps.backtests import services
from apps.backtests.selectors import run_warnings
from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from quant.engine import EngineConfig, run as engine_run, trades_as_records
from quant.strategies import Bars, get_strategy
from quant.strategies.warmup import drop_warmup, mask_warmup, warmup_bars
from tradepulse.core.jobs import JobState

from .conftest import MIN, T0, ms_dt

N = 3000
PARAMS = {"fast": 5, "slow": 40}  # ema_cross: a 40-span EMA needs 39 + 277 bars, +1 for the cross
SETTINGS = dict(fee=0.001, slippage=0.0, allow_short=True)


def walk(n: int = N, seed: int = 3) -> CandleArrays:
    """A seeded random walk (built for the test, not market data) whose EMA crosses are frequent."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    opens = np.r_[close[0], close[:-1]]
    return CandleArrays(T0 + np.arange(n, dtype=np.int64) * MIN, opens, np.maximum(opens, close) * 1.001,
                        np.minimum(opens, close) * 0.999, close, np.full(n, 10.0), timeframe="1m")


@pytest.fixture
def walk_market(db):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="EMA/USD", amount_step="0.001")
    md.candles_ingest(market=market, timeframe="1m", rows=walk(), source="test")
    return market


def bars_of(c: CandleArrays) -> Bars:
    return Bars(c.time, c.open, c.high, c.low, c.close, c.volume, "1m")


def run_backtest(owner, market, capture, start_bar: int, end_bar: int = N):
    with capture(execute=True):
        run = services.backtest_create(owner=owner, market=market, timeframe="1m", strategy_key="ema_cross",
                                       parameters=PARAMS, start=ms_dt(T0 + start_bar * MIN),
                                       end=ms_dt(T0 + end_bar * MIN), **SETTINGS)
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED, run.error
    return run


def stored_trades(run) -> list[tuple]:
    return [(int(t.entry_time.timestamp() * 1000), int(t.exit_time.timestamp() * 1000), t.side, round(t.pnl, 9))
            for t in run.trades.order_by("number")]


def test_a_run_reads_its_warmup_before_the_start_and_trades_as_on_the_whole_history(
        alice, walk_market, django_capture_on_commit_callbacks):
    warmup = warmup_bars("ema_cross", PARAMS, "1m")
    assert warmup == 317
    start = 1000
    run = run_backtest(alice, walk_market, django_capture_on_commit_callbacks, start)
    assert (run.warmup_bars, run.warmup_missing, run.candle_count) == (warmup, 0, N - start)
    assert "short_warmup" not in [w["code"] for w in run_warnings(run)]
    # The reference: signals on EVERY stored bar (the most history there is), traded from the start.
    everything = bars_of(walk())
    signals = get_strategy("ema_cross").signals(everything, PARAMS)
    expected = engine_run(everything[start:], drop_warmup(signals, start),
                          EngineConfig(**SETTINGS, amount_step=0.001))
    records = trades_as_records(expected)
    assert len(records) > 20
    assert stored_trades(run) == [(r["entry_time"], r["exit_time"], r["side"], round(r["pnl"], 9)) for r in records]
    time, equity = run.equity_curve.unpack()
    assert time[0] == T0 + start * MIN and len(equity) == N - start  # the warm-up is read, never traded
    # What the warm-up prevents: the same range with indicators seeded at the start trades otherwise.
    cold = get_strategy("ema_cross").signals(everything[start:], PARAMS)
    unconverged = engine_run(everything[start:], mask_warmup(cold, PARAMS["slow"] + 1),
                             EngineConfig(**SETTINGS, amount_step=0.001))
    assert [(t["entry_time"], t["side"]) for t in trades_as_records(unconverged)] != \
           [(r["entry_time"], r["side"]) for r in records]


def test_two_runs_that_start_at_different_bars_agree_once_both_are_trading(
        alice, walk_market, django_capture_on_commit_callbacks):
    early = run_backtest(alice, walk_market, django_capture_on_commit_callbacks, 600)
    late = run_backtest(alice, walk_market, django_capture_on_commit_callbacks, 1400)
    cut = T0 + 1400 * MIN
    late_trades = stored_trades(late)
    # The early run's trades that open after the late run's first entry are the late run's (times,
    # sides and prices; sizes and PnL differ as the two accounts hold different equity by then).
    first_entry = late_trades[0][0]
    assert first_entry >= cut and len(late_trades) > 10
    assert [t[:3] for t in stored_trades(early) if t[0] >= first_entry] == [t[:3] for t in late_trades]


def test_without_stored_history_the_first_bars_only_warm_up_and_the_run_says_so(
        alice, walk_market, api, django_capture_on_commit_callbacks):
    run = run_backtest(alice, walk_market, django_capture_on_commit_callbacks, 0)
    warmup = warmup_bars("ema_cross", PARAMS, "1m")
    assert (run.warmup_bars, run.warmup_missing, run.candle_count) == (warmup, warmup, N)
    entries = [t.entry_time for t in run.trades.all()]
    assert entries and min(entries) > ms_dt(T0 + warmup * MIN)  # fills at the open after a signal bar >= warmup
    detail = api(alice).get(f"/api/v1/backtests/{run.pk}/").json()
    assert detail["warmup_bars"] == warmup and detail["warmup_missing"] == warmup
    warning = next(w for w in detail["warnings"] if w["code"] == "short_warmup")
    assert warning["message"].startswith(f"Warm-up incomplete: the strategy needs {warmup} bars of history before "
                                         f"its first trade, but only 0 are stored before the start, so the first "
                                         f"{warmup} bars of the range only warmed up")
    # Part of the warm-up stored: only the rest is taken from the range.
    partial = run_backtest(alice, walk_market, django_capture_on_commit_callbacks, 100)
    assert partial.warmup_missing == warmup - 100


def test_the_command_reports_the_warmup_it_read(walk_market):
    out = StringIO()
    call_command("backtest", "--strategy", "ema_cross", "--params", json.dumps(PARAMS), "--exchange", "test-files",
                 "--symbol", "EMA/USD", "--timeframe", "1m", "--start", str(T0 + 1000 * MIN), "--fee", "0.001",
                 "--allow-short", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["candles"] == N - 1000 and data["warmup_bars"] == 317 and data["warmup_missing"] == 0
    assert data["start"].startswith("2023-11-15T14:40")  # T0 + 1000 min: the range, not the warm-up
    assert "short_warmup" not in [w["code"] for w in data["warnings"]]
