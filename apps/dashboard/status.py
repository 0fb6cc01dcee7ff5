"""The system health page's one read: everything an operator needs to see the platform's state.

Built from stored facts (the last scheduled checks, rows, the shared request counters), never
by running the slow checks again: the page gets the live /health/ready itself, and this
snapshot again every 30 s as `system.status` (apps/dashboard/tasks.py).
"""
from __future__ import annotations

from django.db.models import Max
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.marketdata.models import CandleCoverage
from apps.marketdata.timeframes import floor_time, ms_to_iso, now_ms, shift_bars
from apps.trading.models import Deployment, DeploymentState, ExchangeAccount

from . import health, metrics
from .models import HealthSample, RequestError

HISTORY_SAMPLES = 60  # 30 minutes at one check every 30 s


def component_history(limit: int = HISTORY_SAMPLES) -> dict:
    """Per component: its last `limit` statuses (oldest first) and the share ok over 24 h."""
    samples = list(HealthSample.objects.order_by("-checked_at")[:limit])[::-1]
    names = list(dict.fromkeys(n for s in samples for n in s.components))
    day = HealthSample.objects.filter(checked_at__gte=timezone.now() - health.KEEP_SAMPLES).values_list(
        "components", flat=True)
    totals = {n: [0, 0] for n in names}
    for components in day:
        for name, c in components.items():
            if name in totals:
                totals[name][0] += c.get("status") == "ok"
                totals[name][1] += 1
    return {name: {"samples": [{"t": s.checked_at.isoformat(), "status": s.components.get(name, {}).get("status"),
                                "latency_ms": s.components.get(name, {}).get("latency_ms")} for s in samples],
                   "uptime_24h": round(totals[name][0] / totals[name][1], 4) if totals[name][1] else None}
            for name in names}


def beat_status() -> dict:
    last = health.last_sample()
    beat_sent = PeriodicTask.objects.filter(enabled=True).aggregate(t=Max("last_run_at"))["t"]
    age = (timezone.now() - last.checked_at).total_seconds() if last else None
    return {"last_check": last.checked_at.isoformat() if last else None, "age_s": round(age, 1) if age else age,
            "stale": age is None or age > health.SCHEDULER_STALE_AFTER_S,
            "beat_last_sent": beat_sent.isoformat() if beat_sent else None}


def exchange_accounts() -> list[dict]:
    return [{"id": a.pk, "name": a.name, "owner": a.owner.get_username(), "exchange": a.exchange.name,
             "mode": a.mode, "health": a.health, "last_checked_at": a.last_checked_at, "last_error": a.last_error[:300]}
            for a in ExchangeAccount.objects.select_related("owner", "exchange").order_by("name")]


def data_freshness() -> list[dict]:
    """Per active deployment: the newest stored bar of its market and timeframe, and how late it is
    (stale when a bar that closed more than a bar ago is missing, as the engine judges it)."""
    out = []
    now = now_ms()
    for d in (Deployment.objects.filter(state=DeploymentState.ACTIVE)
              .select_related("config__market__exchange", "owner").order_by("name")):
        market, timeframe = d.config.market, d.config.timeframe
        last_open = floor_time(now, timeframe)  # the bar still forming (months too)
        end = CandleCoverage.objects.filter(market=market, timeframe=timeframe).aggregate(e=Max("end_ms"))["e"]
        late_ms = last_open - end if end is not None else None
        out.append({"deployment": d.pk, "name": str(d), "owner": d.owner.get_username(),
                    "market": f"{market.symbol} @ {market.exchange.name}", "timeframe": timeframe,
                    "last_bar_close": ms_to_iso(end) if end is not None else None,
                    "late_s": round(late_ms / 1000) if late_ms is not None else None,
                    "stale": end is None or end < shift_bars(last_open, -1, timeframe),
                    "engine_flag": d.data_stale_reason if d.data_stale else "",
                    "last_tick_at": d.last_tick_at})
    return out


def recent_errors(limit: int = 20) -> list[dict]:
    return list(RequestError.objects.values("occurred_at", "request_id", "method", "path", "status", "error",
                                            "user")[:limit])


def system_status() -> dict:
    last = health.last_sample()
    workers = (last.components.get("workers") or {}) if last else {}
    return {
        "generated_at": timezone.now(),
        "last_sample": {"checked_at": last.checked_at, "ok": last.ok, "components": last.components} if last else None,
        "history": component_history(),
        "beat": beat_status(),
        "workers": workers.get("workers", []),
        "queues": {q: {"depth": depth, "workers": (workers.get("queues") or {}).get(q)}
                   for q, depth in health.queue_depths().items()},
        "exchange_accounts": exchange_accounts(),
        "data_freshness": data_freshness(),
        "requests": metrics.request_stats(),
        "recent_errors": recent_errors(),
        "platform": health.platform_figures(),
    }
