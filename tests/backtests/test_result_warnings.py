"""Results a reader could misread carry a warning: undefined figures are "n/a" (never 0), short
periods and few trades are flagged, and a run whose only position is still open says so. The
command, the API and the live payload show the same warnings."""
from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from apps.backtests import services
from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from quant.metrics import caveats

from .conftest import MIN, T0, ms_dt

N = 300


def _ingest(symbol: str, close: np.ndarray):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol=symbol, amount_step="0.001")
    opens = np.r_[close[0], close[:-1]]
    md.candles_ingest(market=market, timeframe="1m", source="test", rows=CandleArrays(
        T0 + np.arange(len(close), dtype=np.int64) * MIN, opens, np.maximum(opens, close) + 0.1,
        np.minimum(opens, close) - 0.1, close, np.full(len(close), 10.0), timeframe="1m"))
    return market


@pytest.fixture
def falling(db):
    """A steady fall: long-only sma_cross never enters."""
    return _ingest("FALL/USD", 100 - 0.1 * np.arange(N))


@pytest.fixture
def valley(db):
    """Down then up: one entry on the way up, never exited."""
    return _ingest("VAL/USD", 100 + 0.1 * np.abs(np.arange(N) - 100))


def command(symbol: str, *extra) -> str:
    out = StringIO()
    call_command("backtest", "--strategy", "sma_cross", "--params", '{"fast": 10, "slow": 30}', "--exchange",
                 "test-files", "--symbol", symbol, "--timeframe", "1m", *extra, stdout=out)
    return out.getvalue()


def test_a_run_without_trades_prints_undefined_figures_as_na(falling):
    text = command("FALL/USD")
    assert "sharpe n/a" in text and "win rate n/a" in text and "trades 0" in text
    assert "sharpe 0.000" not in text and "win rate 0.0%" not in text
    assert "warning: No trades: the strategy never entered a position in this period" in text
    assert "warning: Short period: annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar) extrapolate " \
           "0.2 days to a year" in text


def test_a_run_whose_only_position_is_open_says_so(valley):
    text = command("VAL/USD")
    assert "trades 0 (one position still open)" in text and "win rate n/a" in text
    assert "warning: No closed trade: the only position (long " in text
    data = json.loads(command("VAL/USD", "--json"))
    assert data["metrics"]["trade_count"] == 0 and data["open_position"]["side"] == "long"
    # The data start at the range's first bar: its first 31 bars (sma_cross slow 30) only warm up.
    assert [w["code"] for w in data["warnings"]] == ["short_warmup", "short_period", "open_position_only"]
    assert data["warmup_bars"] == 31 and data["warmup_missing"] == 31


def test_api_and_live_payload_carry_the_same_warnings_as_the_command(market, alice, api, published,
                                                                    django_capture_on_commit_callbacks):
    cli = json.loads(command("SYN/USD", "--json", "--start", str(T0), "--end", str(T0 + 1000 * MIN)))
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice).post("/api/v1/backtests/", {
            "strategy_key": "sma_cross", "parameters": {"fast": 10, "slow": 30}, "market": market.pk,
            "timeframe": "1m", "start": ms_dt(T0).isoformat(), "end": ms_dt(T0 + 1000 * MIN).isoformat()},
            format="json")
    run_id = response.json()["id"]
    detail = api(alice).get(f"/api/v1/backtests/{run_id}/").json()
    count = detail["metrics"]["trade_count"]
    assert 0 < count < 30
    assert [w["code"] for w in detail["warnings"]] == ["short_warmup", "short_period", "few_trades"]
    assert detail["warnings"][2]["message"].startswith(f"Only {count} closed trades: win rate, profit factor")
    assert detail["warnings"] == cli["warnings"]
    listed = api(alice).get("/api/v1/backtests/").json()["results"][0]
    assert listed["warnings"] == detail["warnings"]
    finished = [m for _, m in published if m["type"] == "backtests.run.finished"]
    assert finished[-1]["data"]["warnings"] == detail["warnings"]


def test_a_queued_run_has_no_warnings_yet(market, alice):
    run = services.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(T0),
                                   end=ms_dt(T0 + 1000 * MIN), strategy_key="sma_cross", enqueue=False)
    from apps.backtests.serializers import BacktestRunSerializer

    assert BacktestRunSerializer(run).data["warnings"] == []


def test_a_long_period_with_enough_trades_has_no_warning():
    day = 86_400_000
    assert caveats({"trade_count": 30}, span_ms=90 * day) == []
    assert [c["code"] for c in caveats({"trade_count": 29}, span_ms=89 * day)] == ["short_period", "few_trades"]
    assert caveats({"trade_count": 1}, span_ms=365 * day)[0]["message"].startswith("Only 1 closed trade:")


def test_a_saved_run_prints_the_same_warnings(valley, alice):
    text = command("VAL/USD", "--save-as", "alice")
    assert "trades 0 (one position still open)" in text and "win rate n/a" in text
    assert "warning: No closed trade: the only position (long " in text
