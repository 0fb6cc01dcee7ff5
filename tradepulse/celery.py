"""Celery application and the hooks that carry actor and request id into tasks.

The publisher adds `tp_request_id`, `tp_client_request_id`, `tp_user_id` and `tp_actor` headers to every task message;
the worker restores them into the context before the task runs, so audit events written by the
task carry the request that caused it. A task sent with no request behind it (beat, a worker
acting alone) runs as `system:<task name>` with a fresh request id.
"""
from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradepulse.settings")

app = Celery("tradepulse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["tradepulse.core"])  # jobs.recover_lost: the core is not an installed app

_TOKENS: dict[str, object] = {}


@signals.before_task_publish.connect
def _add_context_headers(headers=None, **_):
    from tradepulse.core import context

    ctx = context.current()
    if headers is not None:
        headers.setdefault("tp_request_id", ctx.request_id)
        headers.setdefault("tp_client_request_id", ctx.client_request_id)
        headers.setdefault("tp_user_id", ctx.user_id)
        headers.setdefault("tp_actor", ctx.actor_label)


@signals.task_prerun.connect
def _restore_context(task_id=None, task=None, **_):
    from tradepulse.core import context

    request = task.request
    get = lambda key: getattr(request, key, None) or (request.headers or {}).get(key)  # noqa: E731
    ctx = context.ActorContext(
        request_id=get("tp_request_id") or context.new_request_id(),
        client_request_id=get("tp_client_request_id") or "",
        user_id=get("tp_user_id"),
        # The worker is the means; the person (tp_user_id), if any, stays the actor of record.
        actor_label=f"system:{task.name}",
    )
    _TOKENS[task_id] = context.set_context(ctx)


@signals.task_postrun.connect
def _clear_context(task_id=None, **_):
    from tradepulse.core import context

    token = _TOKENS.pop(task_id, None)
    if token is not None:
        try:
            context.reset_context(token)
        except ValueError:  # reset from another context (eager mode nesting): just clear
            context.set_context(context.ActorContext())


# --- Stopping: a pool process's running job ends as interrupted --------------------------------------
# SIGTERM (`manage.py serve` stopping, a deploy) reaches the pool processes too. billiard's own
# handler exits at once, mid-step, and the job shows "running" until its heartbeat goes stale.
# While a task runs, SIGTERM instead asks it to stop between steps and end as interrupted
# (tradepulse.core.jobrunner.request_stop); the process exits when the task has returned.
_POOL = {"process": False, "previous": None}


@signals.worker_process_init.connect
def _in_pool_process(**_):
    _POOL["process"] = True


@signals.task_prerun.connect
def _stop_job_on_sigterm(**_):
    import signal
    import threading

    from tradepulse.core import jobrunner

    if _POOL["process"] and threading.current_thread() is threading.main_thread():
        _POOL["previous"] = signal.signal(signal.SIGTERM, lambda *_: jobrunner.request_stop())


@signals.task_postrun.connect
def _exit_if_stopping(**_):
    import signal
    import threading

    from tradepulse.core import jobrunner

    if _POOL["process"] and threading.current_thread() is threading.main_thread():
        if _POOL["previous"] is not None:
            signal.signal(signal.SIGTERM, _POOL["previous"])
        if jobrunner.stopping():  # told to stop: go, once the task's result has reached the worker
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
