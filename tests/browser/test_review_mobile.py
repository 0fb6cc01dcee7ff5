"""A new user on a phone (390x844) walks the trading, risk, alerts and graduation pages: each
loads, shows the user's deployment, and has no horizontal scroll."""
from __future__ import annotations

import pytest

from tests.owned_factories import deployment

pytestmark = pytest.mark.browser


def test_new_pages_fit_a_phone(page, login, live_url, alice):
    d = deployment(alice)
    login(alice)
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = {}
    for path in ("/trading/", f"/trading/deployments/{d.pk}/", f"/trading/accounts/{d.account_id}/", "/risk/",
                 "/alerts/", "/alerts/channels/", "/graduation/", "/exports/"):
        response = page.goto(f"{live_url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        page.screenshot(path=f"/tmp/review_shot{path.replace('/', '_')}.png", full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 391:
            wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > 392).slice(0, 4)
                .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
            overflow[path] = (width, wide)
    assert not overflow, overflow
    page.goto(f"{live_url}/trading/")
    assert d.name in page.content()
