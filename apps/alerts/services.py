"""Alerts: the one `alert_raise` every app calls.

Interface (stable; other apps call it):

    alert_raise(severity="warning", source="trading", title="...", message="...",
                context={...}, target=obj, key="stale-data:deployment-7") -> Alert | None
    alert_resolve(source="trading", key="stale-data:deployment-7", reason="...")

`severity` is info | warning | error | critical; `key` groups identical alerts (a repeat bumps
count and last_seen instead of adding a row); `alert_resolve` closes an open alert whose cause
went away. Until the alert centre lands these only log, at the matching level.
"""
from __future__ import annotations

import logging

log = logging.getLogger("tradepulse.alerts")
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


def alert_raise(*, severity: str, source: str, title: str, message: str = "", context: dict | None = None,
                target=None, key: str = ""):
    log.log(LEVELS.get(severity, logging.WARNING), "%s: %s", title, message,
            extra={"alert_source": source, "alert_key": key})
    return None


def alert_resolve(*, source: str, key: str, reason: str = ""):
    return None
