"""The live connection in a real browser, through daphne and the suite's channel layer (Redis
when it answers, as in CI): it survives idling past every timeout, and a signed-out session
stops reconnecting and says so."""
from __future__ import annotations

import time

from django.contrib.sessions.models import Session
from django.conf import settings
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS
from tests.conftest import make_user
from tradepulse.core import events

# Keeps every WebSocket the page opens reachable from the test (the app keeps its own private).
CAPTURE_SOCKETS = """
window.__sockets = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (...args) { const ws = new NativeWebSocket(...args); window.__sockets.push(ws); return ws; };
window.WebSocket.prototype = NativeWebSocket.prototype;
Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
"""


def test_suite_runs_websockets_on_the_redis_layer_when_redis_answers():
    if settings.REDIS_URL:
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"


def test_idle_page_stays_live_and_receives_a_late_event(login, page, alice):
    page.add_init_script(CAPTURE_SOCKETS)
    login(alice)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    time.sleep(12)  # longer than the layer's 5 s blocking read and the Redis socket timeout
    assert page.evaluate("window.__sockets.length") == 1, "the socket was dropped and reopened while idle"
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    events.send_now([events.user_group(alice.pk)],
                    events.make_message("marketdata.download.progress", {"message": "after the idle spell"}))
    expect(page.locator("#event-feed li").first).to_contain_text("after the idle spell")


def test_signed_out_session_shows_signed_out_and_stops_reconnecting(login, page, alice):
    page.add_init_script(CAPTURE_SOCKETS)
    login(alice)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    Session.objects.all().delete()  # the session ends (logout elsewhere, expiry)
    page.evaluate("window.__sockets[0].close()")  # the connection drops; the page reconnects
    expect(page.locator("#conn")).to_have_attribute("data-state", "signed-out")
    expect(page.locator("#conn .conn-label")).to_have_text("Signed out")
    expect(page.locator("#signed-out")).to_contain_text("You are signed out")
    expect(page.locator("#signed-out a")).to_have_attribute("href", "/login/?next=%2F")
    opened = page.evaluate("window.__sockets.length")
    time.sleep(3)  # a reconnect loop would have opened more sockets by now
    assert page.evaluate("window.__sockets.length") == opened == 2
    page.screenshot(path=str(SCREENSHOTS / "signed_out_state.png"))
    page.click("#signed-out a")
    expect(page.locator("input[name=username]")).to_be_visible()


def test_every_page_works_under_the_content_security_policy(login, page, live_url, db):
    """Each page loads, runs its scripts (live indicator, data from the API) and the console shows
    no CSP violation (the page fixture fails the test on any)."""
    root = make_user("root", None, is_staff=True, is_superuser=True)
    login(root)
    pages = {"/": "#recent-audit", "/market-data/": "h1", "/strategies/": "h1", "/backtests/": "h1",
             "/training/": "h1", "/audit/": "#audit-table tbody tr", "/health/": "#health-table tbody tr",
             "/account/preferences/": "h1", "/account/security/": "svg", "/account/tokens/": "#tokens tbody tr"}
    for path, ready in pages.items():
        page.goto(f"{live_url}{path}")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")  # tradepulse.js ran
        expect(page.locator(ready).first).to_be_visible()
    expect(page.locator("#tokens tbody")).not_to_contain_text("Loading")  # the page's own inline script ran
    page.goto(f"{live_url}/api/docs/")
    # The schema is generated on request: slow on a busy machine.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("TradePulse API", timeout=60000)
    for path in ["/admin/", "/admin/django_celery_beat/periodictask/add/", f"/admin/accounts/user/{root.pk}/change/"]:
        page.goto(f"{live_url}{path}")
        expect(page.locator("#content")).to_be_visible()
    page.wait_for_timeout(500)
    assert page.csp_violations == []
