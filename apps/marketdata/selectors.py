"""Reads worth a name: candles as numpy arrays, coverage, gaps, missing intervals.

`candles_as_arrays` is the one read path for backtests, training and the trading engine. Times
are int epoch ms (UTC) of bar OPEN times; ranges are half-open [start_ms, end_ms).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from . import intervals, storage
from .arrays import CandleArrays
from .models import CandleCoverage, DataQualityIssue, IssueKind, Market, RetentionPolicy
from .timeframes import bars_between, check_timeframe, floor_time, ms_to_iso, now_ms

__all__ = [
    "CandleArrays", "Coverage", "Gap", "market_by_names", "candles_as_arrays", "latest_candles", "candle_count",
    "coverage_for_market", "coverage_list", "missing_intervals", "fillable_gaps", "no_data_intervals",
    "retention_cutoff_ms",
]


def _market_id(market: Market | int) -> int:
    return market.pk if isinstance(market, Market) else int(market)


def market_by_names(exchange: str, symbol: str) -> Market:
    """A stored market by exchange code or name and symbol (case-insensitive). LookupError names
    what is missing: commands turn it into their one-line error."""
    markets = Market.objects.select_related("exchange").filter(symbol__iexact=symbol)
    market = markets.filter(exchange__code__iexact=exchange).first() or markets.filter(
        exchange__name__iexact=exchange).first()
    if market is None:
        raise LookupError(f"No stored market {symbol} on {exchange}; download or import its candles first.")
    return market


def candles_as_arrays(market: Market | int, timeframe: str, start_ms: int | None = None,
                      end_ms: int | None = None) -> CandleArrays:
    """Stored candles of a market × timeframe with open time in [start_ms, end_ms) (None: open
    end), ordered by time, as numpy arrays (no model instances). Missing bars are simply absent:
    check `coverage_for_market` or `missing_intervals` when holes matter."""
    check_timeframe(timeframe)
    return storage.read_arrays(_market_id(market), timeframe, start_ms, end_ms)


def latest_candles(market: Market | int, timeframe: str, limit: int, end_ms: int | None = None) -> CandleArrays:
    """The last `limit` candles opening before `end_ms` (None: the newest), in time order."""
    check_timeframe(timeframe)
    return storage.read_arrays(_market_id(market), timeframe, None, end_ms, limit=limit, latest=True)


def candle_count(market: Market | int, timeframe: str, start_ms: int | None = None, end_ms: int | None = None) -> int:
    lo = -(2 ** 62) if start_ms is None else int(start_ms)
    hi = 2 ** 62 if end_ms is None else int(end_ms)
    return storage.count_range(_market_id(market), timeframe, lo, hi)


@dataclass
class Gap:
    start_ms: int
    end_ms: int
    candles: int
    exchange_has_no_data: bool = False  # a fill attempt found nothing there: not retried
    before_retention: bool = False  # older than the timeframe's retention: deleted on purpose

    @property
    def fillable(self) -> bool:
        return not (self.exchange_has_no_data or self.before_retention)


@dataclass
class Coverage:
    """Covered ranges of one market × timeframe and the gaps between them."""

    market_id: int
    timeframe: str
    ranges: list[tuple[int, int]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def first_ms(self) -> int | None:
        return self.ranges[0][0] if self.ranges else None

    @property
    def end_ms(self) -> int | None:
        return self.ranges[-1][1] if self.ranges else None

    @property
    def candles(self) -> int:
        return sum(bars_between(a, b, self.timeframe) for a, b in self.ranges)

    @property
    def missing_candles(self) -> int:
        return sum(g.candles for g in self.gaps)

    def describe(self) -> str:
        if not self.ranges:
            return "no candles"
        return (f"{self.candles:,} candles from {ms_to_iso(self.first_ms)} to {ms_to_iso(self.end_ms)}, "
                f"{len(self.gaps)} gap(s) ({self.missing_candles:,} candles missing)")


def no_data_intervals(market_id: int, timeframe: str) -> list[tuple[int, int]]:
    """Intervals the exchange had nothing for when asked (unresolved gap issues so marked)."""
    rows = DataQualityIssue.objects.filter(market_id=market_id, timeframe=timeframe, kind=IssueKind.GAP,
                                           exchange_has_no_data=True, resolved_at__isnull=True)
    return intervals.union(rows.values_list("start_ms", "end_ms"))


def retention_cutoff_ms(timeframe: str, now: int | None = None) -> int | None:
    """Bars opening before this are deleted by the timeframe's active retention policy (None: kept)."""
    policy = RetentionPolicy.objects.filter(timeframe=timeframe, active=True).first()
    if policy is None:
        return None
    now = now_ms() if now is None else now
    return floor_time(now - policy.keep_days * 86_400_000, timeframe)


def _gaps(ranges, no_data, cutoff, timeframe: str) -> list[Gap]:
    out = []
    for (_, a), (b, _) in zip(ranges, ranges[1:]):
        covered_by_no_data = intervals.subtract([(a, b)], no_data) == []
        out.append(Gap(a, b, bars_between(a, b, timeframe), exchange_has_no_data=covered_by_no_data,
                       before_retention=cutoff is not None and b <= cutoff))
    return out


def coverage_for_market(market: Market | int, timeframe: str) -> Coverage:
    """Covered ranges and gaps of one market × timeframe, from the maintained coverage table
    (two indexed queries, whatever the number of candles)."""
    check_timeframe(timeframe)
    mid = _market_id(market)
    ranges = storage.coverage_intervals(mid, timeframe)
    gaps = _gaps(ranges, no_data_intervals(mid, timeframe), retention_cutoff_ms(timeframe), timeframe)
    return Coverage(mid, timeframe, ranges, gaps)


def coverage_list(*, market_ids=None, timeframe: str | None = None, exchange_id: int | None = None) -> list[Coverage]:
    """Coverage of every market × timeframe that has candles (optionally narrowed)."""
    rows = CandleCoverage.objects.order_by("market_id", "timeframe", "start_ms")
    issues = DataQualityIssue.objects.filter(kind=IssueKind.GAP, exchange_has_no_data=True, resolved_at__isnull=True)
    q = Q()
    if market_ids is not None:
        q &= Q(market_id__in=list(market_ids))
    if timeframe:
        q &= Q(timeframe=timeframe)
    if exchange_id:
        q &= Q(market__exchange_id=exchange_id)
    grouped: dict[tuple[int, str], list] = {}
    for mid, tf, a, b in rows.filter(q).values_list("market_id", "timeframe", "start_ms", "end_ms"):
        grouped.setdefault((mid, tf), []).append((a, b))
    no_data: dict[tuple[int, str], list] = {}
    for mid, tf, a, b in issues.filter(q).values_list("market_id", "timeframe", "start_ms", "end_ms"):
        no_data.setdefault((mid, tf), []).append((a, b))
    now = now_ms()
    cutoffs = {tf: retention_cutoff_ms(tf, now) for tf in {tf for _, tf in grouped}}
    return [Coverage(mid, tf, ranges, _gaps(ranges, intervals.union(no_data.get((mid, tf), [])), cutoffs[tf],
                                               tf))
            for (mid, tf), ranges in grouped.items()]


def missing_intervals(market: Market | int, timeframe: str, start_ms: int, end_ms: int, *,
                      skip_no_data: bool = True) -> list[tuple[int, int]]:
    """Parts of [start_ms, end_ms) with no stored candles — what a download still has to fetch.
    With `skip_no_data`, intervals the exchange is known to have nothing for are left out."""
    check_timeframe(timeframe)
    mid = _market_id(market)
    covered = storage.coverage_intervals(mid, timeframe, start_ms, end_ms)
    if skip_no_data:
        covered = intervals.union(covered, no_data_intervals(mid, timeframe))
    return intervals.subtract([(start_ms, end_ms)], covered)


def fillable_gaps(market: Market | int, timeframe: str) -> list[Gap]:
    """Gaps between stored ranges that "fill gaps" should fetch: not known to be empty at the
    exchange and not older than the retention policy keeps."""
    return [g for g in coverage_for_market(market, timeframe).gaps if g.fillable]


def open_issue_count(market_id: int, timeframe: str) -> int:
    return DataQualityIssue.objects.filter(market_id=market_id, timeframe=timeframe, resolved_at__isnull=True).count()

