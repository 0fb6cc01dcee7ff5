"""Train a library strategy on stored candles by walk-forward optimisation: one optuna study per
fold on that fold's in-sample window, tested on its out-of-sample window, and a final study on
the whole optimisation range tested on the hold-out, with the overfitting statistics, printed
as a summary (or `--json`).

    manage.py train --user alice --strategy sma_cross --exchange binance --symbol BTC/USDT --timeframe 1h \\
        --start 2024-01-01 --end 2025-01-01 --trials 200 --folds 5 --holdout 0.2 --seed 7 --json

Creates a TrainingRun owned by `--user` through the same service as the dashboard and the API
(on the dashboard, audited with that user as the actor by way of this command), runs the same
job inline (with `--workers W`, W worker threads sharing the run's studies) and prints the
stored row: its result, its id (`saved_run`) and its state. The validated candidates become the
user's StrategyConfigs, as they do for a run started anywhere else. `--trials` is the budget of
EACH study (folds + 1 studies). Omitted options take the training defaults
(apps/training/options.py), the same as the API's and the form's.
"""
from __future__ import annotations

import contextvars
import threading
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection

from apps.marketdata.selectors import coverage_for_market, market_by_names
from apps.marketdata.timeframes import parse_time_ms
from apps.training import services
from apps.training.models import TrainingRun
from apps.training.options import DEFAULTS
from apps.training.serializers import TrainingRunSerializer
from quant.optimisation import OBJECTIVES, SAMPLERS
from tradepulse.core import context, jobrunner
from tradepulse.core.commands import TradePulseCommand
from tradepulse.core.jobs import JobState


class Command(TradePulseCommand):
    help = __doc__

    def add_options(self, parser):
        parser.add_argument("--user", "--save-as", dest="user", metavar="USER", required=True,
                            help="Who owns the run (and the configs it creates).")
        parser.add_argument("--strategy", required=True, help="Strategy key, e.g. sma_cross.")
        parser.add_argument("--exchange", required=True)
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--timeframe", required=True)
        parser.add_argument("--start", help="ISO date/time or epoch ms (UTC); default: first stored candle.")
        parser.add_argument("--end", help="Exclusive; default: after the last stored candle.")
        parser.add_argument("--name", default="")
        parser.add_argument("--trials", type=int, default=DEFAULTS.n_trials,
                            help="Trials of each study (one per fold + final).")
        parser.add_argument("--folds", type=int, default=DEFAULTS.folds)
        parser.add_argument("--scheme", choices=["rolling", "anchored"], default=DEFAULTS.scheme)
        parser.add_argument("--holdout", type=float, default=DEFAULTS.holdout_share,
                            help="Final share of the period kept out (fraction).")
        parser.add_argument("--objective", choices=list(OBJECTIVES), default=DEFAULTS.objective)
        parser.add_argument("--min-trades", type=int, default=DEFAULTS.min_trades)
        parser.add_argument("--sampler", choices=list(SAMPLERS), default=DEFAULTS.sampler)
        parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
        parser.add_argument("--workers", type=int, default=DEFAULTS.n_workers)
        parser.add_argument("--top", type=int, default=DEFAULTS.top_n, help="Candidates to validate.")
        parser.add_argument("--timeout", type=float, default=DEFAULTS.timeout_s,
                            help="Time budget per worker, seconds.")
        parser.add_argument("--fee", type=float, default=0.001, help="Fraction per side (0.001 = 0.1 %%).")
        parser.add_argument("--slippage", type=float, default=0.0)
        parser.add_argument("--allow-gaps", action="store_true",
                            help="Train through missing bars (listed in the result) instead of refusing the range.")

    def run(self, **o):
        user = get_user_model().objects.filter(username=o["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"--user: no user {o['user']!r}")
        market = market_by_names(o["exchange"], o["symbol"])
        start_ms = parse_time_ms(o["start"]) if o["start"] else None
        end_ms = parse_time_ms(o["end"]) if o["end"] else None
        if start_ms is None or end_ms is None:
            coverage = coverage_for_market(market, o["timeframe"])
            start_ms = coverage.first_ms if start_ms is None else start_ms
            end_ms = coverage.end_ms if end_ms is None else end_ms
            if start_ms is None or end_ms is None:
                raise CommandError(f"No candles stored for {market.symbol} {o['timeframe']}; download them first.")
        with context.acting(user_id=user.pk):
            run = services.training_create(
                owner=user, market=market, timeframe=o["timeframe"], start=_dt(start_ms), end=_dt(end_ms),
                strategy_key=o["strategy"], name=o["name"], objective=o["objective"], min_trades=o["min_trades"],
                sampler=o["sampler"], n_trials=o["trials"], timeout_s=o["timeout"], folds=o["folds"],
                scheme=o["scheme"], holdout_share=o["holdout"], seed=o["seed"], n_workers=o["workers"],
                top_n=o["top"], allow_gaps=o["allow_gaps"], fee=o["fee"], slippage=o["slippage"], enqueue=False)
            self.say(f"training #{run.pk} {run.strategy_key} on {market.exchange.code} {market.symbol} "
                     f"{run.timeframe}: {run.folds} folds + final study × {run.n_trials} trials, "
                     f"{run.n_workers} worker(s)")
            _run_workers(run)
        run = TrainingRun.objects.select_related("market__exchange", "owner").get(pk=run.pk)
        if run.state != JobState.SUCCEEDED:
            raise CommandError(f"training #{run.pk} {run.state}: {run.error or run.message}")
        summary = {**run.result, "saved_run": run.pk, "state": run.state, "owner": user.get_username(),
                   "run": TrainingRunSerializer(run).data}
        self._print(summary)
        return summary

    def _print(self, r):
        best, t = r["best"], r["trials"]
        self.say(f"trials: {t['count']} in {len(t['per_study'])} studies ({t['complete']} complete, "
                 f"{t['pruned']} pruned, {t['failed']} failed)")
        for fold in r["folds"]:
            ins, oos = (fold["in_sample"].get("metrics") or {}), (fold["out_of_sample"].get("metrics") or {})
            self.say(f"fold {fold['index']}: params {fold['params']}  IS sharpe {_n(ins.get('sharpe'))}  "
                     f"OOS sharpe {_n(oos.get('sharpe'))}  OOS trades {oos.get('trade_count', 'n/a')}  "
                     f"WFE {_n(fold['walkforward_efficiency'])}" + (f"  ({fold['penalty']})" if fold["penalty"] else ""))
        oos = r["out_of_sample"]
        self.say(f"walk-forward out of sample: sharpe {_n((oos['metrics'] or {}).get('sharpe'))}, "
                 f"{oos['positive_folds']} of {oos['n_folds']} folds profitable, efficiency "
                 f"{_n(oos['walkforward_efficiency'])}")
        if best:
            value = f"penalised ({best['penalty']})" if best["penalty"] else f"{r['objective']} {best['value']:.4f}"
            self.say(f"offered: final trial {best['number']} {best['params']} {value}")
        self.say(f"hold-out: sharpe {_n((r['holdout'].get('metrics') or {}).get('sharpe'))}")
        self.say(f"DSR {_n(r['dsr'])}  PBO {_n(r['pbo'])}")
        self.say(f"verdict: {r['verdict']['text']}")
        for reason in r["verdict"]["reasons"]:
            self.say(f"  - {reason}")
        if r["configs_created"]:
            self.say(f"configs created: {', '.join(map(str, r['configs_created']))}")
        self.say(f"stored as training #{r['saved_run']} ({r['state']}), owner {r['owner']}")


def _run_workers(run: TrainingRun) -> None:
    """The run's workers, inline: the first in this thread, the others in threads of this process
    (the engine releases the GIL), each the same task body a Celery worker runs, as this command.
    Ctrl-C stops them between trials and the run ends as interrupted (retry resumes it)."""
    def worker(i: int) -> None:
        try:
            services.training_execute_worker(run.pk, f"cli-{run.pk}-w{i}")
        finally:
            connection.close()

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(worker, i), name=f"train-{run.pk}-w{i}",
                                daemon=True) for i in range(1, run.n_workers)]
    for thread in threads:
        thread.start()
    try:
        services.training_execute_worker(run.pk, f"cli-{run.pk}-w0")
    except KeyboardInterrupt:
        jobrunner.request_stop()
        for thread in threads:
            thread.join(timeout=30)
        services.training_interrupt(run=run)
        return
    for thread in threads:
        thread.join()


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _n(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
