"""Start the whole platform: web and websockets (daphne), Celery worker(s) and beat.

Embedded mode (no REDIS_URL): one process — daphne, a threaded worker and beat share the
in-memory broker and channel layer. Production mode: daphne, a worker for every queue and beat
as child processes.

Stopping: Ctrl-C or SIGTERM stops everything within `TRADEPULSE_STOP_GRACE_S` seconds. Running
jobs are asked to stop between steps (a training run between trials) and end as "interrupted";
whatever has not stopped by then is killed (every process the command started, and theirs). A
second Ctrl-C or SIGTERM kills at once. On start, jobs a stopped or killed server left running
are marked interrupted (they can be retried), and in embedded mode queued jobs whose messages
died with the in-memory broker are sent again.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from tradepulse.core import jobrunner

log = logging.getLogger(__name__)


class _Stop(Exception):
    """The first Ctrl-C or SIGTERM (production mode's wait loop)."""


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Web only (workers run elsewhere).")

    def handle(self, *, host, port, no_worker, **_):
        url = f"http://{host}:{port}"
        for outcome in jobrunner.mark_interrupted(shared=not settings.EMBEDDED):
            self.stdout.write(f"{outcome['type']} #{outcome['id']}: {outcome['reason']}")
        if settings.EMBEDDED:
            self._embedded(host, port, url, no_worker)
        else:
            self._processes(host, port, url, no_worker)

    # --- Embedded: one process -----------------------------------------------------------------
    def _embedded(self, host, port, url, no_worker):
        from daphne.server import Server

        from tradepulse.asgi import application
        from tradepulse.core import embedded

        if not no_worker:
            embedded.start_worker()
            embedded.start_beat()
            jobrunner.resend_queued()  # their messages died with the last process's in-memory broker
        self.stdout.write(self.style.SUCCESS(
            f"TradePulse (embedded: SQLite, in-process worker and beat) at {url}/  —  admin {url}/admin/  "
            f"API docs {url}/api/docs/  —  Ctrl-C stops it"))
        code = 0
        try:
            # Daphne stops on the first Ctrl-C or SIGTERM; the worker and beat are stopped below.
            Server(application=application, endpoints=[f"tcp:port={port}:interface={host}"],
                   signal_handlers=True).run()
        except BaseException:  # noqa: BLE001 - whatever ended the server, the workers still stop
            code = 1
            log.exception("the web server stopped with an error")
        finally:
            _kill_on_next_signal()
            self.stdout.write("Stopping: running jobs end as interrupted (Ctrl-C again to stop at once)")
            jobrunner.request_stop()
            stopper = threading.Thread(target=embedded.stop, name="embedded-stop", daemon=True)
            stopper.start()
            stopper.join(settings.TRADEPULSE_STOP_GRACE_S)
            if stopper.is_alive():
                log.warning("workers did not stop within %s s; exiting anyway (their jobs are marked "
                            "interrupted on the next start)", settings.TRADEPULSE_STOP_GRACE_S)
        # Worker threads that are still busy (one long step) must not keep the process alive.
        _exit(code)

    # --- Production: child processes ------------------------------------------------------------
    def _processes(self, host, port, url, no_worker):
        python = sys.executable
        # -v 0: daphne's plain-text access lines off; tradepulse.core.logging.AccessLogMiddleware
        # writes them through our logging (JSON, with the request id).
        commands = [[python, "-m", "daphne", "-v", "0", "-b", host, "-p", str(port), "tradepulse.asgi:application"]]
        if not no_worker:
            queues = ",".join(settings.CELERY_WORKER_QUEUES)
            commands += [
                [python, "-m", "celery", "-A", "tradepulse", "worker", "-Q", queues, "-l", "INFO", "--concurrency", "2"],
                [python, "-m", "celery", "-A", "tradepulse", "beat", "-l", "INFO"],
            ]

        def interrupt(*_):
            raise _Stop

        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        # Each child leads its own process group, so a stop reaches the processes it started too
        # (Celery's pool); each is told to stop if this process dies without stopping them.
        children = [subprocess.Popen(cmd, start_new_session=True, preexec_fn=_stop_when_parent_dies)
                    for cmd in commands]
        self.stdout.write(self.style.SUCCESS(f"TradePulse at {url}/ (daphne, worker, beat) — Ctrl-C stops all"))
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except _Stop:
            pass
        finally:
            _kill_on_next_signal(groups=[child.pid for child in children])
            self.stdout.write("Stopping: running jobs end as interrupted (Ctrl-C again to stop at once)")
            stop_process_groups([child.pid for child in children], grace_s=settings.TRADEPULSE_STOP_GRACE_S)


def stop_process_groups(groups: list[int], *, grace_s: float) -> None:
    """SIGTERM every process of each group (a Celery worker and its pool children: the workers
    then end their jobs as interrupted), wait up to `grace_s` seconds, then SIGKILL what is left."""
    _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        _reap()
        time.sleep(0.1)
    _signal_groups(groups, signal.SIGKILL)
    _reap()


def _signal_groups(groups: list[int], sig: int) -> None:
    for group in groups:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _reap() -> None:
    """Collect exited children so they do not linger as zombies (which still count as alive)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _stop_when_parent_dies() -> None:
    """In the child, before exec: SIGTERM when the serve process dies (Linux), so a killed serve
    leaves no workers behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill_on_next_signal(groups: list[int] | None = None) -> None:
    """From now on a second Ctrl-C or SIGTERM ends everything at once."""
    def now(*_):
        if groups:
            _signal_groups(groups, signal.SIGKILL)
        _exit(130)

    signal.signal(signal.SIGINT, now)
    signal.signal(signal.SIGTERM, now)


def _exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)
