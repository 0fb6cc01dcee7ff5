"""One way to run long work: claim → work (progress, heartbeat, cancel) → classify → finish → audit → publish.

Every kind of job (a download, a backtest, a training run, later trading and alert delivery)
registers a `JobType`: its model, its work function, an error map from exception classes to what
the user reads, and whether a run whose worker died may simply be queued again. Tasks, commands
and the admin call `run_job(name, pk)`; it does the rest the same way for all of them:

- claims the row with a conditional UPDATE (a second delivery of the task does nothing);
- runs the work as the person who created the job (actor) by way of the worker or command (via);
- keeps the row's `heartbeat_at` fresh from a timer thread and from every progress emit;
- classifies a failure through the error map; anything else becomes "Internal error (request
  <id>)" for the user and a full traceback in the log only;
- finishes the row, writes the audit event and publishes `<name>.finished|failed|cancelled` to
  everyone who may see the object (`events.publish_for`).

`recover_lost_jobs()` (beat, every few seconds) finds running rows whose heartbeat is older than
`settings.TRADEPULSE_JOB_STALE_AFTER_S` and re-queues them (job types that resume from what they
stored) or fails them with the reason ("Worker … lost at 10:42 UTC: no heartbeat for 75 s").
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from tradepulse.celery import app as celery_app
from tradepulse.core import context, events
from tradepulse.core.jobs import Job, JobCancelled, JobState, Progress, stale_after

log = logging.getLogger(__name__)

# exception class → (error code, function giving the message a user reads)
ErrorMap = Mapping[type[BaseException], tuple[str, Callable[[BaseException], str]]]
INTERNAL, WORKER_LOST, INTERRUPTED = "internal", "worker_lost", "interrupted"


class JobInterrupted(Exception):
    """Raised inside the work when this process is stopping (Ctrl-C, SIGTERM): the job ends as
    interrupted, and can be retried."""


# Set when this process is asked to stop (`request_stop`): work checks it between steps.
_stopping = threading.Event()


def request_stop() -> None:
    """This process is stopping: running jobs end between steps as interrupted (`stopping()`)."""
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()


def interrupted_error(job: Job, when=None) -> str:
    """What a user reads on a job a server stop interrupted (its last progress message kept)."""
    when = when or timezone.now()
    done = f" ({job.message})" if job.message else ""
    return f"Interrupted when the server stopped at {when:%H:%M} UTC{done}. Retry it to continue."


@dataclass
class Done:
    """What a work function returns: the final message, fields to store on the row, audit metadata."""

    message: str = ""
    fields: dict = field(default_factory=dict)
    audit: dict = field(default_factory=dict)


@dataclass(frozen=True)
class JobType:
    """How one kind of job runs. Events are `<name>.started|progress|finished|failed|cancelled`,
    audit actions `<name>.finished|failed|cancelled|requeued`, the Celery task is `task`."""

    name: str
    model: type[Job]
    work: Callable[[JobRun], Done | str | None]
    serialize: Callable[[Job], dict]
    audit: Callable[..., object]  # apps.audit.services.audit_record: core does not import apps
    task: str = ""
    errors: ErrorMap = field(default_factory=dict)
    # A run whose worker died is queued again (the work picks up from what it stored) instead of failed.
    requeue_when_lost: bool = False
    max_attempts: int = 3
    select_related: tuple[str, ...] = ()
    # Audit metadata for every final state (e.g. counters), merged with Done.audit.
    audit_metadata: Callable[[Job], dict] | None = None
    # The message of a cancelled row ("Cancelled after 200 candles stored").
    cancelled_message: Callable[[Job], str] | None = None
    # Sends the task(s) for row pk (a job several workers share sends one per worker); default:
    # the task with the row's id.
    send: Callable[[int], None] | None = None
    # Fields reset when a lost job is queued again (e.g. counters of the workers that share it).
    requeue_fields: Callable[[Job], dict] | None = None


_types: dict[str, JobType] = {}

# Sent when a job reaches a final state (kwargs: job_type, job, state, error_code), inside its
# transaction and before its own event; and when crash recovery acts on a job whose worker died
# (kwargs: job_type, job, action, reason). Apps that react (alerts) connect receivers; the core
# imports no app. A failing receiver is logged, never breaks the job.
job_finished = Signal()
job_recovered = Signal()


def _notify(signal: Signal, **kwargs) -> None:
    for receiver, result in signal.send_robust(sender=JobType, **kwargs):
        if isinstance(result, Exception):
            log.error("%s receiver %r failed: %r", "job signal", receiver, result)


def register(job_type: JobType) -> JobType:
    """Make a job type known to `run_job` and to crash recovery (call at import of the app's services)."""
    _types[job_type.name] = job_type
    return job_type


def job_type(name: str) -> JobType:
    return _types[name]


def job_types() -> list[JobType]:
    return list(_types.values())


def worker_id() -> str:
    """Host, process and thread of the caller: which worker holds a job."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"[:200]


def holder_died_here(worker: str) -> bool:
    """Is `worker` a process of this host that no longer exists? A task redelivered after its
    pool process was killed (reject_on_worker_lost) then takes the job over at once instead of
    waiting for the heartbeat to go stale. Other hosts' workers are judged by heartbeat only."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def enqueue(job_type: JobType, pk: int) -> None:
    """Send the job type's task for row `pk` (runs inline in eager mode)."""
    if job_type.send is not None:
        job_type.send(pk)
    else:
        celery_app.tasks[job_type.task].delay(pk)


def publish(job_type: JobType, job: Job, event: str) -> dict:
    return events.publish_for(job, f"{job_type.name}.{event}", job_type.serialize(job))


class JobRun:
    """What a work function gets: the claimed row, progress helpers and the cancel check.

    `final_fields`, if the work sets it, gives fields to store when the job ends without
    success (a cancelled download keeps its counters).
    """

    def __init__(self, job_type: JobType, job: Job, worker: str, on_progress: Callable[[Job], None] | None):
        self.type, self.job, self.worker, self.on_progress = job_type, job, worker, on_progress
        self.final_fields: Callable[[], dict] | None = None

    def progress(self, total: float, *, extra: Callable[[], dict] | None = None,
                 min_interval: float = 0.25) -> Progress:
        """A Progress over `total` units that publishes `<name>.progress`, touches the heartbeat and
        raises JobCancelled when the cancel flag is set."""
        return Progress(self.job, total, on_emit=self._emitted, extra=extra, min_interval=min_interval)

    def _emitted(self, job: Job, _fields: dict) -> None:
        self.publish("progress")
        if stopping():
            raise JobInterrupted(f"{self.type.name} {job.pk}: this process is stopping")

    def publish(self, event: str = "progress") -> None:
        publish(self.type, self.job, event)
        if self.on_progress:
            self.on_progress(self.job)

    def check_cancel(self) -> None:
        """Raise JobCancelled if someone asked this job to stop, JobInterrupted if this process
        is stopping (call between steps)."""
        if type(self.job).objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled(f"{self.type.name} {self.job.pk} was cancelled")
        if stopping():
            raise JobInterrupted(f"{self.type.name} {self.job.pk}: this process is stopping")


class heartbeat:  # noqa: N801 - used as a context manager: `with heartbeat(job):`
    """Touch `heartbeat_at` every `settings.TRADEPULSE_JOB_HEARTBEAT_S` from a timer thread while
    the block runs, so long steps without progress (a numba loop, one slow trial) do not look
    like a dead worker. With `worker`, only while the row is still held by that worker."""

    def __init__(self, job: Job, worker: str | None = None, interval: float | None = None):
        self.model, self.pk, self.worker = type(job), job.pk, worker
        self.interval = interval if interval is not None else settings.TRADEPULSE_JOB_HEARTBEAT_S
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.model.__name__}-{self.pk}",
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        return False

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                rows = self.model.objects.filter(pk=self.pk, state=JobState.RUNNING)
                if self.worker is not None:
                    rows = rows.filter(worker=self.worker)
                try:
                    rows.update(heartbeat_at=timezone.now())
                except Exception:  # noqa: BLE001 - a missed beat is not worth killing the work for
                    log.warning("heartbeat of %s %s failed", self.model.__name__, self.pk, exc_info=True)
                    close_old_connections()
        finally:
            connection.close()


def classify(job_type: JobType, exc: BaseException) -> tuple[str, str]:
    """(code, message) for a failure: the most specific class in the error map wins; anything
    else is an internal error whose details (traceback) go to the log only."""
    for klass in type(exc).__mro__:
        if klass in job_type.errors:
            code, text = job_type.errors[klass]
            return code, text(exc)[:2000]
    request_id = context.current().request_id
    return INTERNAL, f"Internal error (request {request_id}); the details are in the server log."


def run_job(name: str, pk: int, *, on_progress: Callable[[Job], None] | None = None) -> Job | None:
    """Claim job `pk` of type `name`, run it and record the outcome. Returns the finished row, or
    None when it was not claimed (another worker has it, or it is finished or cancelled).

    Exceptions the work raises are stored on the row (never re-raised); only BaseExceptions
    that are not Exceptions (a kill, KeyboardInterrupt) leave the row running for recovery.
    """
    job_type = _types[name]
    job = job_type.model.objects.select_related(*job_type.select_related).filter(pk=pk).first()
    if job is None:  # deleted while its task waited in the queue
        log.warning("%s %s no longer exists", name, pk)
        return None
    worker = worker_id()
    if not job.claim(worker=worker, dead_holder=job.worker if holder_died_here(job.worker) else None):
        log.info("%s %s not claimed (state %s)", name, pk, job.state)
        return None
    with acting_for(job_type, job):
        run = JobRun(job_type, job, worker, on_progress)
        run.publish("started")
        error_code = error = ""
        try:
            with heartbeat(job, worker):
                result = job_type.work(run)
        except JobCancelled:
            state, done = JobState.CANCELLED, Done()
        except JobInterrupted:
            state, done = JobState.FAILED, Done()
            error_code, error = INTERRUPTED, interrupted_error(job)
        except Exception as exc:  # noqa: BLE001 - classified for the user, logged for us
            error_code, error = _classify_and_log(job_type, job, exc)
            state, done = JobState.FAILED, Done()
        else:
            state = JobState.SUCCEEDED
            done = result if isinstance(result, Done) else Done(message=result or "")
        if state != JobState.SUCCEEDED and run.final_fields:
            done.fields = {**run.final_fields(), **done.fields}
        return finish_job(job_type, job, state, done=done, error_code=error_code, error=error, worker=worker,
                          on_progress=on_progress)


@contextmanager
def acting_for(job_type: JobType, job: Job):
    """Work on `job` as the person who created it, by way of the worker or command running it."""
    ctx = context.current()
    via = ctx.actor_label if ctx.actor_label and ":" in ctx.actor_label else f"system:{job_type.name}"
    with context.acting(user_id=job.owner_id, actor_label=via):
        yield


def _classify_and_log(job_type: JobType, job: Job, exc: BaseException) -> tuple[str, str]:
    code, text = classify(job_type, exc)
    if code == INTERNAL:
        log.exception("%s %s failed", job_type.name, job.pk)
    else:
        log.info("%s %s failed: %s", job_type.name, job.pk, text)
    return code, text


def finish_job(job_type: JobType, job: Job, state: str, *, done: Done | None = None, error_code: str = "",
               error: str = "", reason: str | None = None, worker: str | None = None,
               on_progress: Callable[[Job], None] | None = None) -> Job | None:
    """Record a running job's final state, audit it and publish `<name>.finished|failed|cancelled`.

    With `worker`, only if the row is still held by that worker (a worker presumed dead whose
    job went to another must not overwrite it); with None, whoever holds it (jobs several
    workers share, e.g. the last worker of a training run). Returns None when the row was not
    running (or not held): nothing is written then.
    """
    done = done or Done()
    fields = dict(done.fields)
    with transaction.atomic():
        held = job_type.model.objects.select_for_update().filter(pk=job.pk, state=JobState.RUNNING)
        if worker is not None:
            held = held.filter(worker=worker)
        if not held.exists():  # presumed dead meanwhile and re-queued or failed by recovery: theirs now
            log.warning("%s %s finished as %s but is no longer held by %s", job_type.name, job.pk, state, worker)
            return None
        for key, value in fields.items():
            setattr(job, key, value)
        if state == JobState.CANCELLED:
            message = job_type.cancelled_message(job) if job_type.cancelled_message else "Cancelled"
        elif state == JobState.FAILED:
            message = "Interrupted" if error_code == INTERRUPTED else "Failed"
        else:
            message = done.message
        job.finish(state, message=message, error=error, error_code=error_code, **fields)
        event = {JobState.SUCCEEDED: "finished", JobState.FAILED: "failed", JobState.CANCELLED: "cancelled"}[state]
        metadata = {**(job_type.audit_metadata(job) if job_type.audit_metadata else {}), **done.audit}
        if error_code:
            metadata["error_code"] = error_code
        job_type.audit(f"{job_type.name}.{event}", target=job, reason=error if reason is None else reason,
                       metadata=metadata)
        # Before the job's own event: a page hears of the alert, then sees the job end.
        _notify(job_finished, job_type=job_type, job=job, state=state, error_code=error_code)
        publish(job_type, job, event)
    if on_progress:
        on_progress(job)
    return job


def fail_job(job_type: JobType, job: Job, exc: BaseException, *, worker: str | None = None) -> Job | None:
    """Fail a running job for `exc`, classified through the job type's error map (the message a
    user reads; an unknown error is logged with its traceback and shown as an internal error)."""
    code, text = _classify_and_log(job_type, job, exc)
    return finish_job(job_type, job, JobState.FAILED, error_code=code, error=text, worker=worker)


# --- Crash recovery ---------------------------------------------------------------------------------

def recover_lost_jobs(*, now=None) -> list[dict]:
    """Re-queue or fail every running job whose heartbeat is older than the threshold.

    A job type with `requeue_when_lost` goes back to the queue (its task sent again) until it has
    been tried `max_attempts` times; otherwise, and after that, it fails with the reason. A job
    whose cancellation was asked for is cancelled. Returns what was done, one dict per job.
    """
    now = now or timezone.now()
    threshold = now - stale_after()
    done = []
    for job_type in job_types():
        dead = job_type.model.objects.filter(
            models.Q(heartbeat_at__lt=threshold) | models.Q(heartbeat_at__isnull=True, started_at__lt=threshold),
            state=JobState.RUNNING)
        for job in dead:
            outcome = _recover(job_type, job, now)
            if outcome:
                done.append(outcome)
    return done


def _recover(job_type: JobType, job: Job, now) -> dict | None:
    last = job.heartbeat_at or job.started_at
    silent = (now - last).total_seconds()
    why = (f"Worker {job.worker or 'unknown'} lost at {last:%H:%M} UTC: no heartbeat for {silent:.0f} s")
    requeue = (job_type.requeue_when_lost and job_type.task and not job.cancel_requested
               and job.attempts < job_type.max_attempts)
    with context.acting(user_id=job.owner_id, actor_label="system:jobs.recover"), transaction.atomic():
        # Conditional on the heartbeat we judged by: a worker that came back in between keeps its job.
        job = (job_type.model.objects.select_for_update()
               .filter(pk=job.pk, state=JobState.RUNNING, heartbeat_at=job.heartbeat_at).first())
        if job is None:
            return None
        action = "requeued" if requeue else "cancelled" if job.cancel_requested else "failed"
        _notify(job_recovered, job_type=job_type, job=job, action=action, reason=why)
        if requeue:
            job.state, job.worker = JobState.QUEUED, ""
            job.message = f"{why}; queued again (attempt {job.attempts + 1} of {job_type.max_attempts})"[:500]
            reset = job_type.requeue_fields(job) if job_type.requeue_fields else {}
            for key, value in reset.items():
                setattr(job, key, value)
            job.save(update_fields=["state", "worker", "message", "updated_at", *reset])
            job_type.audit(f"{job_type.name}.requeued", target=job, reason=why, metadata={"attempts": job.attempts})
            publish(job_type, job, "progress")
            transaction.on_commit(lambda: enqueue(job_type, job.pk))
        elif job.cancel_requested:  # it was asked to stop anyway: it has
            finish_job(job_type, job, JobState.CANCELLED, reason=why)
        else:
            tries = f" after {job.attempts} attempts" if job.attempts >= job_type.max_attempts > 1 else ""
            finish_job(job_type, job, JobState.FAILED, error_code=WORKER_LOST, reason=why,
                       error=f"{why}{tries}. Retry it to continue.")
    log.warning("%s %s: %s (%s)", job_type.name, job.pk, why, action)
    return {"type": job_type.name, "id": job.pk, "action": action, "reason": why}


# --- Stop and start ---------------------------------------------------------------------------------

def mark_interrupted(*, shared: bool = True, now=None) -> list[dict]:
    """At start: every running job that a process of this host held and that process is gone
    (the server was stopped or killed while it ran) ends as interrupted, with a message saying
    so, instead of showing "running" until the heartbeat goes stale. With `shared` (workers on
    other machines may share a job, e.g. a training run), a job whose heartbeat is still fresh
    is left alone: another live worker keeps it (and if none does, recovery finds it stale).
    Embedded mode has no other workers and passes shared=False. Returns one dict per job."""
    now = now or timezone.now()
    fresh = now - timedelta(seconds=2 * settings.TRADEPULSE_JOB_HEARTBEAT_S)
    done = []
    for job_type in job_types():
        running = job_type.model.objects.filter(state=JobState.RUNNING)
        if shared:
            running = running.exclude(heartbeat_at__gte=fresh)
        for job in running:
            if not holder_died_here(job.worker):
                continue
            with context.acting(user_id=job.owner_id, actor_label="system:jobs.start"):
                last = job.heartbeat_at or job.started_at or now
                error = interrupted_error(job, last)
                held = finish_job(job_type, job, JobState.FAILED, error_code=INTERRUPTED, error=error,
                                  worker=job.worker, reason=error)
            if held is not None:
                log.warning("%s %s: %s", job_type.name, job.pk, error)
                done.append({"type": job_type.name, "id": job.pk, "action": "interrupted", "reason": error})
    return done


def resend_queued() -> list[dict]:
    """Send the task of every queued job again. For a broker that lost its messages when the
    process stopped (embedded mode's in-memory broker); claiming makes a second delivery harmless."""
    sent = []
    for job_type in job_types():
        if not (job_type.task or job_type.send):
            continue
        for pk in job_type.model.objects.filter(state=JobState.QUEUED).values_list("pk", flat=True):
            enqueue(job_type, pk)
            sent.append({"type": job_type.name, "id": pk, "action": "resent"})
    return sent
