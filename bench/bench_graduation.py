"""Benchmark: one pass of the graduation evaluation (`configs_evaluate_all`, the beat's body).

N configs in automatic research stages, each with a typed training out-of-sample evidence row
(half pass the discovery → validation policy), plus P configs in the paper stage with an active
paper deployment and a day of hourly equity snapshots. Timed: the first pass (writes a decision
per config: promotions, holds, deployments started on promotion to paper), then passes until
one writes nothing (a config promoted in one pass is held or promoted again in its new stage by
the next); the last pass is the steady-state cost of a beat. No target is set for it; the figures say what one beat costs.

SYNTHETIC evidence and equity (built here, not market results) in a throw-away PostgreSQL database.

    .venv/bin/python bench/bench_graduation.py [--configs 300] [--paper 30] [--database-url ...] [--json]
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import django_on_fresh_database  # noqa: E402
from bench_marketdata import drop_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tradepulse_bench_graduation"


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=300)
    parser.add_argument("--paper", type=int, default=30)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_GRADUATION_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true", help="Print the first pass's top functions (cProfile).")
    args = parser.parse_args()

    import logging

    django_on_fresh_database(args.database_url)
    logging.disable(logging.INFO)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from apps.graduation.models import GraduationDecision
    from apps.graduation.services import configs_evaluate_all
    from apps.marketdata import services as md
    from apps.strategies.services import config_create, config_evidence_record
    from apps.trading import services as trading
    from apps.trading.models import Deployment, ExchangeAccount, PortfolioSnapshot

    out: dict = {}
    try:
        call_command("migrate", verbosity=0)
        owner = get_user_model().objects.create_user("bench", password="bench-password-1")
        exchange = md.exchange_get_or_create(name="Synthetic bench")
        market = md.market_get_or_create_for_import(exchange=exchange, symbol="SYN/USD", amount_step="0.0001",
                                                    price_step="0.01")
        trading.account_create(owner=owner, name="Paper", exchange=exchange, mode="paper",
                               paper_balance=Decimal(10 ** 9), paper_currency="USD", reason="bench")
        period = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))
        for k in range(args.configs):
            stage = "discovery" if k % 2 == 0 else "validation"
            config = config_create(owner=owner, strategy_key="sma_cross", market=market, timeframe="1h",
                                   parameters={"fast": 5 + k % 7, "slow": 30 + k % 11}, name=f"bench {k}", stage=stage)
            passing = k % 4 < 2
            config_evidence_record(config=config, source="training_oos", period_start=period[0],
                                   period_end=period[1], trades=80, sharpe=1.3, max_drawdown=0.12,
                                   total_return=0.2, oos_sharpe=1.2 if passing else 0.2, dsr=0.97, pbo=0.1)
        now = timezone.now()
        account = ExchangeAccount.objects.get(owner=owner, name="Paper")
        for k in range(args.paper):
            config = config_create(owner=owner, strategy_key="sma_cross", market=market, timeframe="1h",
                                   parameters={"fast": 5, "slow": 30}, name=f"paper {k}", stage="paper")
            d = trading.deployment_create(owner=owner, config=config, account=account, capital=Decimal(1000),
                                          reason="bench")
            trading.deployment_activate(deployment=d, reason="bench")
            PortfolioSnapshot.objects.bulk_create(
                PortfolioSnapshot(deployment=d, account=account, time=now - timedelta(hours=24 - h),
                                  equity=Decimal(1000 + (h % 5) * 3 - (40 if k % 10 == 0 and h > 20 else 0)),
                                  cash=Decimal(1000), positions_value=Decimal(0)) for h in range(24))
        total = args.configs + args.paper
        # Passes until one writes nothing: a config promoted in one pass is held (or promoted again) in
        # its new stage by the next, so the pipeline settles in a few passes.
        for n in range(1, 6):
            label = f"pass_{n}"
            profiler = cProfile.Profile() if args.profile and n == 1 else None
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            decisions = configs_evaluate_all()
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            elapsed = time.perf_counter() - t0
            out[label] = {"configs": total, "decisions": len(decisions), "seconds": round(elapsed, 3),
                          "ms_per_config": round(1000 * elapsed / total, 2)}
            if not decisions:
                break
        out["decisions_stored"] = GraduationDecision.objects.count()
        out["deployments_started"] = Deployment.objects.filter(config__name__startswith="bench").count()
    finally:
        connection.close()
        drop_database(args.database_url)
    if args.json:
        print(json.dumps(out))
    else:
        for label in [k for k in out if k.startswith("pass_")]:
            r = out[label]
            print(f"{label}: {r['configs']} configs, {r['decisions']} decisions in {r['seconds']} s "
                  f"({r['ms_per_config']} ms/config)")
        print(f"decisions stored: {out['decisions_stored']}, paper deployments started on promotion: "
              f"{out['deployments_started']}")
    return out


if __name__ == "__main__":
    main()
