"""Benchmark of training: walk-forward optimisation of sma_cross (one optuna study per fold plus
the final study), 1 vs 2 workers, on each optuna storage.

Data is SYNTHETIC: a seeded geometric random walk of one-minute bars (bench_engine's
generator), not market data.

    .venv/bin/python bench/bench_training.py                     # 525,600 bars, 5 folds × 200 trials
    .venv/bin/python bench/bench_training.py --storage journal-redis journal-file postgres --workers 2
    .venv/bin/python bench/bench_training.py --trials 50 --json

Target (issue 8): 5 folds × 200 trials each on one year of 1m bars with 2 workers <= 60 s.
A run has folds + 1 studies (the final one chooses the offered parameters), so the default
run is 6 × 200 = 1,200 trials. Storages: ``journal-redis`` (a Redis list on 127.0.0.1:6379
database 15, the production choice), ``journal-file`` (the embedded choice), ``postgres``
(optuna's RDBStorage in a throwaway database ``tradepulse_optuna_bench_<pid>``, created and
dropped here; user from PGUSER) and ``sqlite``. "Optimise" is the wall time from creating the
studies until each holds the requested number of complete + pruned trials (worker start-up
included); "validate" is the walk-forward OOS test, the hold-out, stability, DSR and PBO that
follow, reported separately. Numba's
compiled functions are loaded once before timing. "worker CPU" is the CPU time (user + sys)
of this process and its worker processes per trial, validation included: if it stays flat
from 1 to 2 workers, the work divides and any shortfall of the speed-up comes from cores
shared with PostgreSQL and whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import synthetic_bars  # noqa: E402

from quant.engine import EngineConfig  # noqa: E402
from quant.optimisation import Evaluator, train  # noqa: E402
from quant.optimisation.storage import delete_storage, journal_file_url, journal_redis_url  # noqa: E402
from quant.optimisation.walkforward import Window  # noqa: E402

DB_NAME = f"tradepulse_optuna_bench_{os.getpid()}"  # per run: two benches must not drop each other's
CONFIG = EngineConfig(cash=10_000.0, fee=0.0005, slippage=0.0002)


def _admin_conninfo() -> str:
    user = os.environ.get("PGUSER", "postgres")
    return f"host=127.0.0.1 port=5432 user={user} dbname=postgres connect_timeout=3"


def postgres_storage() -> tuple[str, Callable[[], None]]:
    """Create the throwaway database; return its SQLAlchemy URL and a drop function."""
    import psycopg

    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    user = os.environ.get("PGUSER", "postgres")

    def drop() -> None:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")

    return f"postgresql+psycopg://{user}@127.0.0.1:5432/{DB_NAME}", drop


def _cpu_seconds() -> float:
    """CPU time (user + sys) of this process and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def redis_storage() -> tuple[str, Callable[[], None]]:
    """A journal in Redis database 15 under a key unique to this run; returns it and a delete."""
    key = f"tradepulse:bench:{os.getpid()}:{time.time_ns()}"
    url = journal_redis_url("redis://127.0.0.1:6379/15", key)
    return url, lambda: delete_storage(url)


def file_storage() -> tuple[str, Callable[[], None]]:
    tmp = tempfile.mkdtemp(prefix="bench-training-")
    url = journal_file_url(f"{tmp}/optuna.log")
    return url, lambda: delete_storage(url)


def run_once(bars, storage_url: str, workers: int, trials: int, folds: int, seed: int) -> dict:
    cpu_before = _cpu_seconds()
    result = train(bars, strategy_key="sma_cross", engine_config=CONFIG, objective="sharpe", min_trades=10,
                   sampler="tpe", n_trials=trials, seed=seed, folds=folds, scheme="rolling", holdout_share=0.2,
                   storage_url=storage_url, study_name=f"bench-{workers}w-{time.time_ns()}",
                   n_workers=workers, top_n=5).to_dict()
    cpu = _cpu_seconds() - cpu_before
    optimise = result["timings"]["optimise_s"]
    done = result["trials"]["complete"] + result["trials"]["pruned"]
    return {
        "worker_cpu_seconds_per_trial": cpu / done,
        "workers": workers,
        "studies": len(result["studies"]),
        "trials_total": done,
        "optimise_seconds": optimise,
        "validate_seconds": result["timings"]["validate_s"],
        "trials_complete": result["trials"]["complete"],
        "trials_pruned": result["trials"]["pruned"],
        "trials_invalid": result["trials"]["invalid"],
        "trials_per_s": done / optimise,
        "discarded": sum(w["discarded"] for w in result["workers"]),
        "best": result["best"],
        "verdict": result["verdict"]["text"],
        "walkforward_efficiency": result["walkforward"]["efficiency"],
        "in_sample_bars": result["walkforward"]["in_sample_bars"],
        "out_of_sample_bars": result["walkforward"]["out_of_sample_bars"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=525_600, help="one-minute bars (default: one year)")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--storage", nargs="+", default=["journal-redis"],
                        choices=["journal-redis", "journal-file", "postgres", "sqlite"])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    bars = synthetic_bars(args.bars)
    warm = Evaluator(bars[:5000], "sma_cross", CONFIG)  # load the compiled functions before timing
    warm.metrics({"fast": 10, "slow": 30}, Window(600, 5000, 501))

    makers = {"journal-redis": redis_storage, "journal-file": file_storage, "postgres": postgres_storage,
              "sqlite": lambda: (f"sqlite:///{tempfile.mkdtemp(prefix='bench-training-')}/optuna.db",
                                 lambda: None)}
    runs = []
    for storage in args.storage:
        for w in args.workers:
            storage_url, drop = makers[storage]()  # a fresh storage per run: no replay of earlier runs
            try:
                runs.append({"storage": storage, **run_once(bars, storage_url, w, args.trials, args.folds,
                                                            args.seed)})
            finally:
                drop()
    storage_label = ", ".join(args.storage)

    first = args.storage[0]
    by_workers = {r["workers"]: r for r in runs if r["storage"] == first}
    ratio = (by_workers[2]["trials_per_s"] / by_workers[1]["trials_per_s"]
             if 1 in by_workers and 2 in by_workers else None)
    figures = {
        "data": f"SYNTHETIC seeded random walk, {args.bars:,} one-minute bars",
        "setup": f"sma_cross, TPE seed {args.seed}, {args.folds} rolling folds + final study × {args.trials} "
                 f"trials, 20% hold-out, objective sharpe, fee 0.05%, slippage 0.02%",
        "storage": storage_label,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "runs": runs,
        "speedup_2_vs_1_workers": ratio,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"data      {figures['data']}")
    print(f"setup     {figures['setup']}")
    print(f"storage   {storage_label}; {figures['cpu_count']} CPUs; load average "
          f"{', '.join(f'{x:.2f}' for x in figures['load_average'])} (other work shares this machine)")
    for r in runs:
        print(f"{r['storage']:13s} {r['workers']} worker{'s' if r['workers'] > 1 else ' '}  "
              f"{r['trials_total']} trials in {r['studies']} studies  optimise {r['optimise_seconds']:7.1f} s  "
              f"{r['trials_per_s']:6.2f} trials/s  ({r['trials_complete']} complete, {r['trials_pruned']} pruned "
              f"of which {r['trials_invalid']} invalid, {r['discarded']} discarded)  "
              f"validate {r['validate_seconds']:5.1f} s  "
              f"worker CPU {r['worker_cpu_seconds_per_trial'] * 1e3:.0f} ms/trial")
    if ratio is not None:
        print(f"speed-up  {ratio:.2f} x trials/s with 2 workers vs 1 on {first} (ideal 2.00)")


if __name__ == "__main__":
    main()
