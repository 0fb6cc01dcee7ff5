"""Browser tests: Playwright driving Debian's chromium against a daphne server in this process.

The server runs in a thread of the test process, so it shares the test database and (in
embedded mode) the in-memory channel layer with the test. Set TRADEPULSE_BROWSER_TESTS=0 to
skip these tests on a machine without chromium; `.ci/run` installs it and requires them.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("TRADEPULSE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
    if os.environ.get("TRADEPULSE_BROWSER_TESTS", "1") == "0":
        skip = pytest.mark.skip(reason="TRADEPULSE_BROWSER_TESTS=0")
    elif not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("TRADEPULSE_REQUIRE_SERVICES") == "1":
            raise pytest.UsageError(f"browser tests required but {CHROMIUM} is missing (apt-get install chromium)")
        skip = pytest.mark.skip(reason=f"{CHROMIUM} not installed")
    else:
        return
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _daphne_server():
    from daphne.server import Server  # installs the asyncio twisted reactor

    from tradepulse.asgi import application

    port = _free_port()
    server = Server(application=application, endpoints=[f"tcp:port={port}:interface=127.0.0.1"],
                    signal_handlers=False, verbosity=0)
    thread = threading.Thread(target=server.run, name="daphne-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        raise RuntimeError("daphne test server did not start")
    yield f"http://127.0.0.1:{port}"


@pytest.fixture
def live_url(_daphne_server, transactional_db, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    return _daphne_server


@pytest.fixture(scope="session")
def _browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(_browser, request):
    """A fresh browser tab. Any Content-Security-Policy violation on any page a test visits fails
    that test: it means a script or style the page needs was blocked in production."""
    context = _browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    # `expect` has its own default (5 s); on a loaded CI machine a page that is right can take
    # longer than that to render, so assertions wait as long as actions do.
    from playwright.sync_api import expect
    expect.set_options(timeout=15000)
    csp_violations: list[str] = []
    page.on("console", lambda msg: csp_violations.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    page.csp_violations = csp_violations
    yield page
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
    assert not csp_violations, "Content-Security-Policy violations:\n" + "\n".join(csp_violations)


@pytest.fixture
def login(page, live_url):
    """login(user) signs the browser in through the real login form."""
    from tests.conftest import PASSWORD

    def do(user, password=PASSWORD):
        page.goto(f"{live_url}/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_url}/")
        return page

    return do
