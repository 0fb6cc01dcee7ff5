"""Run the trading loop: one deployment (one tick or the loop), or a replay over stored candles.

    manage.py run_trading --deployment 7 --once [--json]      # one tick of deployment 7
    manage.py run_trading --deployment 7 [--every 10]         # its loop, until interrupted
    manage.py run_trading --replay --strategy sma_cross --params '{"fast": 10}' \\
        --exchange binance --symbol BTC/USDT --timeframe 1h --start 2024-01-01 --end 2024-06-01 --json

A tick runs the same service as the `trading.tick` beat task (inside the deployment's run lease).
`--replay` takes every option `backtest` takes and runs the trading loop with the PaperBroker
over the stored candles at full speed; `--json` prints the same `trades`, `open_position` and
`final_equity` as `backtest --json` (equal to them: the replay parity test checks it).
"""
from __future__ import annotations

import json
import time

from django.core.management.base import CommandError

from apps.backtests import services as backtests
from apps.backtests.management.commands.backtest import Command as BacktestCommand
from apps.marketdata.selectors import market_by_names
from apps.marketdata.timeframes import ms_to_iso, parse_time_ms
from apps.trading.models import Deployment
from apps.trading.services.engine import deployment_tick_safely
from apps.trading.services.replay import replay
from tradepulse.core import context
from tradepulse.core.commands import TradePulseCommand


class Command(TradePulseCommand):
    help = __doc__

    def add_options(self, parser):
        parser.add_argument("--deployment", type=int, help="Deployment id: run its ticks.")
        parser.add_argument("--once", action="store_true", help="One tick, then exit.")
        parser.add_argument("--every", type=float, default=10.0, help="Seconds between ticks of the loop.")
        parser.add_argument("--no-fetch", action="store_true",
                            help="Use only stored candles (do not ask the exchange for the latest ones).")
        parser.add_argument("--replay", action="store_true", help="Replay stored candles (backtest's options).")
        # the backtest's options, taken over as they are (one definition of each)
        group = parser.add_argument_group("replay (the backtest command's options)")
        probe = _Collector()
        BacktestCommand().add_options(probe)
        for args, kwargs in probe.arguments:
            if args[0] in ("--save-as",):
                continue
            kwargs = {**kwargs, "required": False}
            group.add_argument(*args, **kwargs)

    def run(self, **o):
        if o["replay"]:
            return self._replay(o)
        if not o["deployment"]:
            raise CommandError("Give --deployment ID (a tick or the loop) or --replay with the backtest's options.")
        deployment = Deployment.objects.filter(pk=o["deployment"]).first()
        if deployment is None:
            raise CommandError(f"--deployment: no deployment {o['deployment']}")
        with context.acting(actor_label="command:run_trading", user_id=deployment.owner_id):
            if o["once"]:
                result = deployment_tick_safely(deployment=deployment, fetch=not o["no_fetch"])
                self._say_tick(result)
                if result.get("error"):
                    raise CommandError(f"deployment {deployment.pk}: {result['error']}")
                return result
            ticks = 0
            try:
                while True:
                    result = deployment_tick_safely(deployment=deployment, fetch=not o["no_fetch"])
                    self._say_tick(result)
                    ticks += 1
                    time.sleep(max(0.5, o["every"]))
            except KeyboardInterrupt:
                return {"deployment": deployment.pk, "ticks": ticks}

    def _say_tick(self, r: dict) -> None:
        if r.get("skipped"):
            self.say(f"deployment {r['deployment']}: skipped ({r['skipped']})")
            return
        self.say(f"deployment {r['deployment']}: {r.get('bars', 0)} bar(s), orders {r.get('orders') or '-'}, "
                 f"trades {len(r.get('trades') or [])}, equity {r.get('equity')}"
                 + (" [STALE DATA]" if r.get("stale") else "") + (f" error: {r['error']}" if r.get("error") else ""))
        for refused in r.get("refused") or []:
            self.say(f"  not sent: {refused}")

    def _replay(self, o) -> dict:
        missing = [name for name in ("strategy", "exchange", "symbol", "timeframe") if not o.get(name)]
        if missing:
            raise CommandError("--replay needs " + ", ".join(f"--{m}" for m in missing))
        try:
            params = json.loads(o["params"] or "{}")
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params is not valid JSON: {exc.msg} at position {exc.pos}") from None
        started = time.perf_counter()
        market = market_by_names(o["exchange"], o["symbol"])
        spec = backtests.BacktestSpec.build(
            strategy_key=o["strategy"], parameters=params, timeframe=o["timeframe"],
            start_ms=parse_time_ms(o["start"]) if o["start"] else None,
            end_ms=parse_time_ms(o["end"]) if o["end"] else None, allow_gaps=o["allow_gaps"], market=market,
            cash=o["cash"], fee=o["fee"], slippage=o["slippage"], sizing=o["sizing"], size_value=o["size_value"],
            amount_step=o["size_step"], stop_loss=o["stop_loss"], take_profit=o["take_profit"],
            trailing_stop=o["trailing_stop"], allow_short=o["allow_short"])
        read = backtests.load_bars(market, spec, warmup=spec.warmup)  # the warm-up before the start, as backtest
        first = backtests.first_traded_index(read, spec)
        bars = read[first:]
        backtests.check_data(spec, len(bars), backtests.range_gaps(market, spec))
        result = replay(read, spec.strategy_key, spec.parameters, spec.engine, symbol=market.symbol,
                        start_index=first)
        if result.open_position:  # bar indices of the range, as backtest's
            result.open_position["entry_index"] -= first
        summary = {
            "mode": "replay", "strategy": spec.strategy_key, "parameters": spec.parameters,
            "exchange": market.exchange.code, "symbol": market.symbol, "timeframe": spec.timeframe,
            "candles": len(bars), "start": ms_to_iso(int(bars.time[0])),
            "end": ms_to_iso(bars.end_ms), "fingerprint": backtests.fingerprint(read),
            "trades": result.trades, "open_position": result.open_position, "final_equity": result.final_equity,
            "orders": result.orders, "fills": result.fills, "skipped_entries": result.skipped_entries,
            "timings": {**{k: round(v, 4) for k, v in result.timings.items()},
                        "total_s": round(time.perf_counter() - started, 4)},
        }
        self.say(f"replay {spec.strategy_key} {spec.parameters} on {market.exchange.code} {market.symbol} "
                 f"{spec.timeframe}: {len(bars)} candles {summary['start']} → {summary['end']}")
        self.say(f"final equity {result.final_equity:.2f}  trades {len(result.trades)}  orders {result.orders}  "
                 f"fills {result.fills}")
        if result.open_position:
            p = result.open_position
            self.say(f"open at the end: {p['side']} {p['size']} from {p['entry_price']}")
        self.say("timings: " + "  ".join(f"{k} {v:.3f}" for k, v in summary["timings"].items()))
        return summary


class _Collector:
    """Collects add_argument calls (to take over another command's options)."""

    def __init__(self):
        self.arguments = []

    def add_argument(self, *args, **kwargs):
        self.arguments.append((args, kwargs))
