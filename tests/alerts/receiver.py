"""A local webhook receiver for alert tests (a tiny HTTP server on 127.0.0.1, never the internet)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """Records every POST; answers with the queued statuses first, then `default_status`."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.default_status = 200
        self.default_body = b'{"ok": true}'
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode(errors="replace")
                receiver.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                payload = receiver.default_body if status < 300 else b'{"error": "receiver is down"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.TRADEPULSE_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    settings.TRADEPULSE_TELEGRAM_API_URL = None  # set by tests that use Telegram
    r = Receiver()
    settings.TRADEPULSE_TELEGRAM_API_URL = r.base + "/telegram"
    yield r
    r.close()
