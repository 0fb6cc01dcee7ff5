"""The market-data page in a real browser, against the local exchange simulator."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.marketdata import services
from apps.marketdata.services import downloads
from tests.browser.conftest import SCREENSHOTS
from tests.exchange_sim import running_simulator

NOW = 1_700_000_000_000  # the simulator's clock: 2023-11-14T22:13:20Z


@pytest.fixture
def sim(settings, monkeypatch):
    monkeypatch.setattr(downloads, "PAGE_LIMIT", 100)  # many pages: the bar moves visibly
    with running_simulator(now=NOW, latency_ms=40) as simulator:
        settings.CCXT_OVERRIDES = simulator.ccxt_overrides()
        yield simulator


@pytest.fixture
def binance(live_url):
    return services.exchange_get_or_create(name="binance")


def shot(page, name):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"marketdata_{name}.png"), full_page=True)


def open_page(login, page, live_url, user):
    login(user)
    page.goto(f"{live_url}/market-data/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    # record every progress event the page receives, to prove the bar moved live
    page.evaluate("""() => { window.__progress = [];
        TP.on('marketdata.download.progress', (m) => window.__progress.push(m.data)); }""")


def test_download_from_the_page_shows_live_progress_then_coverage_and_chart(login, page, live_url, alice, sim, binance):
    open_page(login, page, live_url, alice)
    expect(page.locator("#md-exchange")).to_contain_text("Binance")
    page.select_option("#md-exchange", label="Binance (binance)")
    expect(page.locator("#md-market-hint")).to_contain_text("No markets of Binance loaded yet")
    page.click("#md-load-markets")
    expect(page.locator("#md-market-hint")).to_contain_text("3 market(s) known")
    page.fill("#md-symbol", "BTC/USDT")
    page.select_option("#md-timeframe", "1m")
    page.fill("#md-start", "2023-11-12T00:00")
    page.fill("#md-end", "2023-11-14T02:00")  # 3,000 one-minute candles in pages of 100
    page.click("#md-submit")

    row = page.locator("#jobs-table tbody tr").first
    expect(row.locator(".job-pct")).to_have_text("100.0 %", timeout=60_000)
    expect(row.locator(".job-state")).to_have_text("succeeded")
    expect(row.locator(".job-rows")).to_contain_text("3,000")
    expect(row.locator(".job-speed")).to_have_text(re.compile(r"^\d[\d,]*/s$"))
    expect(row.locator(".job-eta")).to_have_text("0 s")
    seen = page.evaluate("window.__progress")
    running = [e for e in seen if e["state"] == "running" and 0 < e["progress"] < 100]
    assert running, f"no intermediate progress event: {[e['progress'] for e in seen]}"
    assert any(e["eta_seconds"] is not None and e["candles_per_second"] > 0 for e in running)

    series = page.locator("#coverage .cov-series").first
    expect(series).to_contain_text("Binance BTC/USDT 1m")
    expect(series.locator(".cov-summary")).to_contain_text("3,000 candles")
    expect(series.locator(".cov-gaps")).to_have_text("0 gaps")
    expect(series.locator(".timeline .covered")).to_have_count(1)
    expect(page.locator("#chart .main-svg").first).to_be_visible()
    expect(page.locator("#chart-info")).to_contain_text("binance BTC/USDT 1m: 1,000 candles")
    shot(page, "after_download")


def test_gaps_are_marked_and_fill_gaps_fills_them(login, page, live_url, alice, sim, binance):
    services.exchange_load_markets(exchange=binance)
    btc = binance.markets.get(symbol="BTC/USDT")
    t0 = NOW - NOW % 3_600_000 - 10 * 3_600_000
    for a, b in ((0, 60), (90, 200), (230, 300)):
        job = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=t0 + a * 60_000,
                                      end_ms=t0 + b * 60_000, enqueue=False)
        services.download_run(job_id=job.pk)
    sim.set_faults(missing={"BTC/USDT": [(t0 + 200 * 60_000, t0 + 230 * 60_000)]})  # this one the exchange lost
    open_page(login, page, live_url, alice)
    series = page.locator("#coverage .cov-series").first
    expect(series.locator(".cov-gaps")).to_have_text("2 gaps")
    expect(series.locator(".timeline .gap")).to_have_count(2)
    shot(page, "gaps_before_fill")
    series.locator("button[data-fill]").click()
    expect(page.locator("#toasts")).to_contain_text("Started 2 job(s) to fill the gaps.")
    expect(series.locator(".cov-gaps")).to_have_text("1 gap", timeout=30_000)
    expect(series.locator(".timeline .gap.nodata")).to_have_count(1)
    expect(series.locator("button[data-fill]")).to_be_disabled()
    expect(page.locator("#issues-table")).to_contain_text("the exchange returned no candles")
    shot(page, "gaps_after_fill")


def test_bad_input_is_explained_on_the_page(login, page, live_url, alice, sim, binance):
    open_page(login, page, live_url, alice)
    page.select_option("#md-exchange", label="Binance (binance)")
    page.fill("#md-symbol", "BTC/USDT")
    page.fill("#md-start", "2023-11-13T00:00")
    page.fill("#md-end", "2023-11-12T00:00")
    page.click("#md-submit")
    expect(page.locator("#download-error")).to_have_text(
        "end: The end (2023-11-12T00:00:00Z) must be after the start (2023-11-13T00:00:00Z).")
    page.fill("#md-symbol", "XYZ/USDT")
    page.fill("#md-end", "2023-11-14T00:00")
    page.click("#md-submit")
    expect(page.locator("#download-error")).to_have_text("Unknown symbol 'XYZ/USDT' on binance.")
    page.fill("#md-symbol", "")
    page.click("#md-submit")
    expect(page.locator("#download-error")).to_have_text("Pick a market.")
    shot(page, "bad_input")
