"""The strategies page: the library, your configurations, editing with a reason."""
from __future__ import annotations

from playwright.sync_api import expect

from apps.audit.models import AuditEvent
from apps.marketdata import services as md
from apps.strategies.models import StrategyConfig
from apps.strategies.services import config_create
from tests.browser.conftest import SCREENSHOTS


def test_library_and_editing_a_config(login, page, live_url, alice, charlie):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="SYN/USD")
    mine = config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1h",
                         parameters={"fast": 10, "slow": 30}, name="my trend")
    config_create(owner=charlie, strategy_key="macd", market=market, timeframe="1h", name="not yours")
    login(alice)
    page.goto(f"{live_url}/strategies/")
    expect(page.locator("#library [data-strategy=rsi_reversion]")).to_contain_text("RSI")
    expect(page.locator("#cfg-table tbody tr")).to_have_count(1)
    expect(page.locator("#cfg-table")).to_contain_text("my trend")
    expect(page.locator("#cfg-table")).not_to_contain_text("not yours")
    page.click(f"button[data-edit='{mine.pk}']")
    page.fill("#param-fast", "50")  # not below slow (30): refused with the reason
    page.click("#cfg-edit-form button.primary")
    expect(page.locator("#cfg-edit-error")).to_contain_text("fast")
    page.fill("#param-fast", "12")
    page.fill("#cfg-edit-form input[name=reason]", "faster entries")
    page.click("#cfg-edit-form button.primary")
    expect(page.locator("#cfg-table")).to_contain_text('"fast":12')
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "strategies_page.png"), full_page=True)
    assert StrategyConfig.objects.get(pk=mine.pk).parameters["fast"] == 12
    event = AuditEvent.objects.get(action="strategies.config.updated", target_id=str(mine.pk))
    assert event.reason == "faster entries" and event.changes["parameters"][1]["fast"] == 12


def test_config_view_shows_execution_settings_code_version_and_evidence(login, page, live_url, alice):
    from datetime import UTC, datetime

    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="SYN/USD")
    config = config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1h", name="stopped",
                           execution={"stop_loss": 0.02, "take_profit": 0.05, "fee": 0.0015, "allow_short": True})
    from apps.strategies.services import config_evidence_record

    config_evidence_record(config=config, source="holdout", period_start=datetime(2024, 1, 1, tzinfo=UTC),
                           period_end=datetime(2024, 3, 1, tzinfo=UTC), trades=17, sharpe=1.234, max_drawdown=0.081,
                           total_return=0.12, oos_sharpe=0.9, dsr=0.97, pbo=0.12, fingerprint="ab" * 32,
                           code_version=config.code_version)
    login(alice)
    page.goto(f"{live_url}/strategies/")
    page.click(f"button[data-view='{config.pk}']")
    expect(page.locator("#cfg-settings")).to_contain_text("2.00 %")  # stop-loss
    expect(page.locator("#cfg-settings [data-setting='Take-profit']")).to_have_text("5.00 %")
    expect(page.locator("#cfg-settings [data-setting='Fee per side']")).to_have_text("0.150 %")
    expect(page.locator("#cfg-settings [data-setting='Shorts']")).to_have_text("allowed")
    expect(page.locator("#cfg-provenance")).to_contain_text(config.code_version[:12])
    row = page.locator("#cfg-evidence tr[data-source=holdout]")
    expect(row).to_contain_text("Training: hold-out")
    expect(row).to_contain_text("1.23")
    expect(row).to_contain_text("97.00 %")  # DSR
    expect(row).to_contain_text("17")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "strategies_config_view.png"), full_page=True)
