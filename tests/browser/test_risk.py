"""The risk page in a real browser: gauges per scope, trip the kill switch with a confirmation and
see it stop entries, see an operator's global trip arrive over the WebSocket, release with a
reason; an override with its time left. Screenshots at 1440x900 and 390x844 (no sideways scroll)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from playwright.sync_api import expect

from apps.risk import services
from apps.risk.check import OrderIntent, risk_check
from apps.risk.models import KillSwitch
from apps.strategies.services import config_create
from apps.trading import services as trading
from apps.trading.models import Position
from tests.browser.conftest import SCREENSHOTS
from tests.owned_factories import _file_market


def _deployment(owner):
    market = _file_market()
    config = config_create(owner=owner, strategy_key="sma_cross", market=market, timeframe="1m",
                           parameters={"fast": 10, "slow": 30}, name="risk page config")
    account = trading.account_create(owner=owner, name="Paper", exchange=market.exchange, mode="paper",
                                     paper_balance=Decimal("10000"), paper_currency="USD", reason="test")
    d = trading.deployment_create(owner=owner, config=config, account=account, capital=Decimal("5000"),
                                  name="Sine bot", reason="test")
    return trading.deployment_activate(deployment=d, reason="test")


def _entry(d):
    return OrderIntent(deployment_id=d.pk, account_id=d.account_id, owner_id=d.owner_id, symbol="SYN/USD",
                       side="buy", amount=Decimal("1"), price=Decimal("100"))


def test_trip_and_release_the_kill_switch_from_the_risk_page(login, page, live_url, alice, olivia):
    services.profile_update(scope="global", changes={"total_exposure_pct": "80", "open_positions_max": "5",
                                                     "risk_per_trade_pct": "1"}, reason="test")
    d = _deployment(alice)
    services.profile_update(scope="deployment", target=d, changes={"position_notional_max": "2000"}, reason="test")
    Position.objects.create(deployment=d, symbol="SYN/USD", side="long", amount=Decimal("10"),
                            entry_price=Decimal("100"), mark_price=Decimal("100"))
    services.override_create(scope="deployment", target=d, limit="risk_per_trade_pct", value="0.5",
                             reason="volatile week", expires_at=timezone.now() + timedelta(hours=5))
    login(alice)
    page.goto(f"{live_url}/risk/?deployment={d.pk}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator(".scope-card")).to_have_count(4)
    notional = page.locator('.scope-card[data-scope="deployment"] [data-limit="position_notional_max"]')
    expect(notional).to_contain_text("1,000 / 2,000 quote")
    expect(page.locator('.scope-card[data-scope="global"] [data-limit="total_exposure_pct"]')).to_contain_text("20 / 80")
    expect(page.locator("#rk-overrides tbody")).to_contain_text("volatile week")
    expect(page.locator("#rk-overrides tbody")).to_contain_text(" h ")  # time left, e.g. "4 h 59 min"
    expect(page.locator("#rk-risk-now")).to_contain_text("0.5 % (override)")
    expect(page.locator("#rk-no-switch")).to_be_visible()

    # trip at the deployment scope, with the confirmation
    page.select_option("#rk-trip-scope", f"deployment|deployment:{d.pk}")
    page.fill("#rk-trip-reason", "exchange incident")
    page.click("#rk-trip")
    expect(page.locator("#rk-confirm")).to_be_visible()
    expect(page.locator("#rk-confirm-text")).to_contain_text("Sine bot")
    page.click("#rk-confirm-ok")
    expect(page.locator(".killswitch.active")).to_contain_text("exchange incident")
    switch = KillSwitch.objects.get(released_at__isnull=True)
    assert switch.scope == "deployment" and switch.tripped_by == alice
    assert risk_check(intent=_entry(d)).reasons[0]["limit"] == "kill_switch"

    # an operator trips the global switch elsewhere: the page hears it live
    services.killswitch_trip(scope="global", reason="operator drill", actor=olivia)
    expect(page.locator(".killswitch.active")).to_have_count(2)
    expect(page.locator("#rk-switches")).to_contain_text("operator drill")

    # release the deployment's switch from the page, with a reason
    page.once("dialog", lambda dialog: dialog.accept("incident over"))
    page.click(f'[data-release="{switch.pk}"]')
    expect(page.locator(".killswitch.active")).to_have_count(1)
    switch.refresh_from_db()
    assert switch.release_reason == "incident over" and switch.released_by == alice
    services.killswitch_release(switch=KillSwitch.objects.get(released_at__isnull=True), reason="drill over",
                                actor=olivia)
    expect(page.locator("#rk-no-switch")).to_be_visible()
    assert risk_check(intent=_entry(d)).outcome != "rejected"

    SCREENSHOTS.mkdir(exist_ok=True)
    for name, (w, h) in {"desktop": (1440, 900), "phone": (390, 844)}.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(200)
        page.screenshot(path=str(SCREENSHOTS / f"risk_page_{name}.png"), full_page=name == "desktop")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: {overflow} px of horizontal scroll"


def test_a_trip_needs_the_confirmation(login, page, live_url, alice):
    d = _deployment(alice)
    login(alice)
    page.goto(f"{live_url}/risk/?deployment={d.pk}")
    expect(page.locator(".scope-card")).to_have_count(4)
    page.select_option("#rk-trip-scope", f"deployment|deployment:{d.pk}")
    page.fill("#rk-trip-reason", "maybe")
    page.click("#rk-trip")
    page.click("#rk-confirm-cancel")
    expect(page.locator("#rk-no-switch")).to_be_visible()
    assert not KillSwitch.objects.exists()


def test_replay_a_backtest_with_the_limits_from_the_risk_page(login, page, live_url, alice):
    from apps.backtests.services import backtest_execute
    from tests.owned_factories import backtest_run

    run = backtest_run(alice)
    backtest_execute(run.pk)
    run.refresh_from_db()
    services.profile_update(scope="user", target=alice, changes={"position_notional_max": "1000"}, reason="test")
    login(alice)
    page.goto(f"{live_url}/risk/")
    expect(page.locator("#rk-bt-run")).to_contain_text(f"#{run.pk}")
    page.select_option("#rk-bt-run", str(run.pk))
    page.click("#rk-bt-go")
    table = page.locator("#rk-bt-table")
    expect(table).to_contain_text("As run (no limits)")
    expect(table).to_contain_text("With the limits of Global + User alice")
    expect(page.locator("#rk-bt-result")).to_contain_text("position_notional_max")
    expect(page.locator("#rk-bt-result")).to_contain_text("resized")
    page.locator("#rk-backtest").screenshot(path=str(SCREENSHOTS / "risk_backtest_replay.png"))
