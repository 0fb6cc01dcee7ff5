"""Log lines carry the request id and never a secret."""
from __future__ import annotations

import json
import logging

from pythonjsonlogger.json import JsonFormatter

from channels.testing import HttpCommunicator

from tradepulse.asgi import application  # sets Django up (and its logging) before caplog attaches
from tradepulse.core import context
from tradepulse.core.logging import ContextFilter, RedactSecretsFilter, redact


def _format(record_msg, *args, formatter=None, exc_info=None):
    record = logging.LogRecord("t", logging.INFO, __file__, 1, record_msg, args, exc_info)
    for f in (ContextFilter(), RedactSecretsFilter()):
        f.filter(record)
    formatter = formatter or logging.Formatter("%(request_id)s %(actor)s %(message)s")
    return formatter.format(record)


def test_secrets_are_redacted_in_messages_and_arguments():
    line = _format("connecting with apiKey=%s and secret: %s", "AKIA123456", "s3cr3t-value")
    assert "AKIA123456" not in line and "s3cr3t-value" not in line
    assert line.count("[REDACTED]") == 2
    assert "abcdef0123456789" not in redact("Authorization: Token abcdef0123456789")
    assert "abcdef0123456789" not in redact("sent header Token abcdef0123456789")
    assert redact('{"password": "hunter22", "user": "bob"}') == '{"password": "[REDACTED]", "user": "bob"}'


def test_exception_text_is_redacted_too():
    try:
        raise RuntimeError("auth failed for api_key=topsecretkey")
    except RuntimeError:
        import sys

        line = _format("request failed", exc_info=sys.exc_info())
    assert "topsecretkey" not in line and "[REDACTED]" in line


def test_every_line_carries_request_id_and_actor():
    with context.acting(actor_label="alice", request_id="req-77"):
        line = _format("hello")
    assert line == "req-77 alice hello"
    assert _format("outside").startswith("- -")


def test_json_lines_in_production_format():
    with context.acting(actor_label="system:beat", request_id="req-9"):
        line = _format("tick", formatter=JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(actor)s"))
    payload = json.loads(line)
    assert payload["message"] == "tick" and payload["request_id"] == "req-9" and payload["actor"] == "system:beat"


async def test_access_line_is_json_with_our_request_id(caplog, settings):
    """Daphne's own access lines are plain text without the request id (it runs with -v 0); the
    app writes one per request through the JSON log instead."""
    settings.TRUST_X_FORWARDED_FOR, settings.PROXY_HOPS = True, 1
    caplog.set_level(logging.INFO, logger="tradepulse.access")
    communicator = HttpCommunicator(application, "GET", "/health/live",
                                    headers=[(b"host", b"127.0.0.1"), (b"x-forwarded-for", b"6.6.6.6, 198.51.100.4"),
                                             (b"x-request-id", b"client-chosen")])
    response = await communicator.get_response(timeout=30)
    await communicator.wait(timeout=10)  # the line is written when the application returns
    ours = dict(response["headers"])[b"X-Request-ID"].decode()
    [record] = [r for r in caplog.records if r.name == "tradepulse.access"]
    ContextFilter().filter(record)
    fmt = settings.LOGGING["formatters"]["json"]
    line = json.loads(JsonFormatter(fmt["format"], rename_fields=fmt["rename_fields"]).format(record))
    assert line["request_id"] == ours != "client-chosen"
    assert line["logger"] == "tradepulse.access" and line["level"] == "INFO"
    assert (line["method"], line["path"], line["status"], line["client"]) == ("GET", "/health/live", 200, "198.51.100.4")
    assert line["size"] == len(response["body"]) and line["duration_ms"] >= 0


def test_production_daphne_runs_without_its_text_access_log():
    from pathlib import Path

    from django.conf import settings as dj

    compose = Path(dj.BASE_DIR, "docker-compose.yml").read_text()
    serve = Path(dj.BASE_DIR, "apps/dashboard/management/commands/serve.py").read_text()
    assert '"daphne", "-v", "0"' in compose and '"daphne", "-v", "0"' in serve
