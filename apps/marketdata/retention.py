"""Retention guards: other apps say which candles must not be deleted.

An app that needs candles kept (an active deployment's warm-up window, a running backtest's
range) registers a guard in its AppConfig.ready()::

    from apps.marketdata.retention import ProtectedRange, register_retention_guard

    @register_retention_guard
    def deployments_need_candles():
        for d in Deployment.objects.filter(active=True):
            yield ProtectedRange(d.market_id, d.timeframe, d.warmup_start_ms, None, f"deployment #{d.pk}")

Retention asks every guard before deleting anything; a guard that fails stops the run (when
unsure, keep the data).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

log = logging.getLogger(__name__)


class ProtectedRange(NamedTuple):
    market_id: int
    timeframe: str | None  # None: every timeframe of the market
    start_ms: int | None  # None: from the beginning
    end_ms: int | None  # None: open-ended (exclusive end otherwise)
    reason: str = ""


class RetentionGuardError(RuntimeError):
    """A guard failed; nothing was deleted."""


Guard = Callable[[], Iterable[ProtectedRange]]
_guards: list[Guard] = []


def register_retention_guard(guard: Guard) -> Guard:
    """Add a guard (usable as a decorator); registering the same callable twice is a no-op."""
    if guard not in _guards:
        _guards.append(guard)
    return guard


def unregister_retention_guard(guard: Guard) -> None:
    if guard in _guards:
        _guards.remove(guard)


def protected_ranges() -> list[ProtectedRange]:
    """Every range some guard protects now."""
    out: list[ProtectedRange] = []
    for guard in list(_guards):
        try:
            out.extend(ProtectedRange(*r) for r in guard())
        except Exception as exc:
            name = getattr(guard, "__qualname__", repr(guard))
            log.exception("retention guard %s failed", name)
            raise RetentionGuardError(f"Retention guard {name} failed ({type(exc).__name__}: {exc}); "
                                      "nothing was deleted.") from exc
    return out
