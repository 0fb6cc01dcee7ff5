"""Log filters: every line carries the request id and actor; secrets never reach a log line."""
from __future__ import annotations

import logging
import re

from tradepulse.core import context

# key=value, "key": "value" and Authorization headers whose key names a secret.
_SECRET_KEYS = r"(?:api[_-]?key|apikey|secret|password|passphrase|token|signature|private[_-]?key|authorization)"
# The "Token <value>" pattern runs first: "Authorization: Token abc…" must lose the token, not
# just the word "Token".
_PATTERNS = [
    re.compile(r"(?i)(\b(?:Token|Bearer)\s+)([A-Za-z0-9._\-]{8,})"),
    re.compile(rf"(?i)(['\"]?{_SECRET_KEYS}['\"]?\s*[:=]\s*['\"]?)([^'\"\s,&}}]+)"),
]
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """Mask values that follow a secret-looking key (api_key=…, "secret": "…", Token …)."""
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
