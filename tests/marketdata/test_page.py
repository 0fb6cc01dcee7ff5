"""The /market-data/ page shell (its behaviour is covered by tests/browser/test_marketdata.py)."""
from __future__ import annotations

import re


def test_page_renders_with_the_download_form_and_local_plotly(client, alice):
    client.force_login(alice)
    page = client.get("/market-data/").content.decode()
    assert 'id="download-form"' in page and 'id="coverage"' in page and 'id="issues-table"' in page
    # plotly is served from here, no script from anywhere else (a "cdn" substring test failed
    # whenever the random CSRF token happened to contain those three letters)
    assert "/static/vendor/plotly/plotly.min.js" in page
    assert re.findall(r'<script[^>]+src="(?!/static/)', page) == []
    assert 'class="active">Market data</a>' in page  # the nav entry lights up


def test_a_viewer_sees_data_but_no_download_form(client, victor):
    client.force_login(victor)
    page = client.get("/market-data/").content.decode()
    assert 'id="download-form"' not in page and "may look at market data but not start downloads" in page


def test_anonymous_is_sent_to_login(client, db):
    assert client.get("/market-data/").status_code == 302
