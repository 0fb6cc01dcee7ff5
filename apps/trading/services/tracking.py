"""Live against backtest: a deployment's trades against a replay of the same period.

`deployment_tracking_error(deployment)` replays the bars the deployment acted on (the same stored
candles, strategy, parameters and execution settings, capital as cash, flat at the first bar it
acted on) and compares trade by trade:

- matched trades: same side, entries in the same bar; entry and exit slippage are the live fill
  against the replay's fill as a fraction of the replay's price, signed so that positive is worse
  for us (paid more on a buy, got less on a sell);
- missed trades: in the replay, not live (a refused order, a paused or stale period, an outage);
- extra trades: live, not in the replay (a manual close that cut a trade, a fill the replay
  would not have had);
- PnL: live closed-trade PnL (net of fees, from the stored fills) minus the replay's, a matched
  replay trade taken at the live trade's size (PnL is linear in size), so a pre-trade check that
  resized an entry is not counted as tracking error; missed trades count at the replay's size.
  `replay_unscaled` is the replay's own total.

Computed on demand (a replay of a few thousand bars takes milliseconds); None when the
deployment has not acted on a bar yet. Read by the deployment page and by graduation.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from quant.strategies import Bars, get_strategy
from quant.timeframes import floor_time, next_open

from apps.marketdata.selectors import candles_as_arrays

from ..models import Deployment, Fill
from ..trades import round_trips
from .engine import engine_config_for, history_bars
from .replay import replay


@dataclass
class LiveTrade:
    side: str
    entry_time: int  # ms of the first entry fill
    exit_time: int
    entry_price: float  # average of the entry fills
    exit_price: float
    size: float
    pnl: float  # net of fees, quote currency


def live_trades(deployment: Deployment) -> list[LiveTrade]:
    """Closed trades rebuilt from the deployment's stored fills (flat → flat), oldest first: the
    same computation as the trading pages' closed trades (trading.trades.round_trips), in the
    replay's units (epoch ms, floats)."""
    market = deployment.config.market
    fills = Fill.objects.filter(order__deployment=deployment).select_related("order")
    trips = round_trips(fills, base_of={market.symbol: market.base},
                        steps={market.symbol: market.amount_step or Decimal("1e-12")})
    return [LiveTrade(side=t.side, entry_time=int(t.opened_at.timestamp() * 1000),
                      exit_time=int(t.closed_at.timestamp() * 1000), entry_price=float(t.entry_price),
                      exit_price=float(t.exit_price), size=float(t.size), pnl=float(t.pnl)) for t in trips]


def _slippage(side: str, live: float, replayed: float, *, entry: bool) -> float:
    buy = (side == "long") == entry
    return (live - replayed) / replayed if buy else (replayed - live) / replayed


def deployment_tracking_error(deployment: Deployment) -> dict | None:
    """The deployment's trades against a replay of the period it traded (see module docstring).

    {"period": {"start", "end"} (bar open times, ms), "replay_trades", "live_trades", "matched",
     "missed": [replay trades], "extra": [live trades], "entry_slippage" / "exit_slippage":
     {"mean", "worst"} (fractions; None without matched trades), "pnl": {"live", "replay",
     "difference", "replay_unscaled"} (quote currency, closed trades), "pairs": [{"entry_time",
     "side", "entry_slippage", "exit_slippage", "size_live", "size_replay", "size_ratio",
     "pnl_live", "pnl_replay" (at the live size), "pnl_replay_unscaled"}]}; None before its first bar."""
    deployment = Deployment.objects.select_related("config__market").get(pk=deployment.pk)
    state = deployment.engine_state or {}
    first, last = state.get("first_bar"), deployment.last_bar_time
    if first is None or last is None:
        return None
    config, market = deployment.config, deployment.config.market
    tf = config.timeframe
    history = history_bars(config.strategy_key, config.parameters, tf)
    bar_ms = next_open(first, tf) - first
    arrays = candles_as_arrays(market, tf, start_ms=floor_time(first - history * bar_ms, tf),
                               end_ms=next_open(last, tf))
    bars = Bars(arrays.time, arrays.open, arrays.high, arrays.low, arrays.close, arrays.volume, tf)
    start_index = int((arrays.time < first).sum())
    get_strategy(config.strategy_key)  # an unknown strategy fails loudly here, not as an empty replay
    replayed = replay(bars, config.strategy_key, config.parameters, engine_config_for(deployment),
                      start_index=start_index, symbol=market.symbol)
    live = live_trades(deployment)
    by_bar = defaultdict(list)
    for trade in live:
        by_bar[(floor_time(trade.entry_time, tf), trade.side)].append(trade)
    pairs, missed = [], []
    for r in replayed.trades:
        candidates = by_bar.get((floor_time(r["entry_time"], tf), r["side"]))
        if not candidates:
            missed.append(r)
            continue
        lt = candidates.pop(0)
        ratio = lt.size / r["size"] if r["size"] else 0.0
        pairs.append({"entry_time": r["entry_time"], "side": r["side"],
                      "entry_slippage": _slippage(r["side"], lt.entry_price, r["entry_price"], entry=True),
                      "exit_slippage": _slippage(r["side"], lt.exit_price, r["exit_price"], entry=False),
                      "size_live": lt.size, "size_replay": r["size"], "size_ratio": ratio,
                      # PnL is linear in size (fees are a fraction of notional): the replay's trade
                      # at the live size, so a risk limit's resize is not counted as tracking error
                      "pnl_live": lt.pnl, "pnl_replay": r["pnl"] * ratio, "pnl_replay_unscaled": r["pnl"],
                      "exit_live": lt.exit_time, "exit_replay": r["exit_time"]})
    extra = [t.__dict__ for trades in by_bar.values() for t in trades]

    def stats(key):
        values = [p[key] for p in pairs]
        return {"mean": sum(values) / len(values), "worst": max(values)} if values else {"mean": None,
                                                                                        "worst": None}

    pnl_live = sum(t.pnl for t in live)
    pnl_replay = sum(p["pnl_replay"] for p in pairs) + sum(r["pnl"] for r in missed)
    return {"period": {"start": first, "end": last}, "replay_trades": len(replayed.trades),
            "live_trades": len(live), "matched": len(pairs), "missed": missed, "extra": extra,
            "entry_slippage": stats("entry_slippage"), "exit_slippage": stats("exit_slippage"),
            "pnl": {"live": pnl_live, "replay": pnl_replay, "difference": pnl_live - pnl_replay,
                    "replay_unscaled": sum(r["pnl"] for r in replayed.trades)},
            "pairs": pairs}
