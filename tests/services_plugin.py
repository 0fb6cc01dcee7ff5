"""Pick the services the suite runs against, before Django reads its settings.

Loaded with `-p tests.services_plugin` (pytest.ini), so it runs before pytest-django
configures Django. PostgreSQL and Redis on 127.0.0.1 are used when they answer; otherwise the
embedded defaults (SQLite, in-memory broker and channel layer). With
TRADEPULSE_REQUIRE_SERVICES=1 a missing service stops the run instead.
Each xdist worker gets its own Redis database and channel prefix. TRADEPULSE_TEST_SLOT=k (0-6)
lets several checkouts run the suite side by side on one machine: its own database name and a
separate range of Redis databases.
"""
from __future__ import annotations

import os
import socket

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def _answers(addr, timeout=0.5) -> bool:
    try:
        with socket.create_connection(addr, timeout=timeout):
            return True
    except OSError:
        return False


def _redis_ping(addr) -> bool:
    try:
        with socket.create_connection(addr, timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _configure() -> dict:
    required = os.environ.get("TRADEPULSE_REQUIRE_SERVICES", "") in ("1", "true", "yes")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    slot = int(os.environ.get("TRADEPULSE_TEST_SLOT", "0") or 0)
    db_name = f"tradepulse_s{slot}" if slot else "tradepulse"
    index += 2 * slot
    chosen = {}
    if "DATABASE_URL" not in os.environ:
        if _answers(PG):
            os.environ["DATABASE_URL"] = f"postgres://postgres@{PG[0]}:{PG[1]}/{db_name}"
            chosen["database"] = "postgresql"
        elif required:
            raise SystemExit(f"TRADEPULSE_REQUIRE_SERVICES=1 but PostgreSQL does not answer on {PG[0]}:{PG[1]}")
        else:
            os.environ["DATABASE_URL"] = "sqlite:///" + os.path.join(os.getcwd(), "var", f"test{slot or ''}.sqlite3")
            chosen["database"] = "sqlite"
    if "REDIS_URL" not in os.environ:
        if _redis_ping(REDIS):
            os.environ["REDIS_URL"] = f"redis://{REDIS[0]}:{REDIS[1]}/{1 + index % 15}"
            os.environ.setdefault("TRADEPULSE_CHANNEL_PREFIX", f"test-s{slot}-{worker}")
            chosen["redis"] = "redis"
        elif required:
            raise SystemExit(f"TRADEPULSE_REQUIRE_SERVICES=1 but Redis does not answer on {REDIS[0]}:{REDIS[1]}")
        else:
            chosen["redis"] = "embedded"
    os.environ.setdefault("TRADEPULSE_CELERY_EAGER", "1")
    os.environ.setdefault("TRADEPULSE_TESTING", "1")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # playwright's sync API in tests
    return chosen


CHOSEN = _configure()


def pytest_report_header(config):
    db = os.environ.get("DATABASE_URL", "").split("://")[0]
    redis = "redis" if os.environ.get("REDIS_URL") else "embedded (in-memory broker and channel layer)"
    return [f"tradepulse services: database={db} redis={redis}"]
