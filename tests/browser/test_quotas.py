"""Quotas in a real browser: a download form beyond a limit shows the refusal naming it, and the
preferences page lists the limits with usage that follows the user's jobs live."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.accounts.services import quota_set
from apps.backtests import services as backtests
from apps.marketdata import services
from tests.backtests.conftest import MIN, T0, market, ms_dt  # noqa: F401
from tests.browser.conftest import SCREENSHOTS
from tests.exchange_sim import running_simulator

NOW = 1_700_000_000_000


@pytest.fixture
def sim(settings):
    with running_simulator(now=NOW) as simulator:
        settings.CCXT_OVERRIDES = simulator.ccxt_overrides()
        yield simulator


def test_a_download_beyond_the_limit_is_refused_on_the_form_naming_it(login, page, live_url, alice, sim):
    services.exchange_get_or_create(name="binance")
    quota_set(key="download_candles", value=100, user=alice, reason="browser test: a small limit")
    login(alice)
    page.goto(f"{live_url}/market-data/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.select_option("#md-exchange", label="Binance (binance)")
    page.click("#md-load-markets")
    expect(page.locator("#md-market-hint")).to_contain_text("market(s) known")
    page.fill("#md-symbol", "BTC/USDT")
    page.select_option("#md-timeframe", "1m")
    page.fill("#md-start", "2023-11-12T00:00")
    page.fill("#md-end", "2023-11-14T02:00")
    page.click("#md-submit")
    expect(page.locator("#download-error")).to_have_text(
        "end: Candles in one download is limited to 100 (your own limit); you asked for 3,000.")


def test_limits_page_shows_values_sources_and_live_usage(login, page, live_url, alice, market):  # noqa: F811
    quota_set(key="backtests_concurrent", value=3, user=alice, reason="browser test")
    quota_set(key="training_trials", value=2_000, role=alice.groups.get(), reason="browser test")
    login(alice)
    page.goto(f"{live_url}/account/preferences/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    row = page.locator('#quotas tr[data-key="backtests_concurrent"]')
    expect(row.locator(".q-value")).to_have_text("3")
    expect(row.locator(".q-used")).to_have_text("0")
    expect(row.locator(".q-source")).to_have_text("your own limit")
    expect(page.locator('#quotas tr[data-key="training_trials"] .q-source')).to_have_text("role Trader")
    expect(page.locator('#quotas tr[data-key="training_trials"] .q-value')).to_have_text("2,000")
    backtests.backtest_create(owner=alice, market=market, timeframe="1m", strategy_key="sma_cross",
                              start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN), enqueue=False)
    expect(row.locator(".q-used")).to_have_text("1")  # the created event made the page re-read its limits
    SCREENSHOTS.mkdir(exist_ok=True)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"quotas_{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"scrolls at {width}px"
