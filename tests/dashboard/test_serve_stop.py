"""`manage.py serve` (what `make run` starts) stops on Ctrl-C and SIGTERM within seconds, even
during a training run, leaving no process behind; the interrupted run says so on the next start
and Retry resumes it; a killed server's run is marked interrupted when it starts again; Cancel
stops a running training.

A real server in embedded mode (a temporary SQLite database, its own worker and beat threads),
driven over HTTP with an API token, as a person would.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.backtests.conftest import T0

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
GRACE_S = 6  # TRADEPULSE_STOP_GRACE_S for the server under test
STOPPED_WITHIN_S = GRACE_S + 8  # what "within seconds" means here, with room for a loaded machine
BARS = 4000

SETUP = f"""
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from apps.accounts.roles import TRADER
from apps.accounts.services import token_create
from apps.marketdata import services as md
from tests.backtests.conftest import wave_candles
user = get_user_model().objects.create_user("alice", password="correct-horse-battery-9")
user.groups.add(Group.objects.get(name=TRADER))
_, token = token_create(user=user, name="stop test", expires_in_days=1)
exchange = md.exchange_get_or_create(name="Test files")
market = md.market_get_or_create_for_import(exchange=exchange, symbol="WAV/USD", amount_step="0.001")
md.candles_ingest(market=market, timeframe="1m", rows=wave_candles({BARS}), source="test")
print(json.dumps({{"token": token, "market": market.pk}}))
"""


class Server:
    """One `manage.py serve` process; every process it starts carries `marker` in its environment."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log_path = env, log
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*MANAGE, "serve", "--port", str(self.port)], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_until(lambda: self.request("GET", "/health/live", auth=False)[0] == 200, 120, "the server to answer")

    def request(self, method: str, path: str, body: dict | None = None, *, auth: bool = True):
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Token {self.env['TP_TEST_TOKEN']}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None, None

    def run(self, pk: int) -> dict:
        status, body = self.request("GET", f"/api/v1/training-runs/{pk}/")
        assert status == 200, (status, body)
        return body

    def wait_until(self, condition, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}) waiting for {what}:\n{self.tail()}")
            value = condition()
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{self.tail()}")

    def stop(self, sig: int) -> float:
        """Send `sig`; returns the seconds until the server exited (fails after STOPPED_WITHIN_S)."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=STOPPED_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the server ignored {signal.Signals(sig).name} for {STOPPED_WITHIN_S} s:\n"
                                 f"{self.tail()}") from None
        finally:
            self.log.close()
        return time.monotonic() - started

    def tail(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]


def processes_with(marker: str) -> list[int]:
    """Ids of live processes whose environment carries `marker` (the server and anything it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = next((line for line in (entry / "status").read_text().splitlines() if line.startswith("State:")),
                         "")
        except OSError:
            continue
        if marker.encode() in environ and "zombie" not in state:
            found.append(int(entry.name))
    return found


@pytest.fixture
def embedded_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "TRADEPULSE_TESTING", "TRADEPULSE_CELERY_EAGER", "DEBUG",
                        "SECRET_KEY", "TRADEPULSE_CHANNEL_PREFIX")}
    marker = f"serve-stop-{uuid.uuid4().hex}"
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}", TRADEPULSE_STOP_GRACE_S=str(GRACE_S),
               TP_SERVE_TEST_MARKER=marker)
    migrated = subprocess.run([*MANAGE, "migrate", "-v0"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
    assert migrated.returncode == 0, migrated.stderr
    made = subprocess.run([*MANAGE, "shell", "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, made.stderr
    setup = json.loads(made.stdout.strip().splitlines()[-1])
    env["TP_TEST_TOKEN"] = setup["token"]
    yield env, setup["market"], marker
    for pid in processes_with(marker):  # never leave one behind, even when the test failed
        os.kill(pid, signal.SIGKILL)
    for study in env.get("TP_TEST_STUDIES", "").split():  # embedded mode keeps journals under var/optuna
        (ROOT / "var" / "optuna" / f"{study}.log").unlink(missing_ok=True)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _trials(server: Server, pk: int, at_least: int):
    return server.wait_until(lambda: (r := server.run(pk))["state"] == "running" and r["trials_done"] >= at_least
                             and r, 240, f"training {pk} to run {at_least} trials")


def test_ctrl_c_and_sigterm_stop_everything_and_interrupted_training_is_marked_and_resumed(embedded_env, tmp_path):
    env, market, marker = embedded_env
    log = tmp_path / "serve.log"
    server = Server(env, log)
    status, run = server.request("POST", "/api/v1/training-runs/", {
        "strategy_key": "sma_cross", "market": market, "timeframe": "1m",
        "start": _iso(T0), "end": _iso(T0 + BARS * 60_000),
        "n_trials": 2000, "folds": 2, "n_workers": 1, "min_trades": 1, "top_n": 1, "seed": 1, "fee": 0.0005})
    assert status == 201, run
    pk = run["id"]
    env["TP_TEST_STUDIES"] = run["study_name"].replace("/", "-")
    _trials(server, pk, 3)

    # 1. Ctrl-C during the training: everything stops within seconds; the run says it was interrupted.
    took = server.stop(signal.SIGINT)
    assert took < STOPPED_WITHIN_S and processes_with(marker) == []
    server = Server(env, log)
    run = server.run(pk)
    assert (run["state"], run["error_code"]) == ("failed", "interrupted"), run
    assert run["error"].startswith("Interrupted when the server stopped at ") and "Retry it to continue." in run["error"]
    done_before = run["trials_done"]
    assert 3 <= done_before < run["trials_budget"]

    # 2. Retry resumes it (the finished trials are kept) ...
    status, retried = server.request("POST", f"/api/v1/training-runs/{pk}/retry/", {})
    assert status == 200 and retried["state"] == "queued", retried
    _trials(server, pk, done_before + 3)

    # ... and a server killed outright (no chance to mark anything) marks it on its next start.
    server.proc.kill()
    server.proc.wait()
    server.log.close()
    assert processes_with(marker) == []
    server = Server(env, log)
    run = server.run(pk)
    assert (run["state"], run["error_code"]) == ("failed", "interrupted"), run
    assert f"training.run #{pk}: Interrupted when the server stopped" in server.tail()

    # 3. Cancel on a running training stops it.
    assert server.request("POST", f"/api/v1/training-runs/{pk}/retry/", {})[0] == 200
    _trials(server, pk, run["trials_done"] + 2)
    status, cancelling = server.request("POST", f"/api/v1/training-runs/{pk}/cancel/", {"reason": "enough"})
    assert status == 200, cancelling
    run = server.wait_until(lambda: (r := server.run(pk))["state"] == "cancelled" and r, 60, "the run to cancel")
    assert run["message"].startswith("Cancelled · ") and run["trials_done"] < run["trials_budget"]
    trials_at_cancel = run["trials_done"]
    time.sleep(2)
    assert server.run(pk)["trials_done"] == trials_at_cancel  # nothing runs on

    # 4. SIGTERM stops it too.
    took = server.stop(signal.SIGTERM)
    assert took < STOPPED_WITHIN_S and processes_with(marker) == []


# --- Production mode: daphne, a Celery worker with its pool, and beat as separate processes -------------

@pytest.fixture
def production_env(transactional_db, tmp_path):
    """The suite's PostgreSQL test database and Redis database, as production would use them."""
    from django.db import connection

    from apps.accounts.roles import TRADER
    from apps.accounts.services import token_create
    from apps.marketdata import services as md
    from tests.backtests.conftest import wave_candles
    from tests.conftest import make_user

    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL")
    if not (database_url.startswith("postgres") and redis_url):
        pytest.skip("production mode needs PostgreSQL and Redis")
    user = make_user("alice", TRADER)
    _, token = token_create(user=user, name="stop test", expires_in_days=1)
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="WAV/USD", amount_step="0.001")
    md.candles_ingest(market=market, timeframe="1m", rows=wave_candles(BARS), source="test")
    marker = f"serve-stop-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k not in ("TRADEPULSE_TESTING", "TRADEPULSE_CELERY_EAGER", "DEBUG",
                                                              "SECRET_KEY")}
    env.update(DATABASE_URL=database_url.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"],
               TRADEPULSE_CHANNEL_PREFIX=marker, TRADEPULSE_STOP_GRACE_S=str(GRACE_S), TP_SERVE_TEST_MARKER=marker,
               TP_TEST_TOKEN=token)
    connection.close()  # the server's processes use the database from here on
    yield env, market.pk, marker
    for pid in processes_with(marker):
        os.kill(pid, signal.SIGKILL)
    import redis

    client = redis.Redis.from_url(redis_url)  # this test's broker messages, if any are left
    for key in ("downloads", "training", "trading", "default", "unacked", "unacked_index", "unacked_mutex"):
        client.delete(key)
    client.close()


def test_production_mode_stops_every_process_and_the_run_is_interrupted(production_env, tmp_path):
    env, market, marker = production_env
    log = tmp_path / "serve.log"
    server = Server(env, log)
    status, run = server.request("POST", "/api/v1/training-runs/", {
        "strategy_key": "sma_cross", "market": market, "timeframe": "1m",
        "start": _iso(T0), "end": _iso(T0 + BARS * 60_000),
        "n_trials": 2000, "folds": 2, "n_workers": 1, "min_trades": 1, "top_n": 1, "seed": 1, "fee": 0.0005})
    assert status == 201, run
    pk = run["id"]
    _trials(server, pk, 3)
    assert len(processes_with(marker)) >= 5  # serve, daphne, the worker, its pool of 2, beat

    took = server.stop(signal.SIGINT)
    assert took < STOPPED_WITHIN_S
    deadline = time.monotonic() + 5  # the pool's processes exit right after the parent
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker) == [], server.tail()

    server = Server(env, log)
    run = server.run(pk)
    assert (run["state"], run["error_code"]) == ("failed", "interrupted"), (run, server.tail())
    assert run["error"].startswith("Interrupted when the server stopped at ")
    status, retried = server.request("POST", f"/api/v1/training-runs/{pk}/retry/", {})
    assert status == 200, retried
    _trials(server, pk, run["trials_done"] + 2)
    took = server.stop(signal.SIGTERM)
    assert took < STOPPED_WITHIN_S
