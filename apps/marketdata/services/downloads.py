"""Download jobs: start, run (page by page, resumable), cancel, retry, fill gaps.

Resume: a run fetches only what is missing in its range — the range minus the stored coverage
minus intervals the exchange is known to have nothing for — so a job killed at any moment and
run again continues from its last stored candle; the upsert is idempotent, so a page stored
twice changes nothing.

Overlap: one job at a time downloads a given market × timeframe. A job takes the series'
DownloadLease (a row locked with SELECT … FOR UPDATE for the instant of the take-over; held by
the job id, given up at the end, taken over from a job that is no longer running or whose
heartbeat went stale). A second job waits, saying so on its progress bar, then plans from the
coverage the first one left: it fetches only what is still missing, so nothing is fetched or
stored twice.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tradepulse.core.permissions import grant_owner
from apps.accounts import quotas
from apps.accounts.models import QuotaKey
from apps.audit.services import audit_record
from tradepulse.core import events, jobrunner
from tradepulse.core.jobs import FINAL_STATES, JobCancelled, JobState, Progress

from .. import exchanges, intervals, selectors, storage
from ..models import DownloadJob, DownloadKind, DownloadLease, Market
from ..serializers import DownloadJobSerializer
from ..timeframes import (bars_between, ceil_time, check_timeframe, floor_time, ms_to_iso, nominal_ms, now_ms,
                          shift_bars)
from .ingest import candles_ingest, gap_record, issues_resolve_covered

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000  # candles per fetch_ohlcv call (Binance's maximum)
LEASE_POLL_S = 0.5  # how often a waiting job looks at the lease again
MAX_FILL_JOBS = 50  # gaps filled per "fill gaps" request
TASK_NAME = "marketdata.download"
# The stated floor of any download's start: 2009-01-03 00:00 UTC, Bitcoin's first block. No
# crypto exchange has a candle before it, so an earlier start is a mistake, not a request.
EARLIEST_START_MS = 1_230_940_800_000


# --- events --------------------------------------------------------------------------------------

def _publish(job: DownloadJob, event: str = "progress") -> None:
    events.publish_for(job, f"marketdata.download.{event}", DownloadJobSerializer(job).data)


def _enqueue(job_id: int) -> None:
    jobrunner.enqueue(JOB, job_id)


# --- start / cancel / retry ------------------------------------------------------------------------

def download_start(*, owner, market: Market, timeframe: str, start_ms: int, end_ms: int,
                   kind: str = DownloadKind.DOWNLOAD, enqueue: bool = True) -> DownloadJob:
    """Create a download job for market × timeframe × [start_ms, end_ms) and queue it after commit.

    The range is widened to whole bars and its end capped at the last closed bar. Raises
    ValidationError naming the problem (end before start, unknown timeframe, a start before
    EARLIEST_START_MS, an end more than a bar past now, a range entirely in the future, a
    file-source market) or the quota it would exceed (candles in one download, downloads
    queued or running at once; apps/accounts/quotas.py).
    """
    if market.exchange.is_file_source:
        raise ValidationError({"market": f"{market.symbol} on {market.exchange.name} comes from imported files; "
                                         "there is no exchange to download it from."})
    try:
        check_timeframe(timeframe)
    except ValueError as exc:
        raise ValidationError({"timeframe": str(exc)}) from None
    if start_ms >= end_ms:
        raise ValidationError({"end": f"The end ({ms_to_iso(end_ms)}) must be after the start ({ms_to_iso(start_ms)})."})
    if start_ms < EARLIEST_START_MS:
        raise ValidationError({"start": f"The start ({ms_to_iso(start_ms)}) is before {ms_to_iso(EARLIEST_START_MS)}, "
                                        "Bitcoin's first block: no exchange has candles that old."})
    now = now_ms()
    if end_ms > shift_bars(now, 1, timeframe):  # up to the close of the bar forming now (months too)
        raise ValidationError({"end": f"The end ({ms_to_iso(end_ms)}) is in the future; the exchange has candles up to "
                                      f"now ({ms_to_iso(now)}) at most."})
    start = floor_time(start_ms, timeframe)
    last_closed = floor_time(now, timeframe)
    end = min(ceil_time(end_ms, timeframe), last_closed)
    if end <= start:
        raise ValidationError({"start": f"The start ({ms_to_iso(start_ms)}) is in the future: no closed {timeframe} "
                                        "bars there yet."})
    total = bars_between(start, end, timeframe)
    quotas.quota_check(user=owner, key=QuotaKey.DOWNLOAD_CANDLES, requested=total)
    with transaction.atomic():
        quotas.quota_check_concurrent(user=owner, key=QuotaKey.DOWNLOADS_CONCURRENT)
        job = DownloadJob(owner=owner, market=market, timeframe=timeframe, start_ms=start, end_ms=end, kind=kind,
                          total_candles=total, message="Queued")
        job.full_clean()
        job.save()
        grant_owner(job)
        audit_record("marketdata.download.created", target=job,
                     metadata={"market": market.symbol, "exchange": market.exchange.code, "timeframe": timeframe,
                               "start": ms_to_iso(start), "end": ms_to_iso(end), "kind": kind})
        _publish(job)
        if enqueue:
            transaction.on_commit(lambda: _enqueue(job.pk))
    return job


@transaction.atomic
def download_cancel(*, job: DownloadJob, reason: str = "") -> DownloadJob:
    """Cancel a job: a queued one at once, a running one between two pages."""
    job = DownloadJob.objects.select_for_update().select_related("market__exchange", "owner").get(pk=job.pk)
    if job.state in FINAL_STATES:
        raise ValidationError(f"Download #{job.pk} already {job.state}; nothing to cancel.")
    DownloadJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.cancel_requested = True
    if job.state == JobState.QUEUED:
        job.finish(JobState.CANCELLED, message="Cancelled before it started")
        _publish(job, "cancelled")
    else:
        job.message = "Cancelling after the current page…"
        job.save(update_fields=["message", "updated_at"])
        _publish(job)
    audit_record("marketdata.download.cancel_requested", target=job, reason=reason)
    return job


@transaction.atomic
def download_retry(*, job: DownloadJob, reason: str = "") -> DownloadJob:
    """Queue a failed or cancelled job again (or one whose worker died): it resumes from what is
    stored, keeping its counters."""
    job = DownloadJob.objects.select_for_update().select_related("market__exchange", "owner").get(pk=job.pk)
    if job.state not in (JobState.FAILED, JobState.CANCELLED) and not job.is_lost:
        raise ValidationError(f"Download #{job.pk} is {job.state}; only failed or cancelled downloads can be retried.")
    job.state, job.cancel_requested, job.error, job.error_code = JobState.QUEUED, False, "", ""
    job.finished_at, job.eta_seconds, job.candles_per_second = None, None, 0.0
    job.message, job.worker = "Queued again", ""
    job.save(update_fields=["state", "cancel_requested", "error", "error_code", "finished_at", "eta_seconds",
                            "candles_per_second", "message", "worker", "updated_at"])
    audit_record("marketdata.download.retried", target=job, reason=reason)
    _publish(job)
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def gaps_fill(*, owner, market: Market, timeframe: str) -> list[DownloadJob]:
    """Start one "fill" job per fillable gap of market × timeframe (gaps the exchange is known to
    have no data for, and gaps older than retention keeps, are skipped); gaps an active job
    already covers are not started twice. No more are started than the owner's limit of
    downloads at once leaves room for (the rest can be filled once those finish); with no room
    at all the request is refused, naming the limit."""
    gaps = selectors.fillable_gaps(market, timeframe)
    room = quotas.concurrent_room(owner, QuotaKey.DOWNLOADS_CONCURRENT)
    active = list(DownloadJob.objects.filter(market=market, timeframe=timeframe, state__in=(JobState.QUEUED,
                                                                                            JobState.RUNNING))
                  .values_list("start_ms", "end_ms"))
    jobs = []
    for gap in gaps:
        if not intervals.subtract([(gap.start_ms, gap.end_ms)], active):
            continue
        if len(jobs) >= MAX_FILL_JOBS or (room is not None and len(jobs) >= room and jobs):
            break
        jobs.append(download_start(owner=owner, market=market, timeframe=timeframe, start_ms=gap.start_ms,
                                   end_ms=gap.end_ms, kind=DownloadKind.FILL))
    audit_record("marketdata.gaps.fill_requested", target=market,
                 metadata={"timeframe": timeframe, "gaps": len(gaps), "jobs": [j.pk for j in jobs]})
    return jobs


# --- run -------------------------------------------------------------------------------------------

class _Stats:
    """Counters of one run, for progress fields (rows, speed, ETA)."""

    def __init__(self, job: DownloadJob, progress_total: int):
        self.job, self.total = job, progress_total
        self.started = time.monotonic()
        self.fetched = 0  # this run
        self.bars_done = 0  # bars advanced this run (fetched or known empty)
        self.base = (job.rows_fetched, job.rows_stored, job.rows_rejected)
        self.stored = self.rejected = 0
        self.progress: Progress | None = None

    def fields(self) -> dict:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        bar_rate = self.bars_done / elapsed
        remaining = self.total - (self.progress.done if self.progress else 0)
        return {
            "rows_fetched": self.base[0] + self.fetched,
            "rows_stored": self.base[1] + self.stored,
            "rows_rejected": self.base[2] + self.rejected,
            "candles_per_second": round(self.fetched / elapsed, 1),
            "eta_seconds": round(remaining / bar_rate, 1) if bar_rate > 0 else None,
        }


def download_run(*, job_id: int, on_progress: Callable[[DownloadJob], None] | None = None) -> DownloadJob:
    """Run a queued download job to its end (the task and `download_candles` call this).

    The job runner claims the job (a second delivery of the same task does nothing); the work
    takes the series lease, pages through fetch_ohlcv over what is missing, stores each page,
    reports progress at most a few times a second; the job finishes as succeeded, failed (with
    the reason in `error`) or cancelled. Never raises for exchange problems: they end up in the
    job. `on_progress(job)` is called on every published change (the command's progress bar).
    """
    job = jobrunner.run_job(JOB.name, job_id, on_progress=on_progress)
    if job is None:
        job = DownloadJob.objects.select_related("market__exchange", "owner").get(pk=job_id)
        log.info("download #%s not claimed (state %s)", job.pk, job.state)
    return job


def _work(run: jobrunner.JobRun) -> jobrunner.Done:
    job: DownloadJob = run.job
    box: dict = {}

    def final_fields() -> dict:  # a failed or cancelled run keeps the counters it reached
        stats = box.get("stats")
        fields = {k: v for k, v in stats.fields().items() if k != "eta_seconds"} if stats else {}
        return {**fields, "eta_seconds": None}

    run.final_fields = final_fields
    try:
        summary = _run(job, run, box)
    finally:
        DownloadLease.objects.filter(market_id=job.market_id, timeframe=job.timeframe, holder=job).update(holder=None)
    return jobrunner.Done(message=summary, fields={"eta_seconds": 0.0})


def _counters(job: DownloadJob) -> dict:
    return {"rows_fetched": job.rows_fetched, "rows_stored": job.rows_stored, "rows_rejected": job.rows_rejected}


def _check_cancel(job: DownloadJob) -> None:
    if DownloadJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
        raise JobCancelled(f"download {job.pk} was cancelled")


def _take_lease(job: DownloadJob) -> None:
    """Wait until this job holds the market × timeframe lease (see module docstring)."""
    DownloadLease.objects.get_or_create(market_id=job.market_id, timeframe=job.timeframe)
    told = None
    while True:
        with transaction.atomic():
            lease = DownloadLease.objects.select_for_update().get(market_id=job.market_id, timeframe=job.timeframe)
            holder = DownloadJob.objects.filter(pk=lease.holder_id).only("state", "heartbeat_at", "started_at").first()
            if holder is None or holder.pk == job.pk or holder.state != JobState.RUNNING or holder.is_lost:
                lease.holder, lease.acquired_at = job, timezone.now()
                lease.save(update_fields=["holder", "acquired_at"])
                return
        if told != holder.pk:
            told = holder.pk
            DownloadJob.objects.filter(pk=job.pk).update(
                message=f"Waiting for download #{holder.pk} of the same market and timeframe to finish",
                heartbeat_at=timezone.now())
            job.refresh_from_db(fields=["message", "heartbeat_at"])
            _publish(job)
        else:
            DownloadJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
        _check_cancel(job)
        time.sleep(LEASE_POLL_S)


def _run(job: DownloadJob, run: jobrunner.JobRun, box: dict) -> str:
    market, tf = job.market, job.timeframe
    check_timeframe(tf)
    _take_lease(job)
    missing = selectors.missing_intervals(market, tf, job.start_ms, job.end_ms)
    total = job.total_candles or bars_between(job.start_ms, job.end_ms, tf)
    stats = box["stats"] = _Stats(job, total)
    progress = run.progress(total, extra=stats.fields)
    stats.progress = progress
    already = total - sum(bars_between(a, b, tf) for a, b in missing)  # a resumed job's bar continues where it was
    if not missing:
        progress.set(already, message="Everything in the range is already stored", force=True)
        return "Already stored: nothing to download"
    progress.set(already, message=f"Connecting to {market.exchange.name}", force=True)

    def on_retry(attempt, delay, exc):
        progress.emit(message=f"{market.exchange.name}: {type(exc).__name__}; retry {attempt} in {delay:.1f} s",
                      force=True)

    client = exchanges.build_client(market.exchange.code)
    exchanges.call(client, "load_markets", on_retry=on_retry)
    exchanges.check_symbol_and_timeframe(client, market.symbol, tf)
    no_data_bars = 0
    for a, b in missing:
        rejected_times: list[int] = []
        since = a
        while since < b:
            _check_cancel(job)  # between pages, whatever the progress throttle did
            limit = min(PAGE_LIMIT, bars_between(since, b, tf))
            rows = exchanges.call(client, "fetch_ohlcv", market.symbol, tf, since=since, limit=limit,
                                  on_retry=on_retry, symbol=market.symbol, timeframe=tf)
            if not rows:
                break
            matrix = np.array([r[:6] for r in rows], dtype=np.float64)
            t = matrix[:, 0]
            in_range = (t >= since) & (t < b)
            page = matrix[in_range]  # bars past the interval belong to the next one (or are stored already)
            stats.fetched += len(page)
            if len(page):
                result = candles_ingest(market=market, timeframe=tf, rows=page, job=job)
                stats.stored += result.stored
                stats.rejected += result.rejected
                rejected_times += [f.start_ms for f in result.findings if f.rejected]
            finite = t[np.isfinite(t)]
            next_since = (ceil_time(int(finite.max()) + 1, tf) if len(finite)
                          else ceil_time(since + nominal_ms(tf) * len(rows), tf))
            if next_since <= since:  # the exchange keeps answering with older bars: stop, don't loop
                break
            advanced = bars_between(since, min(next_since, b), tf)
            stats.bars_done += advanced
            progress.advance(advanced, message=f"{market.symbol} {tf}: {ms_to_iso(min(next_since, b))}")
            since = next_since
        if since < b:  # the exchange had nothing more in this interval
            stats.bars_done += bars_between(since, b, tf)
            progress.advance(bars_between(since, b, tf))
        no_data_bars += _record_holes(job, a, b, rejected_times)
    issues_resolve_covered(market=market, timeframe=tf, lo=job.start_ms, hi=job.end_ms)
    progress.emit(force=True, message="Finishing")
    fields = stats.fields()
    for k, v in fields.items():
        setattr(job, k, v)
    job.save(update_fields=[*fields, "updated_at"])
    summary = (f"{fields['rows_stored']:,} candles stored, {fields['rows_rejected']:,} rejected "
               f"({fields['rows_fetched']:,} fetched)")
    if no_data_bars:
        summary += f"; the exchange has no data for {no_data_bars:,} bars of the range"
    return summary


def _record_holes(job: DownloadJob, a: int, b: int, rejected_times: list[int]) -> int:
    """Gaps left in [a, b) after fetching it. With no rejected row inside, the exchange sent
    nothing there: it has no data (not retried by "fill gaps"). Holes of rejected rows stay
    fillable once; after a fill attempt they are marked too, so nothing is retried forever.
    Returns the number of bars the exchange has no data for."""
    covered = storage.coverage_intervals(job.market_id, job.timeframe, a, b)
    holes = intervals.subtract([(a, b)], covered)
    rejected = np.array(sorted(rejected_times), dtype=np.int64)
    no_data_bars = 0
    for lo, hi in holes:
        bad_inside = bool(len(rejected) and intervals.contains([(lo, hi)], rejected).any())
        no_data = (not bad_inside) or job.kind == DownloadKind.FILL
        why = ("the exchange returned no candles" if not bad_inside else "the exchange returned only invalid rows")
        bars = bars_between(lo, hi, job.timeframe)
        gap_record(market=job.market, timeframe=job.timeframe, start_ms=lo, end_ms=hi,
                   exchange_has_no_data=no_data, job=job,
                   detail=f"{bars:,} bars missing from {ms_to_iso(lo)} to {ms_to_iso(hi)}: {why}")
        no_data_bars += bars if no_data else 0
    return no_data_bars


JOB = jobrunner.register(jobrunner.JobType(
    name="marketdata.download", model=DownloadJob, work=_work, task=TASK_NAME, audit=audit_record,
    serialize=lambda job: DownloadJobSerializer(job).data, select_related=("market__exchange", "owner"),
    errors={exchanges.MarketDataError: ("exchange", lambda exc: exc.message),
            ValidationError: ("invalid", lambda exc: "; ".join(exc.messages))},
    # A dead worker's download continues from the last stored candle: nothing is fetched or stored twice.
    requeue_when_lost=True,
    audit_metadata=lambda job: _counters(job),
    cancelled_message=lambda job: f"Cancelled after {job.rows_stored:,} candles stored",
))
