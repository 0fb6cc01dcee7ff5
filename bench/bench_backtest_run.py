"""Benchmark: one whole backtest run, from candles in PostgreSQL to the stored result.

1,000,000 SYNTHETIC one-minute bars (a seeded random walk, not market data), sma_cross 10/30
with stop-loss 2 %, take-profit 4 %, fee 0.1 %, slippage 0.05 %. Measures the service the
worker runs (`backtest_execute`: load → signals → engine → metrics → store trades and equity)
after one warm-up run (numba compiles on first use). Target (issue 4): ≤ 1 s.

    .venv/bin/python bench/bench_backtest_run.py [--bars 1000000] [--database-url ...] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import django_on_fresh_database  # noqa: E402
from bench_marketdata import drop_database, synthetic  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tradepulse_bench_backtest"
START_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_BACKTEST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    django_on_fresh_database(args.database_url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.backtests import services
    from apps.marketdata import services as md

    try:
        call_command("migrate", verbosity=0)
        owner = get_user_model().objects.create_user("bench", password="bench-password-1")
        exchange = md.exchange_get_or_create(name="Synthetic bench")
        market = md.market_get_or_create_for_import(exchange=exchange, symbol="SYN/USD", amount_step="0.0001")
        md.candles_ingest(market=market, timeframe="1m", rows=synthetic(args.bars, START_MS), source="bench")
        end_ms = START_MS + args.bars * 60_000

        def one_run() -> tuple[float, object]:
            run = services.backtest_create(
                owner=owner, market=market, timeframe="1m", strategy_key="sma_cross",
                parameters={"fast": 10, "slow": 30}, start=datetime.fromtimestamp(START_MS / 1000, tz=UTC),
                end=datetime.fromtimestamp(end_ms / 1000, tz=UTC), fee=0.001, slippage=0.0005, stop_loss=0.02,
                take_profit=0.04, amount_step=0.0001, enqueue=False)
            t0 = time.perf_counter()
            services.backtest_execute(run.pk)
            elapsed = time.perf_counter() - t0
            run.refresh_from_db()
            assert run.state == "succeeded", run.error
            return elapsed, run

        one_run()  # warm-up: numba compiles the engine and indicators
        times, last = [], None
        for _ in range(args.repeat):
            elapsed, last = one_run()
            times.append(elapsed)
        # The command line's own figure: `manage.py backtest --json` (same service, nothing stored),
        # warm (the runs above compiled everything), reporting its timings.total_s.
        command_totals = []
        for _ in range(args.repeat):
            out = StringIO()
            call_command("backtest", "--strategy", "sma_cross", "--params", '{"fast": 10, "slow": 30}',
                         "--exchange", exchange.code, "--symbol", "SYN/USD", "--timeframe", "1m",
                         "--start", str(START_MS), "--end", str(end_ms), "--fee", "0.001", "--slippage", "0.0005",
                         "--stop-loss", "0.02", "--take-profit", "0.04", "--json", stdout=out)
            command_totals.append(json.loads(out.getvalue())["timings"]["total_s"])
        result = {
            "bars": args.bars, "data": "synthetic random walk",
            "command_total_s_best": min(command_totals), "command_total_s_all": command_totals,
            "run_s_best": round(min(times), 3), "run_s_all": [round(t, 3) for t in times],
            "stage_timings_s": last.timings, "trades": last.metrics["trade_count"],
            "target_s": 1.0, "meets_target": min(times) <= 1.0,
        }
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.database_url)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"whole backtest run, {args.bars:,} synthetic 1m bars, sma_cross with SL/TP, fee and slippage")
        print(f"  database → stored result: best {result['run_s_best']:.3f} s of {result['run_s_all']} "
              f"(target ≤ 1 s: {'met' if result['meets_target'] else 'NOT met'})")
        print(f"  manage.py backtest --json: total_s best {result['command_total_s_best']:.3f} s of "
              f"{result['command_total_s_all']} (target ≤ 1 s)")
        print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (the machine is shared)")
        print("  stages (last run): " + "  ".join(f"{k} {v:.3f}s" for k, v in result["stage_timings_s"].items()))
        print(f"  trades stored: {result['trades']:,}")
    return result


if __name__ == "__main__":
    main()
