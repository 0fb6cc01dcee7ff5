"""Benchmark of the market-data store: ingest, numpy read, simulator download, coverage.

Data is SYNTHETIC: a seeded random walk of one-minute bars (ingest, read, coverage) and the
local exchange simulator's generated candles (download) — not market data.

    .venv/bin/python bench/bench_marketdata.py              # PostgreSQL on 127.0.0.1, own database
    .venv/bin/python bench/bench_marketdata.py --json
    .venv/bin/python bench/bench_marketdata.py --database-url postgres://user@host:5432/tradepulse_bench

The benchmark creates the database named in the URL (default tradepulse_bench), migrates it,
and drops it at the end (--keep to keep it). Targets (issue 3): ingest >= 300,000 rows/s,
1,000,000 candles to numpy <= 0.3 s, download >= 20,000 candles/s, coverage and gaps of
5,000,000 candles <= 200 ms. Times are the best of several repetitions unless noted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tradepulse_bench"
START_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MINUTE = 60_000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--rows", type=int, default=1_000_000, help="candles for ingest and read")
    parser.add_argument("--coverage-rows", type=int, default=5_000_000)
    parser.add_argument("--download-candles", type=int, default=200_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    return urlunsplit(parts._replace(path="/postgres", scheme="postgresql")), name


def recreate_database(url: str) -> None:
    import psycopg

    admin, name = admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    admin, name = admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def synthetic(n: int, start_ms: int = START_MS, seed: int = 7, holes: int = 0):
    """n one-minute bars (synthetic random walk); `holes` random bars left out."""
    import numpy as np

    from apps.marketdata.arrays import CandleArrays

    rng = np.random.default_rng(seed)
    total = n + holes
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, total)))
    opens = np.r_[close[0], close[:-1]]
    high = np.maximum(opens, close) * (1 + rng.exponential(0.0004, total))
    low = np.minimum(opens, close) * (1 - rng.exponential(0.0004, total))
    volume = rng.lognormal(2, 1, total)
    times = start_ms + np.arange(total, dtype=np.int64) * MINUTE
    keep = np.ones(total, dtype=bool)
    if holes:
        keep[(np.arange(holes) + 1) * (total // (holes + 1))] = False  # spaced: each hole is its own gap
    return CandleArrays(times[keep], opens[keep], high[keep], low[keep], close[keep], volume[keep], timeframe="1m")


def best(fn, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(args) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from apps.marketdata import selectors, services
    from apps.marketdata.models import Exchange, Market
    from tests.exchange_sim import running_simulator

    results: dict = {"database": connection.vendor, "data": "synthetic"}
    file_source = services.exchange_get_or_create(name="Bench synthetic")
    market = services.market_get_or_create_for_import(exchange=file_source, symbol="SYN/USD")

    # 1. ingest
    rows = synthetic(args.rows)
    t = time.perf_counter()
    res = services.candles_ingest(market=market, timeframe="1m", rows=rows, source="bench")
    ingest_s = time.perf_counter() - t
    assert res.stored == args.rows, res.stored
    results["ingest_rows"] = args.rows
    results["ingest_s"] = round(ingest_s, 3)
    results["ingest_rows_per_s"] = round(args.rows / ingest_s)
    t = time.perf_counter()
    res = services.candles_ingest(market=market, timeframe="1m", rows=rows, source="bench")
    again_s = time.perf_counter() - t
    results["reingest_unchanged_rows_per_s"] = round(args.rows / again_s)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE marketdata_candle")

    # 2. read into numpy: the first read builds the block cache from the table, later reads use it
    from apps.marketdata import storage

    t = time.perf_counter()
    arrays = selectors.candles_as_arrays(market, "1m")
    results["read_first_s"] = round(time.perf_counter() - t, 3)
    assert len(arrays) == args.rows and (arrays.time == rows.time).all() and (arrays.close == rows.close).all()
    results["read_rows"] = args.rows
    results["read_s"] = round(best(lambda: selectors.candles_as_arrays(market, "1m")), 3)
    results["read_table_copy_s"] = round(best(lambda: storage.read_rows(market.pk, "1m", None, None), repeat=3), 3)

    # 3. download from the local simulator, end to end (ccxt, validation, store)
    owner, _ = get_user_model().objects.get_or_create(username="bench")
    now = START_MS + 5 * 365 * 86_400_000
    with running_simulator(now=now) as sim:
        settings.CCXT_OVERRIDES = sim.ccxt_overrides()
        binance = Exchange.objects.get(code="binance")
        services.exchange_load_markets(exchange=binance)
        btc = Market.objects.get(exchange=binance, symbol="BTC/USDT")
        job = services.download_start(owner=owner, market=btc, timeframe="1m", start_ms=now - args.download_candles * MINUTE,
                                      end_ms=now, enqueue=False)
        t = time.perf_counter()
        job = services.download_run(job_id=job.pk)
        download_s = time.perf_counter() - t
        assert job.state == "succeeded", job.error
    results["download_candles"] = job.rows_stored
    results["download_s"] = round(download_s, 3)
    results["download_candles_per_s"] = round(job.rows_stored / download_s)

    # 4. coverage and gaps of 5,000,000 candles with planted holes
    wide = services.market_get_or_create_for_import(exchange=file_source, symbol="WIDE/USD")
    holes = 1000
    chunk = 1_000_000
    big = synthetic(args.coverage_rows, seed=11, holes=holes)
    t = time.perf_counter()
    for i in range(0, len(big), chunk):
        services.candles_ingest(market=wide, timeframe="1m", rows=big.take(slice(i, i + chunk)), source="bench")
    results["coverage_ingest_rows_per_s"] = round(len(big) / (time.perf_counter() - t))
    cov = selectors.coverage_for_market(wide, "1m")
    assert cov.candles == args.coverage_rows and len(cov.gaps) == holes, (cov.candles, len(cov.gaps))
    results["coverage_candles"] = cov.candles
    results["coverage_gaps"] = len(cov.gaps)
    results["coverage_s"] = round(best(lambda: selectors.coverage_for_market(wide, "1m")), 4)
    results["coverage_all_series_s"] = round(best(lambda: selectors.coverage_list()), 4)
    t = time.perf_counter()
    rebuilt = storage.coverage_from_candles(wide.pk, "1m")
    results["coverage_rebuild_from_candles_s"] = round(time.perf_counter() - t, 3)
    assert rebuilt == cov.ranges
    return results


TARGETS = {"ingest_rows_per_s": (">=", 300_000), "read_s": ("<=", 0.3), "download_candles_per_s": (">=", 20_000),
           "coverage_s": ("<=", 0.2)}


def main() -> int:
    args = parse_args()
    if not args.database_url.startswith("postgres"):
        print("bench_marketdata needs PostgreSQL (--database-url postgres://...)", file=sys.stderr)
        return 2
    try:
        recreate_database(args.database_url)
    except Exception as exc:  # no server: say so, do not fail `make bench` on a machine without PostgreSQL
        print(f"bench_marketdata: skipped, PostgreSQL not reachable ({exc})")
        return 0
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradepulse.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    try:
        results = run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.database_url)
    if args.json:
        print(json.dumps(results))
        return 0
    print("market data benchmark (PostgreSQL, synthetic data)")
    labels = {
        "ingest_rows_per_s": f"ingest {results['ingest_rows']:,} candles (validate + COPY upsert + coverage)",
        "reingest_unchanged_rows_per_s": "re-ingest the same candles (ON CONFLICT, nothing changed)",
        "read_s": f"load {results['read_rows']:,} candles into numpy (candles_as_arrays, cached blocks)",
        "read_first_s": "  the first load after a write (rebuilds the block cache from the table)",
        "read_table_copy_s": "  the same straight from the candle table (binary COPY, no cache)",
        "download_candles_per_s": f"download {results['download_candles']:,} candles from the simulator (ccxt, end to end)",
        "coverage_s": f"coverage + gaps of {results['coverage_candles']:,} candles ({results['coverage_gaps']} gaps)",
        "coverage_all_series_s": "coverage + gaps of every series (coverage_list)",
        "coverage_rebuild_from_candles_s": "coverage rebuilt from the candles (window query, the authority)",
        "coverage_ingest_rows_per_s": "ingest of the 5M-candle series in 1M chunks",
    }
    for key, label in labels.items():
        value = results[key]
        unit = "rows/s" if key.endswith("per_s") else "s"
        target = TARGETS.get(key)
        mark = ""
        if target:
            op, limit = target
            ok = value >= limit if op == ">=" else value <= limit
            mark = f"  target {op} {limit:,}  {'OK' if ok else 'MISSED'}"
        print(f"  {label:<78} {value:>12,} {unit}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
