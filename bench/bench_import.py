"""Benchmark of CSV import against the store's own ingest rate (issue 9: within 2×).

Data is SYNTHETIC: a seeded random walk of one-minute bars written to a temporary CSV file
(epoch ms, and a second file with ISO-8601 times) — not market data.

    .venv/bin/python bench/bench_import.py                 # PostgreSQL on 127.0.0.1, own database
    .venv/bin/python bench/bench_import.py --rows 1000000 --json

Prints the store's ingest rate (numpy arrays straight into candles_ingest), the CSV import rate
(`manage.py import_candles`' service: read, parse, validate, store, audit) and their ratio.
Target: the CSV path at least half the store's rate.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_marketdata import drop_database, recreate_database, synthetic  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tradepulse_bench_import"


def write_csv(path: Path, rows, iso: bool) -> None:
    import numpy as np
    import pandas as pd

    times = (pd.to_datetime(rows.time, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ") if iso
             else rows.time.astype(str))
    frame = pd.DataFrame({"timestamp": np.asarray(times), "open": rows.open, "high": rows.high, "low": rows.low,
                          "close": rows.close, "volume": rows.volume})
    frame.to_csv(path, index=False, float_format="%.8g")


def run(args) -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.marketdata import services

    results: dict = {"data": "synthetic", "rows": args.rows}
    source = services.exchange_get_or_create(name="Bench synthetic")
    rows = synthetic(args.rows)

    store = services.market_get_or_create_for_import(exchange=source, symbol="STORE/USD")
    t = time.perf_counter()
    assert services.candles_ingest(market=store, timeframe="1m", rows=rows, source="bench").stored == args.rows
    results["store_rows_per_s"] = round(args.rows / (time.perf_counter() - t))

    with tempfile.TemporaryDirectory() as tmp:
        for label, iso in (("csv_epoch_ms", False), ("csv_iso", True)):
            path = Path(tmp) / f"{label}.csv"
            write_csv(path, rows, iso)
            t = time.perf_counter()
            report = services.candles_import_csv(path=path, exchange_name="Bench synthetic",
                                                 symbol=f"{label.upper().replace('_', '')}/USD", timeframe="1m")
            seconds = time.perf_counter() - t
            assert report.rows_stored == args.rows, report.reasons[:3]
            results[f"{label}_s"] = round(seconds, 2)
            results[f"{label}_rows_per_s"] = round(args.rows / seconds)
            results[f"{label}_vs_store"] = round(results["store_rows_per_s"] / results[f"{label}_rows_per_s"], 2)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_IMPORT_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        recreate_database(args.database_url)
    except Exception as exc:  # no server: say so, do not fail `make bench`
        print(f"bench_import: skipped, PostgreSQL not reachable ({exc})")
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
        drop_database(args.database_url)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.rows:,} synthetic 1m candles")
    print(f"  store (candles_ingest, COPY)   {results['store_rows_per_s']:>10,} rows/s")
    for label in ("csv_epoch_ms", "csv_iso"):
        print(f"  {label:<30} {results[f'{label}_rows_per_s']:>10,} rows/s  ({results[f'{label}_s']} s, "
              f"{results[f'{label}_vs_store']}× slower than the store; target ≤ 2×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
