"""Benchmark: the trading loop (issue 11 targets).

1. An engine tick over 100 active paper deployments (one pass of `engine_tick_all`, the beat's
   body, run in this one process): target ≤ 1 s.
2. Signal-to-order on paper: the time from the start of a deployment's tick (candles loaded,
   signals computed, engine stepped, risk_check, order stored) to its order row, p95 over the
   ticks that placed an order: target ≤ 50 ms.
3. Replay of one year of one-minute bars (525,600 bars) through the trading loop with the
   PaperBroker: the service on loaded bars, and `run_trading --replay` from PostgreSQL:
   target ≤ 10 s.

SYNTHETIC data (a seeded random walk, not market data) in a throw-away PostgreSQL database.

    .venv/bin/python bench/bench_trading.py [--deployments 100] [--ticks 20] [--database-url ...] [--json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import django_on_fresh_database  # noqa: E402
from bench_marketdata import drop_database, synthetic  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tradepulse_bench_trading"
MIN = 60_000
YEAR_BARS = 525_600


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=20, help="Bars (one tick each) measured for signal-to-order.")
    parser.add_argument("--replay-bars", type=int, default=YEAR_BARS)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_TRADING_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import logging

    django_on_fresh_database(args.database_url)
    logging.disable(logging.INFO)  # audit/info lines would time the terminal, not the loop
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.marketdata import services as md
    from apps.strategies.services import config_create
    from apps.trading import services
    from apps.trading.models import Mode, Order
    from apps.trading.services.replay import replay
    from quant.engine import EngineConfig
    from quant.strategies import Bars

    out: dict = {}
    try:
        call_command("migrate", verbosity=0)
        owner = get_user_model().objects.create_user("bench", password="bench-password-1")
        exchange = md.exchange_get_or_create(name="Synthetic bench")
        now = int(time.time() * 1000)
        history = 1_200
        start = now - now % MIN - history * MIN
        candles = synthetic(history + args.ticks + 2, start)
        market = md.market_get_or_create_for_import(exchange=exchange, symbol="SYN/USD", amount_step="0.0001",
                                                    price_step="0.01")
        md.candles_ingest(market=market, timeframe="1m", rows=_part(candles, 0, history), source="bench")
        account = services.account_create(owner=owner, name="Paper", exchange=exchange, mode=Mode.PAPER,
                                          paper_balance=Decimal(10 ** 9), paper_currency="USD", reason="bench")
        deployments = []
        for k in range(args.deployments):
            # fast crossings so that many ticks place orders
            config = config_create(owner=owner, strategy_key="sma_cross", market=market, timeframe="1m",
                                   parameters={"fast": 2 + k % 3, "slow": 5 + k % 4}, name=f"bench {k}",
                                   execution={"fee": 0.001, "slippage": 0.0005, "stop_loss": 0.01})
            d = services.deployment_create(owner=owner, config=config, account=account, capital=Decimal(10_000),
                                           reason="bench")
            deployments.append(services.deployment_activate(deployment=d, reason="bench"))
        # first pass: every deployment acts on its newest closed bar (warms numba and caches)
        services.engine_tick_all(now_ms=start + history * MIN + 1_000, fetch=False)

        pass_times, pass_cpu, order_ticks, all_ticks = [], [], [], []
        for j in range(args.ticks):
            k = history + j
            md.candles_ingest(market=market, timeframe="1m", rows=_part(candles, k, k + 1), source="bench")
            orders_before = Order.objects.count()
            t0, c0 = time.perf_counter(), time.process_time()
            due = services.deployments_due(start + (k + 1) * MIN + 1_000)
            for d in due:
                before = Order.objects.filter(deployment=d).count()
                t1 = time.perf_counter()
                result = services.deployment_tick_safely(deployment=d, now_ms=start + (k + 1) * MIN + 1_000,
                                                         fetch=False)
                elapsed = time.perf_counter() - t1
                all_ticks.append(elapsed)
                if result.get("orders") and Order.objects.filter(deployment=d).count() > before:
                    order_ticks.append(elapsed)
            pass_times.append(time.perf_counter() - t0)  # includes the per-deployment order counts
            pass_cpu.append(time.process_time() - c0)
            out.setdefault("orders_per_pass", []).append(Order.objects.count() - orders_before)
        out["deployments"] = args.deployments
        out["tick_pass_s"] = {"median": _q(pass_times, 50), "max": max(pass_times), "passes": len(pass_times),
                              "cpu_median": _q(pass_cpu, 50)}
        out["load_average"] = os.getloadavg()
        out["tick_per_deployment_ms"] = {"median": _q(all_ticks, 50) * 1e3, "p95": _q(all_ticks, 95) * 1e3}
        out["signal_to_order_ms"] = {"p50": _q(order_ticks, 50) * 1e3, "p95": _q(order_ticks, 95) * 1e3,
                                     "ticks_with_orders": len(order_ticks)}

        # 3. replay of one year of 1m bars
        year = synthetic(args.replay_bars, 1_577_836_800_000, seed=11)
        rmarket = md.market_get_or_create_for_import(exchange=exchange, symbol="YEAR/USD", amount_step="0.0001")
        md.candles_ingest(market=rmarket, timeframe="1m", rows=year, source="bench")
        bars = Bars(year.time, year.open, year.high, year.low, year.close, year.volume, "1m")
        cfg = EngineConfig(fee=0.001, slippage=0.0005, stop_loss=0.02, take_profit=0.04, amount_step=0.0001)
        replay(bars[:5000], "sma_cross", {"fast": 10, "slow": 30}, cfg)  # warm-up
        t0 = time.perf_counter()
        result = replay(bars, "sma_cross", {"fast": 10, "slow": 30}, cfg)
        out["replay_service_s"] = time.perf_counter() - t0
        out["replay_trades"] = len(result.trades)
        out["replay_timings"] = result.timings
        t0 = time.perf_counter()
        buf = io.StringIO()
        call_command("run_trading", "--replay", "--strategy", "sma_cross", "--params", '{"fast": 10, "slow": 30}',
                     "--exchange", "synthetic-bench", "--symbol", "YEAR/USD", "--timeframe", "1m",
                     "--stop-loss", "0.02", "--take-profit", "0.04", "--slippage", "0.0005", "--json", stdout=buf)
        out["replay_command_s"] = time.perf_counter() - t0
        out["replay_command_trades"] = len(json.loads(buf.getvalue())["trades"])
        out["replay_bars"] = args.replay_bars
        out["targets"] = {"tick_pass_s": 1.0, "signal_to_order_p95_ms": 50.0, "replay_s": 10.0}
        _ = np
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.database_url)
    if args.json:
        print(json.dumps(out, default=float))
    else:
        print(f"engine tick over {out['deployments']} paper deployments: median {out['tick_pass_s']['median']:.3f} s, "
              f"max {out['tick_pass_s']['max']:.3f} s per pass (target <= 1 s); this process's CPU per pass "
              f"{out['tick_pass_s']['cpu_median']:.3f} s; per deployment median "
              f"{out['tick_per_deployment_ms']['median']:.1f} ms; load average {out['load_average'][0]:.1f}")
        print(f"signal-to-order on paper: p50 {out['signal_to_order_ms']['p50']:.1f} ms, p95 "
              f"{out['signal_to_order_ms']['p95']:.1f} ms over {out['signal_to_order_ms']['ticks_with_orders']} "
              "ticks with an order (target p95 <= 50 ms)")
        print(f"replay of {out['replay_bars']:,} 1m bars: service {out['replay_service_s']:.2f} s "
              f"({out['replay_trades']} trades), run_trading --replay from PostgreSQL {out['replay_command_s']:.2f} s "
              "(target <= 10 s)")
    return out


def _part(c, lo, hi):
    from apps.marketdata.arrays import CandleArrays

    return CandleArrays(c.time[lo:hi], c.open[lo:hi], c.high[lo:hi], c.low[lo:hi], c.close[lo:hi], c.volume[lo:hi],
                        timeframe="1m")


def _q(values, pct):
    import numpy as np

    return float(np.percentile(values, pct)) if values else float("nan")


if __name__ == "__main__":
    main()
