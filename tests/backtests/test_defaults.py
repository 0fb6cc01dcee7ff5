"""One source for defaults: a request that leaves a setting out gets the same value through the
API, the command and the service, so it gives the same trades whichever door it came through."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from apps.backtests import services
from apps.backtests.models import BacktestRun

from .conftest import MIN, T0, ms_dt

START, END = T0, T0 + 1000 * MIN


def _key(entry_ms, size, pnl):
    return (entry_ms, round(size, 9), round(pnl, 6))


def test_the_same_request_gives_the_same_trades_through_api_command_and_service(
        market, alice, api, django_capture_on_commit_callbacks):
    # Command: no --size-step.
    out = StringIO()
    call_command("backtest", "--strategy", "sma_cross", "--params", '{"fast": 10, "slow": 30}', "--exchange",
                 "test-files", "--symbol", "SYN/USD", "--timeframe", "1m", "--start", str(START), "--end", str(END),
                 "--json", stdout=out)
    command = [_key(t["entry_time"], t["size"], t["pnl"]) for t in json.loads(out.getvalue())["trades"]]

    # API: no amount_step in the body.
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice).post("/api/v1/backtests/", {
            "strategy_key": "sma_cross", "parameters": {"fast": 10, "slow": 30}, "market": market.pk,
            "timeframe": "1m", "start": ms_dt(START).isoformat(), "end": ms_dt(END).isoformat()}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["amount_step"] == 0.001  # the market's step, recorded on the run
    via_api = BacktestRun.objects.get(pk=response.json()["id"])

    # Service: no amount_step either.
    run = services.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(START), end=ms_dt(END),
                                   strategy_key="sma_cross", parameters={"fast": 10, "slow": 30}, enqueue=False)
    services.backtest_execute(run.pk)

    def stored(r):
        return [_key(int(t.entry_time.timestamp() * 1000), t.size, t.pnl) for t in r.trades.all()]

    assert len(command) > 3
    assert stored(via_api) == command
    assert stored(run) == command
    # Sizes are whole multiples of the market's lot step (0.001)...
    assert all(abs(size / 0.001 - round(size / 0.001)) < 1e-6 for _, size, _ in command)


def test_an_explicit_step_is_kept_zero_included(market, alice):
    unrounded = services.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(START),
                                         end=ms_dt(END), strategy_key="sma_cross", amount_step=0, enqueue=False)
    assert unrounded.amount_step == 0
    services.backtest_execute(unrounded.pk)
    sizes = [t.size for t in unrounded.trades.all()]
    assert any(abs(s / 0.001 - round(s / 0.001)) > 1e-6 for s in sizes)  # not rounded to the market's step
    coarse = services.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(START),
                                      end=ms_dt(END), strategy_key="sma_cross", amount_step=0.5, enqueue=False)
    assert coarse.amount_step == 0.5


def test_a_market_without_a_step_rounds_nothing(db, alice):
    from apps.marketdata import services as md

    from .conftest import wave_candles

    exchange = md.exchange_get_or_create(name="Test files")
    bare = md.market_get_or_create_for_import(exchange=exchange, symbol="BARE/USD")
    md.candles_ingest(market=bare, timeframe="1m", rows=wave_candles(300), source="test")
    run = services.backtest_create(owner=alice, market=bare, timeframe="1m", start=ms_dt(START),
                                   end=ms_dt(T0 + 300 * MIN), strategy_key="sma_cross", enqueue=False)
    assert run.amount_step == pytest.approx(0.0)
