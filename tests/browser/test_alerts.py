"""The alert centre in a real browser: a live alert arrives as a toast and in the unread count on
whatever page is open, shows up in the centre, and is acknowledged there; channels are added,
tested against a local receiver and listed with their deliveries. Screenshots at 1440x900 and
390x844 (no horizontal scroll on the phone)."""
from __future__ import annotations

from playwright.sync_api import expect

from apps.alerts.models import Alert, AlertState, Delivery, DeliveryState
from apps.alerts.services import alert_raise
from tests.alerts.receiver import receiver  # noqa: F401 - fixture
from tests.browser.conftest import SCREENSHOTS
from tests.owned_factories import download_job

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}


def _shoot(page, name):
    for label, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.screenshot(path=str(SCREENSHOTS / f"{name}_{label}.png"), full_page=True)
        if label == "phone":
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name}: {overflow} px of horizontal scroll at 390 px"
    page.set_viewport_size({"width": 1440, "height": 900})


def test_a_live_alert_toasts_counts_and_is_acknowledged_in_the_centre(login, page, live_url, alice):
    job = download_job(alice)
    login(alice)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#alert-unread")).to_have_text("0")

    # on the overview page: the toast and the count, live
    alert_raise(severity="error", source="marketdata", title="Download failed", message="binance answered 418",
                target=job)
    toast = page.locator(".alert-toast")
    expect(toast).to_contain_text("ERROR: Download failed")
    expect(toast).to_contain_text("binance answered 418")
    expect(page.locator("#alert-unread")).to_have_text("1")

    toast.locator("a").click()
    expect(page.locator("#alerts-table tbody tr")).to_have_count(1)
    row = page.locator("#alerts-table tbody tr").first
    expect(row).to_contain_text("Download failed")
    expect(row).to_contain_text(str(job))
    expect(page.locator("#centre-unread")).to_have_text("1 unread")

    # a second alert arrives while the centre is open: it is added live, at the top
    alert_raise(severity="critical", source="marketdata", title="Exchange unreachable", target=job,
                key="exchange-down")
    expect(page.locator("#alerts-table tbody tr")).to_have_count(2)
    expect(page.locator("#alerts-table tbody tr").first).to_contain_text("Exchange unreachable")
    expect(page.locator("#alert-unread")).to_have_text("2")
    # and a repeat only moves its count
    alert_raise(severity="critical", source="marketdata", title="Exchange unreachable", target=job,
                key="exchange-down")
    expect(page.locator("#alerts-table tbody tr").first.locator("td.num")).to_have_text("2")
    _shoot(page, "alert_centre")

    page.locator("#alerts-table tbody tr", has_text="Download failed").locator("button.ack").click()
    acknowledged = page.locator("#alerts-table tbody tr", has_text="Download failed")
    expect(acknowledged.locator(".alert-state")).to_contain_text("acknowledged by alice")
    expect(page.locator("#alert-unread")).to_have_text("1")
    expect(page.locator("#centre-unread")).to_have_text("1 unread")
    stored = Alert.objects.get(title="Download failed")
    assert stored.state == AlertState.ACKNOWLEDGED and stored.acknowledged_by == alice

    # the filter: only acknowledged ones
    page.select_option("#alert-filter select[name=state]", "acknowledged")
    page.click("#alert-filter button")
    expect(page.locator("#alerts-table tbody tr")).to_have_count(1)
    expect(page.locator("#alerts-table tbody tr").first).to_contain_text("Download failed")


def test_channels_are_added_tested_and_their_deliveries_listed(login, page, live_url, alice, receiver, settings):  # noqa: F811
    login(alice)
    page.goto(f"{live_url}/alerts/channels/")
    expect(page.locator("#channels-table tbody")).to_contain_text("No channels yet")
    page.fill("#channel-form input[name=name]", "Team hook")
    page.select_option("#channel-form select[name=kind]", "slack")
    expect(page.locator("#channel-form input[name=bot_token]")).to_be_hidden()
    page.fill("#channel-form input[name=url]", f"{receiver.base}/services/T1/B2/SeCrEt123")
    page.fill("#channel-form input[name=quiet_start]", "22:00")
    page.fill("#channel-form input[name=quiet_end]", "07:00")
    page.click("#channel-form button.primary")
    row = page.locator("#channels-table tbody tr", has_text="Team hook")
    expect(row).to_contain_text("127.0.0.1/…t123")
    expect(row).to_contain_text("22:00–07:00")
    expect(page.locator("body")).not_to_contain_text("SeCrEt123")

    row.locator("button.test").click()
    expect(page.locator(".toast", has_text="Test sent on Team hook")).to_be_visible()
    expect(page.locator("#deliveries-table tbody tr").first).to_contain_text("sent")
    assert receiver.requests[-1]["path"] == "/services/T1/B2/SeCrEt123"

    receiver.default_status = 500
    row.locator("button.test").click()
    expect(page.locator(".toast", has_text="failed")).to_contain_text("answered HTTP 500")
    expect(page.locator("#deliveries-table tbody tr").first).to_contain_text("failed")
    assert Delivery.objects.filter(state=DeliveryState.FAILED).count() == 1

    # a bad URL is refused with the reason, and nothing is stored
    page.fill("#channel-form input[name=name]", "Broken")
    page.select_option("#channel-form select[name=kind]", "webhook")
    page.fill("#channel-form input[name=url]", "ftp://example.com/x")
    page.click("#channel-form button.primary")
    expect(page.locator("#channel-error")).to_contain_text("https://")
    _shoot(page, "alert_channels")
