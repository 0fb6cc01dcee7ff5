"""Retention: delete candles older than their timeframe's policy keeps, except protected ranges."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record

from .. import intervals, storage
from ..models import CandleCoverage, DataQualityIssue, Market, RetentionPolicy
from ..retention import ProtectedRange, protected_ranges
from ..timeframes import floor_time, ms_to_iso, now_ms

FAR_PAST = -(2 ** 62)
FAR_FUTURE = 2 ** 62


@dataclass
class RetentionItem:
    market_id: int
    symbol: str
    exchange: str
    timeframe: str
    cutoff_ms: int
    ranges: list[tuple[int, int]]  # what goes (or would go)
    candles: int = 0
    kept: list[dict] = field(default_factory=list)  # protected ranges that were spared

    def as_dict(self) -> dict:
        return {"market": self.market_id, "symbol": self.symbol, "exchange": self.exchange, "timeframe": self.timeframe,
                "cutoff": ms_to_iso(self.cutoff_ms), "candles": self.candles,
                "ranges": [{"start": ms_to_iso(a), "end": ms_to_iso(b)} for a, b in self.ranges], "kept": self.kept}


@dataclass
class RetentionReport:
    dry_run: bool
    items: list[RetentionItem]

    @property
    def candles(self) -> int:
        return sum(i.candles for i in self.items)

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "candles": self.candles, "items": [i.as_dict() for i in self.items]}

    def describe(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        if not self.items:
            return f"Retention {verb} nothing: no candles are older than a policy keeps."
        parts = [f"{i.exchange} {i.symbol} {i.timeframe}: {i.candles:,} before {ms_to_iso(i.cutoff_ms)}"
                 + (f" (kept {len(i.kept)} protected range(s))" if i.kept else "") for i in self.items]
        return f"Retention {verb} {self.candles:,} candles — " + "; ".join(parts)


def _protected_for(guards: list[ProtectedRange], market_id: int, timeframe: str) -> list[ProtectedRange]:
    return [g for g in guards if g.market_id == market_id and g.timeframe in (None, timeframe)]


def retention_apply(*, dry_run: bool = True, now: int | None = None, policies=None) -> RetentionReport:
    """Apply every active retention policy (or `policies`): candles of the policy's timeframe
    opening before now − keep_days are deleted, except ranges a registered guard protects.
    `dry_run` only counts. A failing guard stops the run before anything is deleted."""
    now = now_ms() if now is None else now
    guards = protected_ranges()
    policies = list(policies if policies is not None else RetentionPolicy.objects.filter(active=True))
    items: list[RetentionItem] = []
    for policy in policies:
        tf = policy.timeframe
        cutoff = floor_time(now - policy.keep_days * 86_400_000, tf)
        market_ids = (CandleCoverage.objects.filter(timeframe=tf, start_ms__lt=cutoff)
                      .values_list("market_id", flat=True).distinct())
        markets = Market.objects.filter(pk__in=list(market_ids)).select_related("exchange").order_by("pk")
        for market in markets:
            protect = _protected_for(guards, market.pk, tf)
            spared = [(FAR_PAST if p.start_ms is None else p.start_ms, FAR_FUTURE if p.end_ms is None else p.end_ms)
                      for p in protect]
            with transaction.atomic():
                storage.lock_series(market.pk, tf)
                old = intervals.intersect(storage.coverage_intervals(market.pk, tf, None, cutoff), (FAR_PAST, cutoff))
                doomed = intervals.subtract(old, spared)
                if not doomed:
                    continue
                item = RetentionItem(market.pk, market.symbol, market.exchange.code, tf, cutoff, doomed,
                                     kept=[{"start": ms_to_iso(p.start_ms), "end": ms_to_iso(p.end_ms), "reason": p.reason}
                                           for p in protect if intervals.intersect(
                                               [(FAR_PAST if p.start_ms is None else p.start_ms,
                                                 FAR_FUTURE if p.end_ms is None else p.end_ms)], (FAR_PAST, cutoff))])
                if dry_run:
                    item.candles = sum(storage.count_range(market.pk, tf, a, b) for a, b in doomed)
                else:
                    item.candles = sum(storage.delete_range(market.pk, tf, a, b) for a, b in doomed)
                    storage.coverage_remove(market.pk, tf, doomed)
                    for a, b in doomed:
                        DataQualityIssue.objects.filter(market=market, timeframe=tf, resolved_at__isnull=True,
                                                        start_ms__gte=a, end_ms__lte=b).update(resolved_at=timezone.now())
                items.append(item)
    report = RetentionReport(dry_run, items)
    if not dry_run:
        audit_record("marketdata.retention.applied", reason=report.describe()[:1000], metadata=report.as_dict())
    return report
