"""Backtest a library strategy on stored candles and print the result.

    manage.py backtest --strategy sma_cross --params '{"fast": 10, "slow": 30}' \\
        --exchange binance --symbol BTC/USDT --timeframe 1h --start 2024-01-01 --end 2024-06-01 --json

Runs in this process through the same service as the dashboard and the API. With
`--save-as USER` the run is a BacktestRun of that user's (shown on the dashboard, audited with
USER as the actor by way of this command), run inline through the job runner; the summary is
then the stored row's, with its id as `saved_run`.
"""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from apps.backtests import services
from apps.backtests.models import BacktestRun
from apps.marketdata.selectors import coverage_for_market, market_by_names
from apps.marketdata.timeframes import ms_to_iso, parse_time_ms
from apps.backtests.selectors import run_warnings
from quant.metrics import caveats
from quant.timeframes import close_times
from quant.strategies.warmup import warmup_caveats
from tradepulse.core import context
from tradepulse.core.commands import TradePulseCommand
from tradepulse.core.jobs import JobState


class Command(TradePulseCommand):
    help = __doc__

    def add_options(self, parser):
        parser.add_argument("--strategy", required=True, help="Strategy key, e.g. sma_cross.")
        parser.add_argument("--params", default="{}", help="Parameters as JSON; omitted ones take their defaults.")
        parser.add_argument("--exchange", required=True)
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--timeframe", required=True)
        parser.add_argument("--start", help="ISO date/time or epoch ms (UTC); default: first stored candle.")
        parser.add_argument("--end", help="Exclusive; default: after the last stored candle.")
        parser.add_argument("--cash", type=float, default=10_000.0)
        parser.add_argument("--fee", type=float, default=0.001, help="Fraction per side (0.001 = 0.1 %%).")
        parser.add_argument("--slippage", type=float, default=0.0)
        parser.add_argument("--sizing", choices=["fraction", "notional", "risk"], default="fraction")
        parser.add_argument("--size", type=float, default=1.0, dest="size_value")
        parser.add_argument("--size-step", type=float, default=None,
                            help="Round sizes down to this step; default: the market's amount step.")
        parser.add_argument("--stop-loss", type=float)
        parser.add_argument("--take-profit", type=float)
        parser.add_argument("--trailing-stop", type=float)
        parser.add_argument("--allow-short", action="store_true")
        parser.add_argument("--allow-gaps", action="store_true")
        parser.add_argument("--save-as", metavar="USER", help="Also store the run as this user's.")

    def run(self, **o):
        started = time.perf_counter()
        try:
            params = json.loads(o["params"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params is not valid JSON: {exc.msg} at position {exc.pos}") from None
        market = market_by_names(o["exchange"], o["symbol"])
        spec = services.BacktestSpec.build(
            strategy_key=o["strategy"], parameters=params, timeframe=o["timeframe"],
            start_ms=parse_time_ms(o["start"]) if o["start"] else None,
            end_ms=parse_time_ms(o["end"]) if o["end"] else None, allow_gaps=o["allow_gaps"], market=market,
            cash=o["cash"], fee=o["fee"], slippage=o["slippage"], sizing=o["sizing"], size_value=o["size_value"],
            amount_step=o["size_step"], stop_loss=o["stop_loss"], take_profit=o["take_profit"],
            trailing_stop=o["trailing_stop"], allow_short=o["allow_short"],
        )
        if o["save_as"]:
            summary = self._run_saved(o["save_as"], market, spec)
            self._print(summary)
            return summary
        t0 = time.perf_counter()
        bars = services.load_bars(market, spec, warmup=spec.warmup)
        load_s = time.perf_counter() - t0
        outcome = services.backtest_compute(spec, bars, gaps=services.range_gaps(market, spec))
        first, end = int(outcome.time[0]), int(close_times(outcome.time[-1:], spec.timeframe)[0])
        timings = {"load_s": load_s, "signals_s": outcome.timings["signals_s"], "engine_s": outcome.timings["engine_s"],
                   "metrics_s": outcome.timings["metrics_s"], "total_s": time.perf_counter() - started}
        summary = {
            "strategy": spec.strategy_key, "parameters": spec.parameters, "exchange": market.exchange.code,
            "symbol": market.symbol, "timeframe": spec.timeframe, "candles": outcome.candle_count,
            "start": ms_to_iso(first), "end": ms_to_iso(end),
            "fingerprint": outcome.fingerprint, "metrics": outcome.metrics, "trades": outcome.trades,
            "open_position": outcome.open_position, "final_equity": outcome.final_equity,
            "max_drawdown": outcome.metrics["max_drawdown"], "gaps": outcome.gaps,
            "warmup_bars": outcome.warmup_bars, "warmup_missing": outcome.warmup_missing,
            "warnings": warmup_caveats(outcome.warmup_bars, outcome.warmup_missing) + caveats(
                outcome.metrics, span_ms=end - first, open_position=outcome.open_position),
            "timings": {k: round(v, 4) for k, v in timings.items()},
        }
        self._print(summary)
        return summary

    def _run_saved(self, username, market, spec) -> dict:
        """Store the run as `username`'s (a BacktestRun: on the dashboard, audited with that user as
        the actor by way of this command), run it inline through the job runner and report the
        stored row."""
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"--save-as: no user {username!r}")
        coverage = coverage_for_market(market, spec.timeframe)
        start_ms = spec.start_ms if spec.start_ms is not None else coverage.first_ms
        end_ms = spec.end_ms if spec.end_ms is not None else coverage.end_ms
        if start_ms is None or end_ms is None:
            raise CommandError(f"No candles stored for {market.symbol} {spec.timeframe}; download them first.")
        with context.acting(user_id=user.pk):
            run = services.backtest_create(
                owner=user, market=market, timeframe=spec.timeframe, strategy_key=spec.strategy_key,
                parameters=spec.parameters, start=_dt(start_ms), end=_dt(end_ms), allow_gaps=spec.allow_gaps,
                enqueue=False, **{f: getattr(spec.engine, f) for f in services.ENGINE_FIELDS})
            services.backtest_execute(run.pk)
        run = BacktestRun.objects.select_related("market__exchange").get(pk=run.pk)
        if run.state != JobState.SUCCEEDED:
            raise CommandError(f"backtest #{run.pk} {run.state}: {run.error or run.message}")
        return summary_of_run(run)

    def _print(self, s):
        m = s["metrics"]
        self.say(f"{s['strategy']} {s['parameters']} on {s['exchange']} {s['symbol']} {s['timeframe']}: "
                 f"{s['candles']} candles {s['start']} → {s['end']}")
        trades = f"trades {m['trade_count']}"
        if not m["trade_count"] and s["open_position"]:
            trades += " (one position still open)"
        self.say(f"final equity {s['final_equity']:.2f}  return {_fmt(m['total_return'], '.2%')}  "
                 f"sharpe {_fmt(m['sharpe'], '.3f')}  max drawdown {_fmt(m['max_drawdown'], '.2%')}  {trades}  "
                 f"win rate {_fmt(m['win_rate'], '.1%')}")
        if s["open_position"]:
            p = s["open_position"]
            self.say(f"open at the end: {p['side']} {p['size']} from {p['entry_price']} (unrealised {p['unrealized_pnl']:.2f})")
        for warning in s["warnings"]:
            self.say(f"warning: {warning['message']}")
        self.say("timings: " + "  ".join(f"{k} {v:.3f}" for k, v in s["timings"].items()))
        if "saved_run" in s:
            self.say(f"stored as backtest #{s['saved_run']} ({s['state']}), owner {s['owner']}")


def summary_of_run(run: BacktestRun) -> dict:
    """The stored run in the command's summary shape (trades as the engine's records), plus its id."""
    ms = lambda dt: int(dt.timestamp() * 1000)  # noqa: E731
    trades = [{"entry_time": ms(t.entry_time), "exit_time": ms(t.exit_time), "entry_price": t.entry_price,
               "exit_price": t.exit_price, "size": t.size, "fees": t.fees, "pnl": t.pnl, "return": t.return_pct,
               "exit_reason": t.exit_reason, "side": t.side} for t in run.trades.order_by("number")]
    return {
        "saved_run": run.pk, "state": run.state, "owner": run.owner.get_username(),
        "strategy": run.strategy_key, "parameters": run.parameters, "exchange": run.market.exchange.code,
        "symbol": run.market.symbol, "timeframe": run.timeframe, "candles": run.candle_count,
        "start": ms_to_iso(ms(run.start)), "end": ms_to_iso(ms(run.end)), "fingerprint": run.fingerprint,
        "metrics": run.metrics, "trades": trades, "open_position": run.open_position,
        "final_equity": run.final_equity, "max_drawdown": run.metrics["max_drawdown"], "gaps": run.gaps,
        "warmup_bars": run.warmup_bars, "warmup_missing": run.warmup_missing, "warnings": run_warnings(run), "timings": run.timings,
    }


def _fmt(value, spec: str) -> str:
    """An undefined metric (None: no trades, zero variance...) is "n/a", never 0."""
    return "n/a" if value is None else format(value, spec)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
