"""Formatting for the trading pages: money and amounts as stored (Decimal, no float rounding
surprises), fractions as percentages, epoch-ms bar times as dates. Empty stays empty ("—"):
a figure that was never measured is not shown as 0."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from django import template
from django.utils import timezone

register = template.Library()
DASH = "—"


def _dec(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def money(value, places: int = 2) -> str:
    """1234.5 -> '1,234.50' (quote currency, to `places` decimals)."""
    d = _dec(value)
    if d is None:
        return DASH
    q = d.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_EVEN)
    return f"{q.copy_abs() if q.is_zero() else q:,.{int(places)}f}"  # never "-0.00"


@register.filter
def signed_money(value, places: int = 2) -> str:
    d = _dec(value)
    if d is None:
        return DASH
    shown = money(d, places)
    return ("+" if d > 0 and shown.strip("0.,") else "") + shown


@register.filter
def amount(value) -> str:
    """An amount or price exactly as stored, without trailing zeros: 0.012340000000 -> '0.01234'."""
    d = _dec(value)
    if d is None:
        return DASH
    return "0" if d == 0 else format(d.normalize(), ",f")


@register.filter
def pct(value, places: int = 2) -> str:
    """A fraction as a percentage: 0.0231 -> '2.31 %'."""
    d = _dec(value)
    if d is None:
        return DASH
    return money(d * 100, places) + " %"


@register.filter
def pnl_class(value) -> str:
    """gain / loss colour, for what is shown: a value that rounds to 0.00 is neither."""
    d = _dec(value)
    if d is None or d.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN).is_zero():
        return ""
    return "gain" if d > 0 else "loss"


@register.filter
def ms_time(value):
    """Epoch ms (UTC) -> an aware datetime in the current (user's) zone, for the |date filter."""
    if value in (None, ""):
        return None
    return timezone.localtime(datetime.fromtimestamp(int(value) / 1000, tz=UTC))


@register.filter
def verdict_class(verdict) -> str:
    outcome = (verdict or {}).get("outcome") or ("approved" if (verdict or {}).get("approved") else "")
    return {"approved": "good", "resized": "warn", "rejected": "bad"}.get(outcome, "")


@register.filter
def verdict_label(verdict) -> str:
    """The pre-trade check's outcome as stored: approved / resized / rejected, or 'not recorded'."""
    verdict = verdict or {}
    return verdict.get("outcome") or ({True: "approved", False: "rejected"}.get(verdict.get("approved"))) \
        or "not recorded"


@register.filter
def state_class(state) -> str:
    return {"active": "good", "paused": "warn", "stopped": "", "filled": "good", "open": "info",
            "partially_filled": "info", "submitted": "info", "pending": "info", "rejected": "bad", "failed": "bad",
            "canceled": "", "expired": "", "ok": "good", "warning": "warn", "auth_failed": "bad", "error": "bad",
            "unknown": ""}.get(str(state), "")


@register.filter
def items_sorted(value) -> list:
    return sorted((value or {}).items())


@register.filter
def params(value) -> str:
    """{"fast": 10, "slow": 30} -> 'fast=10, slow=30'."""
    return ", ".join(f"{k}={v}" for k, v in sorted((value or {}).items()))


@register.filter
def price(value, digits: int = 8) -> str:
    """A price to `digits` significant digits (fills and averages carry more than anyone reads):
    112.384262786672 -> '112.38426', 0.0000123456789 -> '0.000012345679'."""
    d = _dec(value)
    if d is None:
        return DASH
    if d == 0:
        return "0"
    exponent = d.adjusted() - (int(digits) - 1)
    return format(d.quantize(Decimal(1).scaleb(min(exponent, 0)), rounding=ROUND_HALF_EVEN).normalize(), ",f")


def _shown(key: str, value) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and key.endswith("_time") and value > 10**11:
        return timezone.localtime(datetime.fromtimestamp(value / 1000, tz=UTC)).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return price(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_shown(k, v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_shown(key, v) for v in value)
    return str(value)


@register.filter
def decision_rows(decision) -> list[tuple[str, str]]:
    """An order's decision inputs as (name, readable value) rows: times as dates, floats to 8
    significant digits, nested values flattened, None as a dash."""
    return [(k.replace("_", " "), _shown(k, v)) for k, v in sorted((decision or {}).items())]
