"""Backtests in a real browser: run from the form, watch it, read the results, compare, export."""
from __future__ import annotations

import csv

import pytest
from playwright.sync_api import expect

from apps.backtests.models import BacktestRun
from apps.marketdata import services as md
from tests.backtests.conftest import wave_candles
from tests.browser.conftest import SCREENSHOTS


@pytest.fixture
def market(live_url):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="SYN/USD", amount_step="0.001")
    md.candles_ingest(market=market, timeframe="1m", rows=wave_candles(3000), source="test")
    return market


def shot(page, name):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"backtests_{name}.png"), full_page=True)


def run_from_form(page, fast: int, slow: int):
    page.select_option("#bt-strategy", "sma_cross")
    page.fill("#param-fast", str(fast))
    page.fill("#param-slow", str(slow))
    page.fill("#bt-sl", "2")
    page.click("#bt-submit")


def test_run_watch_results_compare_and_export(login, page, live_url, alice, market, tmp_path):
    login(alice)
    page.goto(f"{live_url}/backtests/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.evaluate("() => { window.__events = []; TP.on('*', (m) => window.__events.push(m.type)); }")
    expect(page.locator("#bt-dataset")).to_contain_text("SYN/USD · 1m (3,000 candles)")
    expect(page.locator("#bt-gaps")).to_contain_text("No gaps")
    # Empty = the market's amount step, filled in by the service (one default for every door).
    expect(page.locator("#bt-step")).to_have_value("")
    expect(page.locator("#bt-step")).to_have_attribute("placeholder", "market's step: 0.001")
    shot(page, "form")

    run_from_form(page, 10, 30)
    first = page.locator("#bt-runs tbody tr").first
    expect(first.locator("[data-state]")).to_have_text("succeeded", timeout=30_000)
    events = page.evaluate("() => window.__events")
    assert "backtests.run.progress" in events and "backtests.run.finished" in events
    run_from_form(page, 5, 60)
    expect(page.locator("#bt-runs tbody tr")).to_have_count(2)
    expect(page.locator("#bt-runs tbody tr").first.locator("[data-state]")).to_have_text("succeeded", timeout=30_000)
    shot(page, "list")

    runs = list(BacktestRun.objects.order_by("pk"))
    page.click(f"#bt-runs a[href='/backtests/{runs[0].pk}/']")
    expect(page.locator("#run-state")).to_have_text("succeeded")
    expect(page.locator("td[data-metric=trade_count]")).to_have_text(str(runs[0].metrics["trade_count"]))
    expect(page.locator("#equity-chart .main-svg").first).to_be_visible()
    expect(page.locator("#price-chart .main-svg").first).to_be_visible()
    expect(page.locator("#trades-count")).to_contain_text(f"{runs[0].trades.count()} trades")
    # Two days of 1m bars and a handful of trades: the figures carry visible warnings.
    expect(page.locator("#metrics-note [data-code=short_period]")).to_contain_text("extrapolate 2.1 days to a year")
    expect(page.locator("#metrics-note [data-code=few_trades]")).to_contain_text(
        f"Only {runs[0].metrics['trade_count']} closed trades")
    # rounded to the market's step (0.001), to float precision
    assert all(abs(t.size / 0.001 - round(t.size / 0.001)) < 1e-6 for t in runs[0].trades.all())
    shot(page, "results")

    with page.expect_download() as download:
        page.click("#btn-export-trades")
    path = tmp_path / "trades.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == runs[0].trades.count() and rows[0]["exit_reason"]

    page.goto(f"{live_url}/backtests/")
    for run in runs:
        page.check(f"#bt-runs input[data-id='{run.pk}']")
    page.click("#bt-compare")
    expect(page.locator("#compare-table tbody tr")).to_have_count(2)
    page.select_option("#rank-by", "total_return")
    best = max(runs, key=lambda r: r.metrics["total_return"])
    expect(page.locator("#compare-table tbody tr").first).to_contain_text(best.name)
    expect(page.locator("#compare-chart .main-svg").first).to_be_visible()
    shot(page, "compare")


def test_gap_refusal_is_shown_in_the_form(login, page, live_url, alice, market):
    login(alice)
    page.goto(f"{live_url}/backtests/")
    expect(page.locator("#bt-dataset")).to_contain_text("SYN/USD")
    page.fill("#bt-end", "2030-01-01T00:00")  # beyond the stored candles: a gap up to the end
    run_from_form(page, 10, 30)
    expect(page.locator("#bt-error")).to_contain_text("gap(s) in the data")
    assert not BacktestRun.objects.exists()


def test_starting_from_a_config_fills_its_execution_settings(login, page, live_url, alice, market):
    from apps.strategies.services import config_create

    config = config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1m", name="stopped",
                           parameters={"fast": 12, "slow": 40},
                           execution={"stop_loss": 0.015, "take_profit": 0.05, "trailing_stop": 0.02, "fee": 0.0015,
                                      "slippage": 0.0005, "sizing": "risk", "size_value": 0.02, "amount_step": 0.01,
                                      "allow_short": True, "cash": 5000.0})
    login(alice)
    page.goto(f"{live_url}/backtests/")
    expect(page.locator("#bt-dataset")).to_contain_text("SYN/USD · 1m", timeout=30_000)
    page.select_option("#bt-config", str(config.pk))
    expect(page.locator("#bt-sl")).to_have_value("1.5")
    expect(page.locator("#bt-step")).to_have_value("0.01")  # the config's step, not the market's 0.001
    expect(page.locator("#param-fast")).to_have_value("12")
    page.click("#bt-submit")
    expect(page.locator("#bt-runs tbody tr").first.locator("[data-state]")).to_have_text("succeeded", timeout=30_000)
    run = BacktestRun.objects.get()
    assert run.config_id == config.pk and run.parameters == {"fast": 12, "slow": 40}
    assert run.execution_settings() == config.execution_settings()
    shot(page, "from_config")
