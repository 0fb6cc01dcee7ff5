"""Where optuna studies live: a journal (Redis list or file) with heartbeats, or an RDB.

A training run creates one study per walk-forward fold plus one on the whole optimisation
range, so a study must be cheap. Measured with ``bench/bench_training.py`` (README.md of this
package quotes the figures), optuna's RDB storage spends most of a trial in SQL (a dozen small
writes and several reads of the study per trial), while its JournalStorage appends one small
JSON line per operation and replays the log into memory, so reads cost nothing. Journal
storage is therefore the default; ``sqlite://`` and ``postgresql://`` URLs still open an RDB.

Storage URLs
------------
* ``journal+redis://host:6379/3?key=<list key>``: a Redis list holding the journal
  (production: every worker on every machine appends to and replays the same list). One key
  per training run, so a finished run's journal is one ``DEL`` away (:func:`delete_storage`).
* ``journal+file:///abs/path.log``: a file with optuna's lock (embedded mode, tests, one host).
* ``sqlite:///…`` / ``postgresql+psycopg://…``: optuna's RDBStorage (kept for comparison).

Heartbeats
----------
optuna implements heartbeats (failing and retrying trials of dead workers) for RDBStorage
only. :class:`HeartbeatJournalStorage` adds them to the journal: a running trial records
``time.time()`` in the system attribute ``heartbeat`` every ``heartbeat_interval`` seconds;
a RUNNING trial whose last heartbeat is older than ``grace_period`` counts as stale, is
failed by the next worker that looks and re-enqueued once (``RetryHeartbeatStaleTrialCallback``).
Clocks of different machines must agree to well within ``grace_period`` (NTP does).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Generator
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import optuna
import redis
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend, JournalFileOpenLock, JournalStorage
from optuna.storages.journal._file import get_lock_file
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S", "DEFAULT_GRACE_PERIOD_S", "MAX_RETRIES", "HEARTBEAT_ATTR",
    "storage_url_from_database_url", "journal_redis_url", "journal_file_url", "make_storage",
    "delete_storage", "dispose_storage", "HeartbeatJournalStorage", "RedisListBackend", "FileBackend", "quiet",
]

DEFAULT_HEARTBEAT_INTERVAL_S = 10
"""Seconds between heartbeats of a running trial."""

DEFAULT_GRACE_PERIOD_S = 60
"""Seconds without a heartbeat after which a running trial counts as dead and is retried.
Must exceed the heartbeat interval by a wide margin (a busy machine must not kill live
trials); it is also how long a dead worker's trial waits before another worker redoes it."""

MAX_RETRIES = 1
"""A trial whose worker died is re-run once; a second death (e.g. parameters that exhaust
memory) leaves it FAILED and a fresh trial takes its slot."""

HEARTBEAT_ATTR = "heartbeat"
"""Trial system attribute holding the epoch seconds of a running trial's last heartbeat."""

log = logging.getLogger(__name__)


@contextmanager
def quiet(level: int = optuna.logging.WARNING):
    """Silence optuna's experimental-feature warnings (heartbeat, retry, journal, TPE options)
    and its log lines below ``level``; the worker reports what matters itself."""
    logger = optuna.logging.get_logger("optuna")
    previous = logger.level
    logger.setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
            yield
    finally:
        logger.setLevel(previous)


# --------------------------------------------------------------------------- URLs

def storage_url_from_database_url(database_url: str, *, schema: str | None = None) -> str:
    """SQLAlchemy URL for optuna's RDBStorage from a Django-style ``DATABASE_URL``.

    ``postgres://`` / ``postgresql://`` become ``postgresql+psycopg://`` (psycopg 3). With
    ``schema``, PostgreSQL connections get ``search_path=<schema>``; the schema must exist.
    ``sqlite:///path`` is returned unchanged.
    """
    url = database_url.strip()
    for prefix in ("postgres://", "postgresql://", "pgsql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
            break
    if schema and url.startswith("postgresql"):
        url += ("&" if "?" in url else "?") + "options=" + quote(f"-csearch_path={schema}", safe="")
    return url


def journal_redis_url(redis_url: str, key: str) -> str:
    """``journal+redis://…?key=<key>`` from a ``redis://`` URL (its database number kept)."""
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"expected a redis:// URL, got {redis_url!r}")
    query = (parts.query + "&" if parts.query else "") + "key=" + quote(key, safe="")
    return urlunsplit((f"journal+{parts.scheme}", parts.netloc, parts.path, query, ""))


def journal_file_url(path) -> str:
    """``journal+file:///abs/path`` for a journal file."""
    return f"journal+file://{path}"


# --------------------------------------------------------------------------- Redis backend

class RedisListBackend(BaseJournalBackend):
    """optuna journal lines in ONE Redis list: ``RPUSH`` to append (atomic, so every worker
    sees the same order), ``LRANGE from -1`` to read what is new. optuna's own
    JournalRedisBackend stores one key per line and reads them one GET at a time; a list
    reads the whole tail in one round trip and is deleted with one ``DEL``."""

    def __init__(self, url: str, key: str):
        self._url, self._key = url, key
        self._redis = redis.Redis.from_url(url)

    def __getstate__(self) -> dict:
        return {"_url": self._url, "_key": self._key}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["_url"], state["_key"])

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        for line in self._redis.lrange(self._key, log_number_from, -1):
            yield json.loads(line)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if logs:
            self._redis.rpush(self._key, *(json.dumps(entry) for entry in logs))

    def delete(self) -> None:
        self._redis.delete(self._key)

    def close(self) -> None:
        self._redis.close()


class FileBackend(JournalFileBackend):
    """optuna's journal file without an fsync per line: optuna's backend syncs every
    append (about 8 ms each on this machine's disk, ~10 per trial: most of a trial). The
    lines still reach the OS at once, so other processes see them; only a machine crash can
    lose the last lines, and then the run is lost anyway (its workers died with it)."""

    def __init__(self, path: str):
        super().__init__(path, lock_obj=JournalFileOpenLock(path))

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n"
        with get_lock_file(self._lock):
            with open(self._file_path, "ab") as f:
                f.write(text.encode("utf-8"))


# --------------------------------------------------------------------------- heartbeats

class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """optuna's JournalStorage plus heartbeats (module docstring)."""

    def __init__(self, backend: BaseJournalBackend, *, heartbeat_interval: int, grace_period: int,
                 failed_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None):
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.failed_trial_callback = failed_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            pass  # another worker failed this trial as stale meanwhile: nothing left to keep alive

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        limit = time.time() - self.grace_period
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None and t.datetime_start is not None:  # died before its first heartbeat
                beat = t.datetime_start.timestamp()  # naive local time, as the journal replays it
            if beat is not None and beat < limit:
                stale.append(t._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self.failed_trial_callback


def _check_heartbeat(heartbeat_interval: int, grace_period: int) -> None:
    if not isinstance(heartbeat_interval, int) or heartbeat_interval < 1:
        raise ValueError(f"heartbeat_interval must be a whole number of seconds >= 1, got {heartbeat_interval!r}")
    if not isinstance(grace_period, int) or grace_period <= heartbeat_interval:
        raise ValueError(f"grace_period must be whole seconds above heartbeat_interval ({heartbeat_interval}), "
                         f"got {grace_period!r}")


def _redis_parts(storage_url: str) -> tuple[str, str]:
    parts = urlsplit(storage_url)
    query = parse_qs(parts.query)
    key = (query.pop("key", [None]) or [None])[0]
    if not key:
        raise ValueError(f"a journal+redis storage URL needs ?key=<list key>: {storage_url!r}")
    rest = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
    return urlunsplit((parts.scheme.removeprefix("journal+"), parts.netloc, parts.path, rest, "")), key


def make_storage(storage_url: str, *, heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                 grace_period: int = DEFAULT_GRACE_PERIOD_S) -> BaseStorage:
    """The storage behind ``storage_url`` (module docstring), with heartbeats and a single
    retry of trials whose worker died. Raises ValueError for an unknown scheme."""
    _check_heartbeat(heartbeat_interval, grace_period)
    with quiet():
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
        if storage_url.startswith("journal+redis"):
            url, key = _redis_parts(storage_url)
            backend: BaseJournalBackend = RedisListBackend(url, key)
        elif storage_url.startswith("journal+file://"):
            path = storage_url[len("journal+file://"):]
            backend = FileBackend(path)
        elif storage_url.startswith(("sqlite", "postgresql")):
            engine_kwargs: dict[str, Any] = ({"connect_args": {"timeout": 60}} if storage_url.startswith("sqlite")
                                             else {"pool_pre_ping": True})
            return RDBStorage(storage_url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                              grace_period=grace_period, heartbeat_stale_trial_callback=retry)
        else:
            raise ValueError(f"unknown optuna storage URL {storage_url.split(':', 1)[0]!r}: use journal+redis://, "
                             f"journal+file://, sqlite:// or postgresql+psycopg://")
        return HeartbeatJournalStorage(backend, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                       failed_trial_callback=retry)


def dispose_storage(storage: BaseStorage) -> None:
    """Close pooled connections now rather than at garbage collection (and before forking)."""
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()
    if isinstance(backend, RedisListBackend):
        backend.close()


def delete_storage(storage_url: str) -> None:
    """Remove a journal (the Redis list or the file) once nothing needs its studies; RDB
    storages are left alone (their studies share tables with other runs)."""
    if storage_url.startswith("journal+redis"):
        url, key = _redis_parts(storage_url)
        backend = RedisListBackend(url, key)
        backend.delete()
        backend.close()
    elif storage_url.startswith("journal+file://"):
        path = storage_url[len("journal+file://"):]
        if os.path.exists(path):
            os.remove(path)
