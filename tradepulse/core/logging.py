"""Log filters: every line carries the request id and actor; secrets never reach a log line."""
from __future__ import annotations

import logging
import re
import threading

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
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = context.current()
        record.request_id = ctx.request_id or "-"
        record.actor = ctx.actor_label or "-"
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
