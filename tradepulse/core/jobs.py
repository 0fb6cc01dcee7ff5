"""Long work is a Job row: state, progress, message, error — created before it is enqueued.

`Job` is the abstract base for DownloadJob, BacktestRun, TrainingRun and the like. `claim()`
takes the work with a conditional UPDATE so two workers never run the same job; `Progress`
is the one helper that reports progress (throttled, only on change), checks cancellation, and
writes outside any long transaction.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from tradepulse.core.models import OwnedModel


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
FINAL_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


def stale_after() -> timedelta:
    """A running job whose heartbeat is older than this is presumed dead (settings, seconds)."""
    return timedelta(seconds=settings.TRADEPULSE_JOB_STALE_AFTER_S)


class JobCancelled(Exception):
    """Raised inside the work when the job's cancel flag was set; the task marks it cancelled."""


class Job(OwnedModel):
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="Percent complete, 0–100.")
    message = models.CharField(max_length=500, blank=True, help_text="What the job is doing now.")
    error = models.TextField(blank=True, help_text="Human-readable reason for a failure.")
    error_code = models.CharField(max_length=40, blank=True,
                                  help_text="Machine-readable kind of failure (from the job type's error map).")
    cancel_requested = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, help_text="The process running (or last running) it.")

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def duration_s(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()

    @property
    def is_lost(self) -> bool:
        """Running, but its worker has not been heard of for longer than the threshold."""
        last = self.heartbeat_at or self.started_at
        return self.state == JobState.RUNNING and last is not None and last < timezone.now() - stale_after()

    def claim(self, *, worker: str = "", dead_holder: str | None = None) -> bool:
        """Atomically move QUEUED (or a RUNNING job whose worker died) to RUNNING, held by `worker`.

        A running job is taken over when its heartbeat is stale, or when it is still held by
        `dead_holder` (a worker the caller knows to be dead). Returns False when another worker
        holds it or it is finished: the caller does nothing.
        """
        now = timezone.now()
        stale = now - stale_after()
        claimable = models.Q(state=JobState.QUEUED) | models.Q(state=JobState.RUNNING, heartbeat_at__lt=stale)
        if dead_holder:
            claimable |= models.Q(state=JobState.RUNNING, worker=dead_holder)
        updated = (
            type(self)
            .objects.filter(claimable, pk=self.pk, cancel_requested=False)
            .update(
                state=JobState.RUNNING,
                started_at=Coalesce(models.F("started_at"), models.Value(now)),
                heartbeat_at=now,
                attempts=models.F("attempts") + 1,
                error="",
                error_code="",
                worker=worker,
            )
        )
        if updated:
            self.refresh_from_db()
        return bool(updated)

    def request_cancel(self, noun: str) -> None:
        """Flag the job for cancellation; a queued one is cancelled at once (the work checks the
        flag between steps). Raises ValidationError when it already finished."""
        if not self.is_active:
            raise ValidationError(f"This {noun} has already {self.state}; there is nothing to cancel.")
        type(self).objects.filter(pk=self.pk).update(cancel_requested=True)
        if type(self).objects.filter(pk=self.pk, state=JobState.QUEUED).exists():
            self.refresh_from_db()
            self.finish(JobState.CANCELLED, message="Cancelled before it started")
        self.refresh_from_db()

    def finish(self, state: str, *, message: str = "", error: str = "", **fields) -> None:
        """Record a final state; writes only the named fields."""
        self.state, self.finished_at = state, timezone.now()
        if state == JobState.SUCCEEDED:
            self.progress = 100.0
        self.message = message[:500] if message else self.message
        self.error = error
        for key, value in fields.items():
            setattr(self, key, value)
        self.save(update_fields=["state", "finished_at", "progress", "message", "error", "updated_at", *fields])


class Progress:
    """Report progress of `total` units of work on a job.

    `advance(n)` counts work done; the row and `on_emit` are updated only when the shown
    percentage changes and at most every `min_interval` seconds, so a fast loop does not hammer
    the database or the browser. Each emit also checks the cancel flag and raises JobCancelled.
    `child(share)` returns a Progress covering `share` of this one, for sub-steps.
    """

    def __init__(
        self,
        job: Job,
        total: float,
        *,
        on_emit: Callable[[Job, dict], None] | None = None,
        min_interval: float = 0.25,
        start: float = 0.0,
        span: float = 100.0,
        extra: Callable[[], dict] | None = None,
    ):
        self.job, self.total = job, max(float(total), 1e-12)
        self.on_emit, self.min_interval, self.extra = on_emit, min_interval, extra
        self.start, self.span = start, span
        self.done = 0.0
        self._last_pct: float | None = None
        self._last_time = 0.0

    @property
    def percent(self) -> float:
        return min(self.start + self.span * self.done / self.total, 100.0)

    def child(self, share: float, total: float) -> Progress:
        """A sub-range worth `share` (0–1) of what remains in this one's span."""
        child = Progress(
            self.job, total, on_emit=self.on_emit, min_interval=self.min_interval,
            start=self.percent, span=self.span * share, extra=self.extra,
        )
        child._last_time = self._last_time
        return child

    def advance(self, amount: float = 1.0, *, message: str | None = None, force: bool = False) -> None:
        self.done = min(self.done + amount, self.total)
        self.emit(message=message, force=force)

    def set(self, done: float, *, message: str | None = None, force: bool = False) -> None:
        """Jump to an absolute amount of work done (for work measured in stages, not units)."""
        self.done = min(max(done, 0.0), self.total)
        self.emit(message=message, force=force)

    def emit(self, *, message: str | None = None, force: bool = False) -> None:
        pct = round(self.percent, 1)
        now = time.monotonic()
        if not force and (pct == self._last_pct or now - self._last_time < self.min_interval):
            return
        self._last_pct, self._last_time = pct, now
        fields = {"progress": pct, "heartbeat_at": timezone.now()}
        if message is not None:
            fields["message"] = message[:500]
        if self.extra:
            fields.update(self.extra())
        model = type(self.job)
        model.objects.filter(pk=self.job.pk).update(**fields)
        for key, value in fields.items():
            setattr(self.job, key, value)
        if model.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled(f"{model._meta.verbose_name} {self.job.pk} was cancelled")
        if self.on_emit:
            self.on_emit(self.job, fields)
