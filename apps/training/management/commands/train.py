"""Train a library strategy on stored candles by walk-forward optimisation: one optuna study per
fold on that fold's in-sample window, tested on its out-of-sample window, and a final study on
the whole optimisation range tested on the hold-out, with the overfitting statistics, printed
as a summary (or `--json`).

    manage.py train --strategy sma_cross --exchange binance --symbol BTC/USDT --timeframe 1h \\
        --start 2024-01-01 --end 2025-01-01 --trials 200 --folds 5 --holdout 0.2 --seed 7 --json

Runs the training core's `train()` in this process (with `--workers W`, in W local processes
sharing the studies) on the platform's optuna storage, under a study name unique to this
invocation. `--trials` is the budget of EACH study (folds + 1 studies). With `--save-as USER` the validated candidates become that user's StrategyConfigs.
"""
from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from apps.training import services
from apps.backtests.services import check_data, load_bars, range_gaps
from quant.optimisation import OBJECTIVES, SAMPLERS, train
from quant.optimisation.storage import delete_storage
from apps.marketdata.selectors import market_by_names
from apps.marketdata.timeframes import parse_time_ms
from tradepulse.core.commands import TradePulseCommand


class Command(TradePulseCommand):
    help = __doc__

    def add_options(self, parser):
        parser.add_argument("--strategy", required=True, help="Strategy key, e.g. sma_cross.")
        parser.add_argument("--exchange", required=True)
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--timeframe", required=True)
        parser.add_argument("--start", help="ISO date/time or epoch ms (UTC); default: first stored candle.")
        parser.add_argument("--end", help="Exclusive; default: after the last stored candle.")
        parser.add_argument("--trials", type=int, default=100, help="Trials of each study (one per fold + final).")
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--scheme", choices=["rolling", "anchored"], default="rolling")
        parser.add_argument("--holdout", type=float, default=0.2, help="Final share of the period kept out.")
        parser.add_argument("--objective", choices=list(OBJECTIVES), default="sharpe")
        parser.add_argument("--min-trades", type=int, default=10)
        parser.add_argument("--sampler", choices=list(SAMPLERS), default="tpe")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--top", type=int, default=5, help="Candidates to validate.")
        parser.add_argument("--timeout", type=float, help="Time budget per worker, seconds.")
        parser.add_argument("--fee", type=float, default=0.001, help="Fraction per side (0.001 = 0.1 %%).")
        parser.add_argument("--slippage", type=float, default=0.0)
        parser.add_argument("--allow-gaps", action="store_true",
                            help="Train through missing bars (listed in the result) instead of refusing the range.")
        parser.add_argument("--save-as", metavar="USER", help="Create the candidates' configs for this user.")

    def run(self, **o):
        user = None
        if o["save_as"]:
            user = get_user_model().objects.filter(username=o["save_as"]).first()
            if user is None:
                raise CommandError(f"--save-as: no user {o['save_as']!r}")
        services.check_training_options(objective=o["objective"], sampler=o["sampler"], folds=o["folds"],
                                        scheme=o["scheme"], holdout_share=o["holdout"], n_trials=o["trials"],
                                        n_workers=o["workers"], top_n=o["top"], min_trades=o["min_trades"])
        market = market_by_names(o["exchange"], o["symbol"])
        spec = services.training_spec(
            strategy_key=o["strategy"], timeframe=o["timeframe"],
            start_ms=parse_time_ms(o["start"]) if o["start"] else None,
            end_ms=parse_time_ms(o["end"]) if o["end"] else None, fee=o["fee"], slippage=o["slippage"],
            amount_step=float(market.amount_step or 0), allow_gaps=o["allow_gaps"])
        bars = load_bars(market, spec)
        gaps = range_gaps(market, spec)
        check_data(spec, len(bars), gaps)
        study_name = f"cli-{spec.strategy_key}-{market.symbol}-{spec.timeframe}-{uuid.uuid4().hex[:12]}"
        self.say(f"training {spec.strategy_key} on {market.exchange.code} {market.symbol} {spec.timeframe}: "
                 f"{len(bars)} bars, {o['folds']} folds + final study × {o['trials']} trials, study {study_name}")
        storage_url = services.optuna_storage_url(study_name)
        try:
            result = train(bars, strategy_key=spec.strategy_key, engine_config=spec.engine, objective=o["objective"],
                           min_trades=o["min_trades"], sampler=o["sampler"], n_trials=o["trials"], seed=o["seed"],
                           folds=o["folds"], scheme=o["scheme"], holdout_share=o["holdout"],
                           storage_url=storage_url, study_name=study_name, timeout_s=o["timeout"],
                           n_workers=o["workers"], top_n=o["top"]).to_dict()
        finally:
            delete_storage(storage_url)  # nothing reads a command's studies afterwards
        result["gaps"] = gaps
        configs = []
        if user is not None:
            configs = services.training_configs_create(
                owner=user, market=market, timeframe=spec.timeframe, strategy_key=spec.strategy_key, result=result,
                provenance={"study": study_name}, label=f"train command, study {study_name}")
        result["configs_created"] = [c.pk for c in configs]
        self._print(result)
        return result

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


def _n(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
