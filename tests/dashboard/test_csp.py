"""Content-Security-Policy: scripts only from our origin or inline with the response's nonce.

The browser tests (tests/browser/conftest.py) fail on any CSP violation on every page they
visit; these tests pin the header and keep every template's inline script nonced.
"""
from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.test import Client

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def test_every_inline_script_in_our_templates_carries_the_nonce():
    missing = []
    for path in sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")):
        for tag in INLINE_SCRIPT.findall(path.read_text()):
            if 'nonce="{{ request.csp_nonce }}"' not in tag:
                missing.append(f"{path.relative_to(settings.BASE_DIR)}: {tag}")
    assert not missing, "inline <script> without the CSP nonce (blocked in the browser):\n" + "\n".join(missing)


def test_page_sends_a_policy_whose_nonce_matches_its_inline_scripts(alice):
    client = Client()
    client.force_login(alice)
    response = client.get("/")
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    nonces = [s[len("'nonce-"):-1] for s in policy["script-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1
    scripts = INLINE_SCRIPT.findall(response.content.decode())
    assert scripts and all(f'nonce="{nonces[0]}"' in tag for tag in scripts)
    other = client.get("/")
    assert _policy(other)["script-src"] != policy["script-src"], "the nonce must change with every response"


def test_api_docs_load_their_script_from_a_url_not_inline(alice):
    client = Client()
    client.force_login(alice)
    response = client.get("/api/docs/")
    assert response.status_code == 200 and "Content-Security-Policy" in response
    assert not INLINE_SCRIPT.findall(response.content.decode())
