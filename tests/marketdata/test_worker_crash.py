"""A real Celery worker killed with SIGKILL mid-download (production mode: PostgreSQL + Redis).

The job's heartbeat stops; recovery (what beat runs) sees it within the threshold and queues the
job again; a fresh worker resumes it from the last stored candle: the stored candles equal the
exchange's, none twice, and the audit trail says why the job was re-queued.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from apps.audit.models import AuditEvent
from apps.marketdata import services
from apps.marketdata.models import DownloadJob
from tradepulse.celery import app
from tradepulse.core import jobrunner

from .conftest import MIN, T0, sim_rows, stored_rows

ROOT = Path(__file__).resolve().parents[2]
STALE_S, HEARTBEAT_S = 3, 1

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
                       reason="production mode only: needs PostgreSQL and Redis (separate worker processes)"),
    pytest.mark.django_db(transaction=True),
]


def _start_worker(sim, log_path: Path, pool: str = "solo", stale_s: int = STALE_S) -> subprocess.Popen:
    """`celery worker` in its own process, on the test database and Redis, in production mode."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k not in ("TRADEPULSE_TESTING", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        TRADEPULSE_CELERY_EAGER="0", DEBUG="0", SECRET_KEY="crash-test-" + uuid.uuid4().hex * 2,
        TRADEPULSE_ENCRYPTION_KEYS=Fernet.generate_key().decode(), TRADEPULSE_CCXT_OVERRIDES=sim.ccxt_overrides_json(),
        TRADEPULSE_JOB_HEARTBEAT_S=str(HEARTBEAT_S), TRADEPULSE_JOB_STALE_AFTER_S=str(stale_s),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tradepulse", "worker", "-Q", "downloads", "-P", pool, "-c", "1",
         "-n", f"crash-{uuid.uuid4().hex[:8]}@%h", "--without-mingle", "--without-gossip", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)


def _stop(workers: list[subprocess.Popen]) -> None:
    app.conf.task_always_eager = True
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=20)
    # A killed worker's message stays unacknowledged in this test Redis database; drop it so no
    # later test's worker receives it when the visibility timeout restores it.
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete("unacked", "unacked_index")


def _wait(condition, timeout: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    tails = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def test_a_download_whose_worker_was_killed_is_recovered_and_resumes_without_duplicates(alice, btc, sim, settings,
                                                                                        tmp_path):
    settings.TRADEPULSE_JOB_STALE_AFTER_S = STALE_S
    start, end = T0 - 4000 * MIN, T0 + 2000 * MIN  # 6,000 candles: 6 pages of 1,000
    expected = sim_rows(sim, "BTC/USDT", "1m", start, end)
    assert len(expected) == 6000
    sim.set_faults(latency_ms=400)  # slow pages, so the kill lands mid-download
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers = [_start_worker(sim, logs[0])]
    app.conf.task_always_eager = False
    try:
        job = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=start, end_ms=end)
        _wait(lambda: len(stored_rows(btc, "1m")) > 0, 120, "the first stored page", logs)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        killed_at = time.monotonic()
        job.refresh_from_db()
        assert job.state == "running" and len(stored_rows(btc, "1m")) < 6000  # left behind mid-way

        # What beat runs every few seconds: the job is known dead within the threshold.
        recovered = _wait(lambda: jobrunner.recover_lost_jobs(), 30, "recovery", logs)
        noticed_after = time.monotonic() - killed_at
        assert [(r["id"], r["action"]) for r in recovered] == [(job.pk, "requeued")]
        assert noticed_after <= STALE_S + 1.0, noticed_after
        assert "no heartbeat for" in recovered[0]["reason"]

        workers.append(_start_worker(sim, logs[1]))
        _wait(lambda: DownloadJob.objects.filter(pk=job.pk, state="succeeded").exists(), 120,
              "the resumed download", logs)
    finally:
        _stop(workers)
    job.refresh_from_db()
    stored = stored_rows(btc, "1m")
    assert stored == expected  # every candle, each once, equal to the exchange's
    assert len({row[0] for row in stored}) == len(stored) == 6000
    assert job.attempts == 2
    requeued = AuditEvent.objects.get(action="marketdata.download.requeued", target_id=str(job.pk))
    assert requeued.actor_id == alice.pk and "no heartbeat for" in requeued.reason


def test_a_killed_pool_process_hands_its_download_to_the_next_one_at_once(alice, btc, sim, settings, tmp_path):
    """prefork: the parent sees its child die, the task goes back to the queue (acks_late +
    reject_on_worker_lost) and the next child takes the job over from the dead process at once,
    without waiting for the heartbeat to go stale or for beat."""
    settings.TRADEPULSE_JOB_STALE_AFTER_S = 600  # recovery by heartbeat would be far too late here
    start, end = T0 - 4000 * MIN, T0 + 2000 * MIN
    expected = sim_rows(sim, "BTC/USDT", "1m", start, end)
    sim.set_faults(latency_ms=400)
    logs = [tmp_path / "worker.log"]
    workers = [_start_worker(sim, logs[0], pool="prefork", stale_s=600)]
    app.conf.task_always_eager = False
    try:
        job = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=start, end_ms=end)
        _wait(lambda: len(stored_rows(btc, "1m")) > 0, 120, "the first stored page", logs)
        job.refresh_from_db()
        child = int(job.worker.split(":")[1])
        assert child != workers[0].pid
        os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
        _wait(lambda: DownloadJob.objects.filter(pk=job.pk, state="succeeded").exists(), 120,
              "the download taken over by the next pool process", logs)
        taken_over_in = time.monotonic() - killed_at
    finally:
        _stop(workers)
    job.refresh_from_db()
    assert job.attempts == 2 and int(job.worker.split(":")[1]) != child
    assert taken_over_in < 60, taken_over_in  # the heartbeat threshold was 600 s: taken over, not timed out
    assert stored_rows(btc, "1m") == expected
