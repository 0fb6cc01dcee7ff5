"""The dashboard shell in a real browser: login, live indicator, live events, pages."""
from __future__ import annotations

from playwright.sync_api import expect

from tradepulse.core import events


def test_login_indicator_turns_green_and_live_event_appears(login, page, alice):
    login(alice)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#conn .conn-label")).to_have_text("Live")
    events.send_now([events.user_group(alice.pk)],
                    events.make_message("marketdata.download.progress", {"message": "BTC/USDT 1m: 42 %"}))
    feed = page.locator("#event-feed li").first
    expect(feed).to_contain_text("marketdata.download.progress")
    expect(feed).to_contain_text("BTC/USDT 1m: 42 %")
    # The recent-activity card shows the audited login, read through the API.
    expect(page.locator("#recent-audit")).to_contain_text("accounts.user.login")


def test_wrong_password_shows_an_error(page, live_url, alice):
    page.goto(f"{live_url}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "not-it")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("Please enter a correct username and password")


def test_navigation_lists_every_page_and_marks_any_unbuilt_one(login, page, alice):
    from apps.dashboard.context_processors import NAV

    login(alice)
    expect(page.locator(".sidenav")).to_contain_text("Audit trail")
    links, disabled = page.locator(".sidenav a"), page.locator(".sidenav .disabled")
    assert links.count() + disabled.count() == len(NAV)
    for i in range(disabled.count()):  # none once every page is built; any that is not says so
        expect(disabled.nth(i)).to_contain_text("not yet available")
    for label in ("Trading", "Risk", "Graduation", "Alerts"):
        expect(page.locator(".sidenav a", has_text=label)).to_have_count(1)


def test_audit_page_searches_and_health_page_lists_components(login, page, live_url, alice):
    login(alice)
    page.goto(f"{live_url}/audit/")
    expect(page.locator("#audit-table tbody")).to_contain_text("accounts.user.login")
    page.fill("input[name=search]", "no-such-thing")
    page.click("#audit-filter button")
    expect(page.locator("#audit-table tbody")).to_contain_text("No events match")
    page.goto(f"{live_url}/health/")
    expect(page.locator("#health-table")).to_contain_text("database")
    expect(page.locator("#health-table")).to_contain_text("channel_layer")


def test_api_token_created_and_revoked_from_the_page(login, page, live_url, alice):
    login(alice)
    page.goto(f"{live_url}/account/tokens/")
    page.fill("#token-form input[name=name]", "my script")
    page.click("#token-form button")
    expect(page.locator("#new-token-value")).not_to_be_empty()
    expect(page.locator("#tokens tbody")).to_contain_text("my script")
    page.once("dialog", lambda d: d.accept())
    page.click("#tokens button.danger")
    expect(page.locator("#tokens tbody")).to_contain_text("No tokens yet")
