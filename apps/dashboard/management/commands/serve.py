"""Start the whole platform: web and websockets (daphne), Celery worker(s) and beat.

Embedded mode (no REDIS_URL): one process — daphne, a threaded worker and beat share the
in-memory broker and channel layer. Production mode: daphne, a worker for every queue and beat
as child processes; Ctrl-C (or SIGTERM) stops all of them.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Web only (workers run elsewhere).")

    def handle(self, *, host, port, no_worker, **_):
        url = f"http://{host}:{port}"
        if settings.EMBEDDED:
            self._embedded(host, port, url, no_worker)
        else:
            self._processes(host, port, url, no_worker)

    def _embedded(self, host, port, url, no_worker):
        from daphne.server import Server

        from tradepulse.asgi import application
        from tradepulse.core import embedded

        if not no_worker:
            embedded.start_worker()
            embedded.start_beat()
        self.stdout.write(self.style.SUCCESS(
            f"TradePulse (embedded: SQLite, in-process worker and beat) at {url}/  —  admin {url}/admin/  "
            f"API docs {url}/api/docs/  —  Ctrl-C stops it"))
        try:
            Server(application=application, endpoints=[f"tcp:port={port}:interface={host}"],
                   signal_handlers=True).run()
        finally:
            embedded.stop()

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
        children = [subprocess.Popen(cmd) for cmd in commands]
        self.stdout.write(self.style.SUCCESS(f"TradePulse at {url}/ (daphne, worker, beat) — Ctrl-C stops all"))

        def stop(*_):
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
