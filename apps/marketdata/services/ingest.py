"""Storing candles: validate, upsert, keep coverage and quality issues in step — one path for
downloads and imports."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record

from .. import intervals, storage
from ..arrays import CandleArrays
from ..models import CandleCoverage, DataQualityIssue, IssueKind, Market
from ..timeframes import bars_between, check_timeframe, ms_to_iso, shift_bars
from ..validation import Finding, check_page

ISSUE_UPDATE_FIELDS = ["end_ms", "row_count", "detail", "sample", "rejected", "exchange_has_no_data", "source", "job",
                       "detected_at", "resolved_at"]


MAX_CHANGES_KEPT = 1000


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0  # new or revised candles written
    rejected: int = 0
    findings: list[Finding] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int | None = None
    existing: int = 0  # good rows whose bar was already stored
    changed: int = 0  # ...of which the values differ from the stored candle
    changes: list[dict] = field(default_factory=list)  # {time, before: [o,h,l,c,v], after: [...]}, first ones

    def add(self, other: IngestResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.rejected += other.rejected
        self.findings += other.findings
        self.existing += other.existing
        self.changed += other.changed
        self.changes += other.changes[:max(0, MAX_CHANGES_KEPT - len(self.changes))]
        if other.first_ms is not None:
            self.first_ms = other.first_ms if self.first_ms is None else min(self.first_ms, other.first_ms)
            self.last_ms = other.last_ms if self.last_ms is None else max(self.last_ms, other.last_ms)

    def counts(self) -> dict[str, int]:
        """Rows per finding kind (flagged kinds included)."""
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + f.row_count
        return out


def candles_ingest(*, market: Market, timeframe: str, rows: np.ndarray | CandleArrays, source: str = "download",
                   job=None, replace_existing: bool = True) -> IngestResult:
    """Validate rows and store the good ones, in one transaction per call.

    `rows`: CandleArrays or an (n, 6) float array of [time ms, open, high, low, close, volume]
    (NaN for missing values). Rows are checked against each other and against the stored
    candles around them (validation.check_page). Good rows whose bar is already stored:
    with `replace_existing` (downloads: the exchange revised it) a differing one is updated,
    an identical one left alone; without it (imports) the stored candle is kept. Either way the
    result counts them and lists the first differing ones (`changes`). Coverage is merged; each
    rejected or suspicious row becomes a DataQualityIssue (one per kind and bar time,
    re-detection updates it); issues whose bars are now stored are resolved.
    """
    check_timeframe(timeframe)
    if isinstance(rows, CandleArrays):
        cols = [rows.time, rows.open, rows.high, rows.low, rows.close, rows.volume]
    else:
        matrix = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        cols = [matrix[:, j] for j in range(6)]
    result = IngestResult(received=len(cols[0]))
    with transaction.atomic():
        storage.lock_series(market.pk, timeframe)
        stored = _stored_around(market.pk, timeframe, cols[0])
        check = check_page(*cols, timeframe, context=(stored.time, stored.close))
        good_idx = np.flatnonzero(check.good)
        good = CandleArrays(cols[0][good_idx].astype(np.int64), *(c[good_idx] for c in cols[1:]), timeframe=timeframe)
        result.rejected, result.findings = check.rejected, check.findings
        if len(stored) and len(good):
            good = _against_stored(good, stored, result, replace_existing)
        if len(good):
            result.first_ms, result.last_ms = int(good.time[0]), int(good.time[-1])
            covered = storage.coverage_intervals(market.pk, timeframe, result.first_ms, result.last_ms)
            result.stored = storage.upsert(market.pk, timeframe, good, covered=covered)
            storage.coverage_add(market.pk, timeframe, good.time)
            issues_resolve_covered(market=market, timeframe=timeframe, lo=result.first_ms, hi=result.last_ms + 1)
        if check.findings:
            issues_record(market=market, timeframe=timeframe, findings=check.findings, source=source, job=job)
    return result


def _stored_around(market_id: int, timeframe: str, times: np.ndarray) -> CandleArrays:
    """Stored candles from two bars before the page's first time to two after its last (none
    read when the coverage table says nothing is stored there)."""
    t = np.asarray(times, dtype=np.float64)
    t = t[np.isfinite(t)]
    if not len(t):
        return CandleArrays.empty(timeframe)
    lo, hi = shift_bars(int(t.min()), -2, timeframe), shift_bars(int(t.max()), 3, timeframe)
    if not storage.coverage_intervals(market_id, timeframe, lo, hi):
        return CandleArrays.empty(timeframe)
    return storage.read_rows(market_id, timeframe, lo, hi)


def _against_stored(good: CandleArrays, stored: CandleArrays, result: IngestResult, replace: bool) -> CandleArrays:
    """Count (and list) good rows whose bar is stored; without `replace`, drop them."""
    existing = np.isin(good.time, stored.time)
    if not existing.any():
        return good
    pos = np.searchsorted(stored.time, good.time[existing])
    new = np.vstack([getattr(good, c)[existing] for c in ("open", "high", "low", "close", "volume")])
    old = np.vstack([getattr(stored, c)[pos] for c in ("open", "high", "low", "close", "volume")])
    differs = (new != old).any(axis=0)
    result.existing += int(existing.sum())
    result.changed += int(differs.sum())
    times = good.time[existing]
    for k in np.flatnonzero(differs)[:MAX_CHANGES_KEPT]:
        result.changes.append({"time": int(times[k]), "before": old[:, k].tolist(), "after": new[:, k].tolist()})
    return good if replace else good.take(~existing)


def issues_record(*, market: Market, timeframe: str, findings: list[Finding], source: str, job=None,
                  exchange_has_no_data: bool = False) -> int:
    """Create or refresh one issue per (kind, bar time); returns how many were written."""
    now = timezone.now()
    merged: dict[tuple[str, int], DataQualityIssue] = {}
    for f in findings:
        key = (f.kind, f.start_ms)
        if key in merged:
            merged[key].row_count += f.row_count
            continue
        merged[key] = DataQualityIssue(
            market=market, timeframe=timeframe, kind=f.kind, start_ms=f.start_ms, end_ms=f.end_ms,
            row_count=f.row_count, detail=f.detail[:500], sample=f.sample, rejected=f.rejected,
            exchange_has_no_data=exchange_has_no_data, source=source, job=job, detected_at=now, resolved_at=None)
    DataQualityIssue.objects.bulk_create(list(merged.values()), update_conflicts=True,
                                         unique_fields=["market", "timeframe", "kind", "start_ms"],
                                         update_fields=ISSUE_UPDATE_FIELDS, batch_size=1000)
    return len(merged)


def gap_record(*, market: Market, timeframe: str, start_ms: int, end_ms: int, exchange_has_no_data: bool,
               detail: str, job=None, source: str = "download") -> None:
    """Record a missing interval [start_ms, end_ms) seen by a download."""
    issues_record(market=market, timeframe=timeframe, source=source, job=job, exchange_has_no_data=exchange_has_no_data,
                  findings=[Finding("gap", start_ms, end_ms, detail, row_count=bars_between(start_ms, end_ms, timeframe))])


def issues_resolve_covered(*, market: Market, timeframe: str, lo: int, hi: int) -> int:
    """Resolve rejected-row and gap issues in [lo, hi) whose bars are all stored now."""
    open_issues = list(DataQualityIssue.objects.filter(
        market=market, timeframe=timeframe, resolved_at__isnull=True, rejected=True,
        start_ms__lt=hi, end_ms__gt=lo).values_list("pk", "start_ms", "end_ms"))
    if not open_issues:
        return 0
    covered = storage.coverage_intervals(market.pk, timeframe, min(a for _, a, _ in open_issues),
                                         max(b for _, _, b in open_issues))
    done = [pk for pk, a, b in open_issues if not intervals.subtract([(a, b)], covered)]
    if done:
        DataQualityIssue.objects.filter(pk__in=done).update(resolved_at=timezone.now())
    return len(done)


@transaction.atomic
def issue_resolve(*, issue: DataQualityIssue, reason: str = "") -> DataQualityIssue:
    """Mark an issue resolved by hand (e.g. to let "fill gaps" try an exchange-has-no-data gap again)."""
    if issue.resolved_at is None:
        issue.resolved_at = timezone.now()
        issue.save(update_fields=["resolved_at"])
        audit_record("marketdata.issue.resolved", target=issue.market, reason=reason,
                     metadata={"issue": issue.pk, "kind": issue.kind, "timeframe": issue.timeframe,
                               "start": ms_to_iso(issue.start_ms), "end": ms_to_iso(issue.end_ms)})
    return issue


def coverage_rebuild(*, market: Market | None = None, timeframe: str | None = None) -> list[dict]:
    """Recompute coverage from the candles (the authority) for one or every series; returns
    what changed per series: [{market, timeframe, before, after}]."""
    series = storage.series_with_candles()
    stored = set(_series_in_coverage())
    wanted = sorted(set(series) | stored)
    if market is not None:
        wanted = [s for s in wanted if s[0] == market.pk]
    if timeframe is not None:
        wanted = [s for s in wanted if s[1] == timeframe]
    changes = []
    for market_id, tf in wanted:
        with transaction.atomic():
            storage.lock_series(market_id, tf)
            storage.blocks_drop(market_id, tf)  # the read cache is rebuilt from the candles on the next read
            before = storage.coverage_intervals(market_id, tf)
            after = storage.coverage_from_candles(market_id, tf)
            if before != after:
                storage.coverage_replace(market_id, tf, before, after)
                changes.append({"market": market_id, "timeframe": tf, "before": len(before), "after": len(after)})
    audit_record("marketdata.coverage.rebuilt", metadata={"series": len(wanted), "changed": changes[:50]})
    return changes


def _series_in_coverage() -> list[tuple[int, str]]:
    return list(CandleCoverage.objects.values_list("market_id", "timeframe").distinct())


__all__ = ["IngestResult", "candles_ingest", "issues_record", "gap_record", "issues_resolve_covered", "issue_resolve",
           "coverage_rebuild", "IssueKind"]
