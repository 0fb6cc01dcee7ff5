"""Log filters: every line carries the request id and actor; secrets never reach a log line.

Also the access log: one line per HTTP request and WebSocket connection, written through this
logging setup (JSON in production) with our request id, in place of daphne's plain-text lines
(daphne runs with `-v 0`, which turns its own access log off).
"""
from __future__ import annotations

import logging
import re
import threading
import time

from django.conf import settings

from tradepulse.core import context

# key=value, "key": "value" and Authorization headers whose key names a secret.
_SECRET_KEYS = (r"(?:api[_-]?key|apikey|secret|password|passphrase|token|signature|private[_-]?key|authorization"
                r"|x-mbx-apikey|listenkey)")
# The "Token <value>" pattern runs first: "Authorization: Token abc…" must lose the token, not
# just the word "Token".
_PATTERNS = [
    re.compile(r"(?i)(\b(?:Token|Bearer)\s+)([A-Za-z0-9._\-]{8,})"),
    re.compile(rf"(?i)(['\"]?{_SECRET_KEYS}['\"]?\s*[:=]\s*['\"]?)([^'\"\s,&}}]+)"),
]
REDACTED = "[REDACTED]"


# Secret values this process has decrypted (tradepulse.core.crypto): masked wherever they
# appear, even without a telling key name in front (a URL, an exchange's echo of a request).
_KNOWN_SECRETS: set[str] = set()
_KNOWN_LOCK = threading.Lock()
_MAX_KNOWN = 10_000
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words


def remember_secret(value: str | None) -> None:
    """Mask `value` in every later log line of this process."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _KNOWN_LOCK:
        if len(_KNOWN_SECRETS) >= _MAX_KNOWN:
            _KNOWN_SECRETS.clear()
        _KNOWN_SECRETS.add(value)


def redact_known(text: str) -> str:
    """Replace every remembered secret value in `text` by [REDACTED]."""
    if not _KNOWN_SECRETS:
        return text
    with _KNOWN_LOCK:
        known = sorted(_KNOWN_SECRETS, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact(text: str) -> str:
    """Mask remembered secrets and values that follow a secret-looking key (api_key=…,
    "secret": "…", Token …)."""
    text = redact_known(text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class ContextFilter(logging.Filter):
    """Adds request_id, client_request_id and actor from the current context, unless the call
    passed them itself (the access log, which runs outside any request's context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = context.current()
        for field, value in (("request_id", ctx.request_id), ("client_request_id", ctx.client_request_id),
                             ("actor", ctx.actor_label)):
            if not getattr(record, field, None):
                setattr(record, field, value or "-")
        return True


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception text is formatted later by the handler; redact it through exc_text.
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted)
        return True


access_log = logging.getLogger("tradepulse.access")


class AccessLogMiddleware:
    """ASGI middleware (outermost, tradepulse/asgi.py): logs each HTTP request when its response
    ends, and each WebSocket connection when it closes, with our request id (X-Request-ID of the
    response, set by apps.audit.middleware) and the proxy-aware client address."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        seen = {"status": None, "size": 0, "request_id": None, "close_code": None}

        async def send_and_note(message):
            kind = message["type"]
            if kind == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers") or ():
                    if name.lower() == b"x-request-id":
                        seen["request_id"] = value.decode("latin-1")
            elif kind == "http.response.body":
                seen["size"] += len(message.get("body", b""))
            elif kind == "websocket.accept":
                seen["status"] = 101
            elif kind == "websocket.close":
                seen["status"] = seen["status"] or 403  # closed before accepting: refused
                seen["close_code"] = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._log(scope, seen, time.perf_counter() - started)

    @staticmethod
    def _log(scope, seen, seconds):
        headers = dict(scope.get("headers") or ())
        remote = (scope.get("client") or (None,))[0]
        client = context.client_address(
            remote, headers.get(b"x-forwarded-for", b"").decode("latin-1"),
            proxy_hops=settings.PROXY_HOPS if settings.TRUST_X_FORWARDED_FOR else None) or remote or "-"
        method = scope.get("method", "WS")
        fields = {"client": client, "method": method, "path": scope.get("path", ""), "status": seen["status"],
                  "size": seen["size"], "duration_ms": round(seconds * 1000, 1),
                  "request_id": seen["request_id"] or "-"}
        if scope["type"] == "websocket":
            fields["close_code"] = seen["close_code"]
        access_log.info('%s "%s %s" %s %s %.1fms', client, method, fields["path"], seen["status"] or "-",
                        seen["size"], fields["duration_ms"], extra=fields)
