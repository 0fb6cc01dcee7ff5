"""The trading loop: at each closed bar of a deployment's timeframe, decide → check → execute → apply.

One tick of one deployment (`deployment_tick`, always inside `deployment_running`, so never twice
at once):

1. refresh the latest closed candles through the market-data service (fetched from the exchange
   and stored by `candles_ingest`, so the data a decision used can be shown later; file sources
   use what was imported);
2. stale data — the newest stored candle is late by more than a bar (a bar that closed more than a
   bar ago is missing) — means no new entries, an alert and a flag on the deployment
   (`data_stale_since`, `data_stale_reason`); the bar that has just closed may still be arriving:
   the loop waits for it (the deployment stays due) without calling it stale;
3. signals from the same strategy code as the backtest, over the warm-up history;
4. for each closed bar not yet acted on, the engine core steps the deployment's stored state:
   paper — the PaperBroker fills the orders resting from the previous close by the backtest's
   own rules; testnet/live — the exchange's fills (stored Fill rows) are booked into the state
   with `apply_external_fill`;
5. each order intent passes the pre-trade check (`apps.risk.check.risk_check`); approved ones
   are placed with `order_place` (idempotent client order id from deployment, bar, intent);
6. positions, a portfolio snapshot, and the events `trading.order.updated`,
   `trading.position.updated`, `trading.portfolio.tick`.

Entries are allowed on a bar only when the deployment is active, was active when the bar closed
(activation takes effect on the next closed bar), the data is fresh and — for testnet/live — the
bar is the newest (a late worker never sends an old signal to an exchange). A paused deployment
still manages its open position (exits and stops run). A stopped one has its exit policy applied
once (close: a market exit; keep: nothing) and is then left alone.

A failure of one deployment (a refused order, an unknown symbol, an exchange error) is stored on
its order or on `Deployment.last_error` and never stops the loop for the others; an API key the
exchange refuses pauses the account's deployments (accounts.account_auth_failed) with no retry.
"""
from __future__ import annotations

import json
import logging
import math
import time as _time
from datetime import UTC, datetime
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.alerts.services import alert_raise, alert_resolve
from apps.audit.services import audit_record
from apps.marketdata import exchanges
from apps.marketdata.selectors import latest_candles
from apps.marketdata.services.ingest import candles_ingest
from apps.risk.check import OrderIntent as RiskIntent, risk_check
from quant.engine import EngineConfig, core
from quant.engine.stepper import EngineState, apply_external_fill, step
from quant.strategies import Bars, get_strategy
from quant.timeframes import floor_time, next_open, nominal_ms
from tradepulse.core.events import publish_for

from ..brokers import Broker, BrokerError, broker_for
from ..brokers.base import OrderReport, check_minimums, round_amount
from ..brokers.paper import PaperBroker, to_decimal
from ..models import (OPEN_STATUSES, Deployment, DeploymentState, ExitPolicy, Fill, Health, Mode, Order, OrderSide,
                      OrderStatus)
from .deployments import DeploymentBusy, deployment_pause, deployment_running
from .orders import order_apply_report, order_cancel, order_place, order_protect, order_refresh
from .portfolio import portfolio_snapshot_take
from .reconcile import deployment_reconcile

try:  # the one warm-up rule (quant.strategies.warmup) once it is there
    from quant.strategies.warmup import warmup_bars
except ImportError:  # pragma: no cover - depends on what is on main
    warmup_bars = None

log = logging.getLogger(__name__)

HISTORY_FALLBACK = 1000  # bars of history for signals when no warm-up rule is available
CATCH_UP_MAX = 2000  # bars one tick steps through after a worker was down
FETCH_LIMIT = 1000  # candles fetched per refresh
INTENT_EXIT, INTENT_ENTRY, INTENT_ENGINE_EXIT, INTENT_POLICY_EXIT = 0, 1, 3, 4
SIGNAL_KEYS = ("entries_long", "exits_long", "entries_short", "exits_short", "stop_price", "take_profit_price")


# --- engine state between ticks ----------------------------------------------------------------
def engine_config_for(deployment: Deployment) -> EngineConfig:
    """The config's execution settings with the deployment's capital as the engine's cash. The
    market's own rules fill what the config leaves at 0 (lot step, tick, minimum amount and
    notional), as `backtest` fills the lot step: an order the exchange would refuse is not sized."""
    config = deployment.config.engine_config()
    market = deployment.config.market
    rules = {"amount_step": market.amount_step, "price_step": market.price_step,
             "min_amount": market.limit("amount", "min"), "min_notional": market.limit("cost", "min")}
    filled = {k: float(v) for k, v in rules.items() if v and not getattr(config, k)}
    return replace(config, cash=float(deployment.capital), **filled)


def state_dump(state: EngineState) -> dict:
    """The state as JSON (NaN → null), with the entry bar's time so trades keep their times."""
    values = [None if math.isnan(v) else float(v) for v in state.values]
    entry_index = int(state.values[core.S_ENTRY_INDEX])
    times = {str(k): v for k, v in state._times.items() if k == entry_index}
    return {"values": values, "bar": state.bar, "last_close": None if math.isnan(state.last_close) else
            state.last_close, "times": times}


def state_load(config: EngineConfig, data: dict | None) -> EngineState:
    """The stored state, or a flat one with the config's cash when there is none yet."""
    if not data or not data.get("values"):
        return EngineState(config, core.new_state(float(config.cash)))
    values = np.array([np.nan if v is None else float(v) for v in data["values"]], dtype=np.float64)
    state = EngineState(config, values, bar=int(data.get("bar", 0)))
    state.last_close = math.nan if data.get("last_close") is None else float(data["last_close"])
    state._times = {int(k): int(v) for k, v in (data.get("times") or {}).items()}
    return state


def history_bars(strategy_key: str, parameters: dict, timeframe: str | None = None) -> int:
    """Closed candles a tick loads for the signals: the warm-up rule's count (+1 for the signal
    bar itself), or a generous fixed history until that rule is available."""
    if warmup_bars is None:
        return HISTORY_FALLBACK
    return max(int(warmup_bars(strategy_key, parameters, timeframe)) + 1, 2)


def signal_row(signals, i: int) -> dict | None:
    """Bar `i`'s signal row for the stepper, or None when the bar has no entry/exit flag (the
    levels only matter on an entry, so the engine does exactly the same with None)."""
    flags = [getattr(signals, k) for k in SIGNAL_KEYS[:4]]
    if not any(a is not None and bool(a[i]) for a in flags):
        return None
    row = {}
    for key in SIGNAL_KEYS:
        values = getattr(signals, key)
        if values is not None:
            row[key] = values[i].item()
    return row


# --- the per-bar core shared by ticks, manual actions and replays ------------------------------
@dataclass
class BarOutcome:
    bar_time: int
    trades: list[dict] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    equity: float | None = None


class DeploymentLoop:
    """One deployment's engine, books and broker for one tick (or one manual action)."""

    def __init__(self, deployment: Deployment, *, broker: Broker | None = None):
        self.deployment = deployment
        self.config = deployment.config
        self.market = self.config.market
        self.paper = deployment.account.mode == Mode.PAPER
        self.engine_config = engine_config_for(deployment)
        self.state = state_load(self.engine_config, deployment.engine_state)
        self.first_bar = (deployment.engine_state or {}).get("first_bar")  # the first bar it acted on (ms)
        self.halted = ""  # set when the account's key was refused: nothing more is sent this tick
        self.last_bar_time = deployment.last_bar_time
        if broker is None and self.paper:
            # paper orders rest only while the engine holds them pending (or a manual close waits)
            pending = self.state.values[core.S_PEND_EXIT] != 0 or self.state.values[core.S_PEND_ENTRY] != 0
            resting = [_resting_report(o) for o in self._open_orders()] if pending else []
            broker = PaperBroker(deployment.account, symbol=self.market.symbol, resting=resting)
        self.broker = broker or broker_for(deployment.account)

    def _open_orders(self):
        return Order.objects.filter(deployment=self.deployment, status__in=OPEN_STATUSES).order_by("client_order_id")

    # --- one bar ------------------------------------------------------------------------------
    def on_bar(self, bar: tuple, bar_time: int, row: dict | None, *, may_enter: bool, why_not: str = "") -> BarOutcome:
        """Step the engine over one closed bar ``(open, high, low, close)`` opening at `bar_time`
        and act on its signal `row`."""
        outcome = BarOutcome(bar_time)
        hook = self._hook(outcome, bar_time, row, may_enter, why_not)
        if self.paper:
            # No transaction around the bar: a crash part-way is repaired by running the bar again
            # from the stored engine state (same client order ids, fills keyed by trade id).
            result, reports, unmatched = self.broker.execute_bar(self.state, bar, row, hook=hook, bar_time=bar_time)
            for report in reports:
                order = Order.objects.get(client_order_id=report.client_order_id)
                order_apply_report(order=order, report=report, source="paper")
            for fill in unmatched:
                self._book_engine_exit(fill, bar_time)
            if reports or unmatched:
                Fill.objects.filter(order__deployment=self.deployment, engine_applied=False).update(
                    engine_applied=True)  # paper fills come from the engine state itself
        else:
            result = step(self.state, (*bar, bar_time), row, hook=hook, simulate_fills=False)
            self.apply_exchange_fills()
            self._protect(outcome.orders)
        outcome.trades, outcome.equity = result.trades, result.equity
        return outcome

    def _book_engine_exit(self, fill, bar_time: int) -> None:
        """An engine fill no resting order stands for (stop-loss, take-profit, trailing stop): stored
        as the engine's exit order of that bar, filled at the engine's price."""
        order = order_place(deployment=self.deployment, side=fill.direction, amount=to_decimal(fill.amount),
                            signal_bar_time=bar_time, intent_index=INTENT_ENGINE_EXIT,
                            reference_price=to_decimal(fill.price), broker=self.broker,
                            decision={"kind": "exit", "reason": fill.reason, "bar_time": bar_time,
                                      "price": fill.price,
                                      "by": "engine core: stop before target, gaps fill at the open"},
                            verdict={"approved": True, "outcome": "approved", "reasons": [
                                {"message": "A protective exit held by the engine: it reduces the position."}]})
        if order.client_order_id in self.broker.resting:
            order_apply_report(order=order, report=self.broker.execute_now(order.client_order_id, fill, bar_time),
                               source="paper")

    def _hook(self, outcome: BarOutcome, bar_time: int, row, may_enter: bool, why_not: str):
        deployment, market = self.deployment, self.market

        def hook(intent, state):
            if self.halted:
                outcome.refused.append(f"{intent.kind}: {self.halted}")
                return None
            if intent.kind == "entry" and not may_enter:
                outcome.refused.append(f"entry not sent: {why_not}")
                return None
            if intent.kind == "exit" and not self.paper:
                self._cancel_protective()
            estimate = intent.estimated_amount if intent.kind == "entry" else state.size
            if intent.kind == "entry" and estimate <= 0:
                estimate = self._unconstrained_estimate(intent, state)  # so the refusal names the minimum
            amount = round_amount(to_decimal(estimate), market.amount_step)
            price = to_decimal(intent.reference_price)
            verdict = None  # below the market's minimums: refused by order_place before any check
            try:
                check_minimums(market, amount, price)
            except BrokerError:
                pass
            else:
                verdict = risk_check(intent=RiskIntent(
                    deployment_id=deployment.pk, account_id=deployment.account_id, owner_id=deployment.owner_id,
                    symbol=market.symbol, side=intent.direction, amount=amount, price=price,
                    stop_price=to_decimal(intent.stop_loss) if intent.stop_loss is not None else None,
                    reduces_position=intent.kind == "exit", source="engine"))
                if verdict.approved and verdict.amount < amount and intent.kind == "entry":
                    amount = round_amount(verdict.amount, market.amount_step)
            decision = {"kind": intent.kind, "side": intent.side, "bar_time": bar_time,
                        "reference_price": intent.reference_price, "stop_loss": intent.stop_loss,
                        "take_profit": intent.take_profit, "estimated_amount": intent.estimated_amount,
                        "signals": row or {}, "equity": state.equity, "cash": state.cash,
                        "strategy": self.config.strategy_key, "parameters": self.config.parameters,
                        "sizing": "at the fill by the config's rule (paper)" if self.paper else "fixed at placement"}
            order = order_place(deployment=deployment, side=intent.direction, amount=amount, signal_bar_time=bar_time,
                                intent_index=INTENT_EXIT if intent.kind == "exit" else INTENT_ENTRY,
                                reference_price=price, decision=decision,
                                verdict=verdict.as_dict() if verdict is not None else None, broker=self.broker)
            outcome.orders.append(order)
            if order.status in (OrderStatus.FAILED, OrderStatus.REJECTED):
                outcome.refused.append(f"{intent.kind} order {order.client_order_id}: {order.reason}")
                if order.reason_code == "auth_failed":
                    self.halted = "the exchange refused the account's API key"
                return None
            if intent.kind == "entry" and (not self.paper or verdict.outcome == "resized"):
                return intent.resize(float(order.amount))
            return intent

        return hook

    def _unconstrained_estimate(self, intent, state) -> float:
        """Units the entry would get without the minimums (for a refusal that names them)."""
        cfg = replace(self.engine_config, min_amount=0.0, min_notional=0.0).as_array()
        direction = 1 if intent.direction == "buy" else -1
        fill = core.market_fill_price(direction, intent.reference_price, self.engine_config.slippage)
        return float(core.estimate_entry_size(state.values.copy(), cfg, float(fill)))

    def _protect(self, orders: list[Order]) -> None:
        """Testnet/live: rest the entry's stop-loss (and take-profit, as one OCO where the exchange
        has it) on the exchange once the entry filled (order_protect; idempotent)."""
        state = self.state
        if state.side is None or state.stop_loss is None:
            return  # no stop to rest (a target alone is not placed: see the report)
        for order in orders:
            if order.intent_index == INTENT_ENTRY and order.status in (OrderStatus.FILLED,
                                                                        OrderStatus.PARTIALLY_FILLED):
                order_protect(entry=order, stop_price=to_decimal(state.stop_loss),
                              take_profit_price=to_decimal(state.take_profit) if state.take_profit else None,
                              broker=self.broker)

    def _cancel_protective(self) -> None:
        """Before a signal exit on an exchange: cancel the resting stop/target so only one closes."""
        for order in Order.objects.filter(deployment=self.deployment, status__in=OPEN_STATUSES,
                                          parent__isnull=False):
            order_cancel(order=order, reason="the strategy exits: the protective order is replaced",
                         broker=self.broker)

    # --- live: the exchange's fills into the engine state -------------------------------------
    def apply_exchange_fills(self) -> int:
        """Book every stored fill of this deployment not yet in the engine state (oldest first)
        with the engine's `apply_external_fill`; returns how many. Fees not in the quote currency
        are valued at the fill price."""
        if self.paper:
            return 0
        quote, base = self.market.quote, self.market.base
        applied = 0
        for fill in (Fill.objects.filter(order__deployment=self.deployment, engine_applied=False)
                     .select_related("order").order_by("time", "pk")):
            # a fee in the base currency (Binance buys) leaves fewer units: book the units held and
            # value that fee in quote at the fill price
            fee_base = fill.fee if fill.fee_currency == base else Decimal(0)
            fee = fill.fee if fill.fee_currency == quote else fee_base * fill.price
            # the units the engine may sell again: net of a base fee, down to the lot step (the
            # dust below a step stays on the account, as the exchange cannot sell it either)
            amount = (round_amount(fill.amount - fee_base, self.market.amount_step)
                      if fill.order.side == OrderSide.BUY else fill.amount)
            if amount <= 0:
                Fill.objects.filter(pk=fill.pk).update(engine_applied=True)
                continue
            try:
                apply_external_fill(self.state, fill.order.side, float(amount), float(fill.price), float(fee))
            except ValueError as exc:  # e.g. a sell while flat on a long-only config
                log.warning("fill %s not booked into the engine of deployment %s: %s", fill.exchange_trade_id,
                            self.deployment.pk, exc)
            Fill.objects.filter(pk=fill.pk).update(engine_applied=True)
            applied += 1
        return applied

    def refresh_exchange_orders(self) -> None:
        """Testnet/live: ask the exchange about our unsettled orders (fills of protective stops)."""
        if self.paper:
            return
        for order in self._open_orders():
            order_refresh(order=order, broker=self.broker)

    def save(self, **fields) -> None:
        values = {"engine_state": {**state_dump(self.state), "first_bar": self.first_bar}, **fields}
        Deployment.objects.filter(pk=self.deployment.pk).update(**values)
        for name, value in values.items():
            setattr(self.deployment, name, value)


def _resting_report(order: Order) -> OrderReport:
    return OrderReport(client_order_id=order.client_order_id, exchange_order_id=order.exchange_order_id,
                       symbol=order.symbol, side=order.side, type=order.type, status="open", amount=order.amount,
                       filled=order.filled, average=order.average, price=order.take_profit_price,
                       raw=order.raw or {})


# --- market data ------------------------------------------------------------------------------
def candles_refresh(*, market, timeframe: str, until_ms: int, since_ms: int | None = None) -> int:
    """Fetch the market's closed candles opening before `until_ms` from the exchange and store
    them through the market-data service (validated, upserted, coverage kept). File sources are
    not fetched (what was imported is what there is). Returns candles stored; MarketDataError
    from the exchange propagates."""
    if market.exchange.is_file_source:
        return 0
    client = exchanges.build_client(market.exchange.code)
    rows = exchanges.call(client, "fetch_ohlcv", market.symbol, timeframe, since=since_ms, limit=FETCH_LIMIT,
                          symbol=market.symbol, timeframe=timeframe)
    matrix = np.array([r[:6] for r in rows or []], dtype=np.float64).reshape(-1, 6)
    matrix = matrix[matrix[:, 0] < until_ms] if len(matrix) else matrix
    if not len(matrix):
        return 0
    return candles_ingest(market=market, timeframe=timeframe, rows=matrix, source="trading").stored


def _bars(arrays, timeframe: str) -> Bars:
    return Bars(arrays.time, arrays.open, arrays.high, arrays.low, arrays.close, arrays.volume, timeframe)


def _ms(dt) -> int:
    return int(dt.timestamp() * 1000)


def _stale_key(deployment: Deployment) -> str:
    return f"stale-data:deployment-{deployment.pk}"


def _set_stale(loop: DeploymentLoop, stale_reason: str) -> None:
    d = loop.deployment
    if stale_reason and not d.data_stale_since:
        loop.save(data_stale_since=timezone.now(), data_stale_reason=stale_reason)
        audit_record("trading.deployment.data_stale", target=d, reason=stale_reason)
        alert_raise(severity="warning", source="trading", title=f"Stale market data: {d}", message=stale_reason,
                    context={"deployment": d.pk, "symbol": loop.market.symbol, "timeframe": loop.config.timeframe},
                    target=d, key=_stale_key(d))
        _publish_deployment(d)
    elif stale_reason:
        loop.save(data_stale_reason=stale_reason)
    elif d.data_stale_since:
        loop.save(data_stale_since=None, data_stale_reason="")
        audit_record("trading.deployment.data_fresh", target=d, reason="fresh candles arrived")
        alert_resolve(source="trading", key=_stale_key(d), reason="fresh candles arrived")
        _publish_deployment(d)


def _publish_deployment(d: Deployment) -> None:
    publish_for(d, "trading.deployment.updated", {
        "id": d.pk, "state": d.state, "state_reason": d.state_reason, "data_stale": d.data_stale_since is not None,
        "data_stale_reason": d.data_stale_reason, "last_error": d.last_error,
        "last_bar_time": d.last_bar_time, "last_tick_at": d.last_tick_at})


# --- one tick ---------------------------------------------------------------------------------
def deployment_tick(*, deployment: Deployment, now_ms: int | None = None, broker: Broker | None = None,
                    fetch: bool = True, cache: dict | None = None) -> dict:
    """Run one tick of `deployment` at `now_ms` (default: now) — the caller holds its lease.

    Acts on every closed bar after `last_bar_time` (the first tick: only the newest closed bar).
    Returns {"deployment", "bars", "orders", "trades", "refused", "stale", "equity", "error"}.
    """
    started = _time.perf_counter()
    now_ms = int(now_ms if now_ms is not None else _time.time() * 1000)
    deployment = (Deployment.objects.select_related("config__market__exchange", "account__exchange", "owner")
                  .get(pk=deployment.pk))
    result = {"deployment": deployment.pk, "state": deployment.state, "bars": 0, "orders": [], "trades": [],
              "refused": [], "stale": False, "equity": None, "error": ""}
    loop = DeploymentLoop(deployment, broker=broker)
    stopping = deployment.state == DeploymentState.STOPPED
    if stopping and deployment.exit_policy == ExitPolicy.CLOSE and loop.state.side is not None \
            and loop.state.values[core.S_PEND_EXIT] == 0:
        order = request_exit(loop, reason=f"stopped with exit policy {deployment.exit_policy}",
                             intent_index=INTENT_POLICY_EXIT, source="engine", at_ms=now_ms)
        result["orders"].append(order.client_order_id if order else None)
    tf, market = loop.config.timeframe, loop.market
    newest_closed = floor_time(now_ms, tf)  # open of the bar in progress = end of the closed ones
    newest_closed = _previous_open(newest_closed, tf)
    if deployment.last_bar_time is not None and deployment.last_bar_time >= newest_closed and not stopping:
        result["note"] = "up to date: no bar has closed since the last tick"  # e.g. a duplicate queued tick
        return result
    if fetch:
        try:
            candles_refresh(market=market, timeframe=tf, until_ms=next_open(newest_closed, tf),
                            since_ms=deployment.last_bar_time)
        except exchanges.MarketDataError as exc:
            log.warning("candles of %s %s not refreshed: %s", market.symbol, tf, exc)
    if not loop.paper and deployment.account.health == Health.AUTH_FAILED:
        # no retry loop on a refused key: nothing is sent until a person fixes it and tests the account
        result["error"] = f"the exchange refused the account's API key: {deployment.account.last_error}"
        loop.save(last_tick_at=timezone.now())
        return result
    if not loop.paper and deployment.state == DeploymentState.ACTIVE and (
            deployment.reconciled_at is None or deployment.reconciled_at < deployment.state_changed_at):
        # at the start of a deployment's loop (first tick after activation): books it can trust, or a pause
        result["reconciliation"] = deployment_reconcile(deployment=deployment, broker=loop.broker)
        deployment.refresh_from_db()
        loop.deployment = deployment
    loop.refresh_exchange_orders()
    loop.apply_exchange_fills()
    last_done = deployment.last_bar_time
    history = history_bars(loop.config.strategy_key, loop.config.parameters, tf)
    missing = 0 if last_done is None else max(0, (newest_closed - last_done) // _bar_ms(tf))
    cache = {} if cache is None else cache  # one pass of the loop shares candles and signals per market
    limit = history + min(missing, CATCH_UP_MAX) + 1
    key = (market.pk, tf, limit, next_open(newest_closed, tf))
    if key not in cache:
        cache[key] = latest_candles(market, tf, limit=limit, end_ms=next_open(newest_closed, tf))
    arrays = cache[key]
    newest = int(arrays.time[-1]) if len(arrays.time) else None
    stale = ""
    if newest is None:
        stale = f"No {tf} candles of {market.symbol} are stored."
    elif newest < _previous_open(newest_closed, tf):  # the newest closed bar may still be arriving; older may not
        stale = (f"The latest stored {tf} candle of {market.symbol} closed at {_iso(next_open(newest, tf))}; "
                 f"the bars that closed since, up to {_iso(next_open(newest_closed, tf))}, are missing (late by more "
                 "than a bar): no new entries.")
    _set_stale(loop, stale)
    result["stale"] = bool(stale)
    if newest is None:
        loop.save(last_tick_at=timezone.now())
        return result
    todo = np.flatnonzero(arrays.time > last_done) if last_done is not None else np.array([len(arrays.time) - 1])
    if len(todo):
        skey = (*key, loop.config.strategy_key, json.dumps(loop.config.parameters, sort_keys=True))
        if skey not in cache:
            cache[skey] = get_strategy(loop.config.strategy_key).signals(_bars(arrays, tf), loop.config.parameters)
        signals = cache[skey]
        active_since = _ms(deployment.state_changed_at) if deployment.state_changed_at else 0
        for i in todo:
            t = int(arrays.time[i])
            close_time = next_open(t, tf)
            may_enter, why = True, ""
            if deployment.state != DeploymentState.ACTIVE:
                may_enter, why = False, f"the deployment is {deployment.state}"
            elif close_time < active_since:
                may_enter, why = False, "the bar closed before the deployment was activated"
            elif stale:
                may_enter, why = False, "market data is stale"
            elif not loop.paper and t != newest:
                may_enter, why = False, "a missed bar: only the newest bar's signal is sent to an exchange"
            bar = (float(arrays.open[i]), float(arrays.high[i]), float(arrays.low[i]), float(arrays.close[i]))
            if loop.first_bar is None:
                loop.first_bar = t
            outcome = loop.on_bar(bar, t, signal_row(signals, int(i)), may_enter=may_enter, why_not=why)
            result["bars"] += 1
            result["orders"] += [o.client_order_id for o in outcome.orders]
            result["trades"] += outcome.trades
            result["refused"] += outcome.refused
            loop.last_bar_time = t
            if len(todo) > 1:
                loop.save(last_bar_time=t)  # catching up: keep the progress bar by bar
            if loop.halted:
                break
    close = Decimal(str(float(arrays.close[-1])))
    snapshot = portfolio_snapshot_take(deployment=deployment, prices={market.symbol: close},
                                       time=timezone.now())
    result["equity"] = str(snapshot.equity)
    loop.save(last_tick_at=timezone.now(), last_error="", last_bar_time=loop.last_bar_time)
    result["elapsed_s"] = round(_time.perf_counter() - started, 4)
    if loop.halted:
        result["error"] = loop.halted
    if stopping:
        _finish_stop(loop, result)
    return result


def _finish_stop(loop: DeploymentLoop, result: dict) -> None:
    """A stopped deployment is done once its exit policy is carried out: with "close" when the
    position is flat; with "keep" at once. Its remaining open entry orders are cancelled."""
    d = loop.deployment
    if d.exit_policy == ExitPolicy.CLOSE and loop.state.side is not None:
        result["note"] = "stopping: waiting for the closing order to fill"
        return
    for order in Order.objects.filter(deployment=d, status__in=OPEN_STATUSES, parent__isnull=True):
        if d.exit_policy == ExitPolicy.KEEP and order.type != "market":
            continue  # kept positions keep their protective orders
        order_cancel(order=order, reason="deployment stopped")
    loop.save(exit_applied_at=timezone.now())
    audit_record("trading.deployment.exit_applied", target=d, reason=f"exit policy {d.exit_policy} carried out",
                 metadata={"position": loop.state.side or "flat", "size": loop.state.size})
    result["note"] = f"stopped; exit policy {d.exit_policy} carried out"
    _publish_deployment(d)


def request_exit(loop: DeploymentLoop, *, reason: str, intent_index: int, source: str, at_ms: int | None = None,
                 actor=None) -> Order | None:
    """Close the loop's position with a market exit through the pre-trade check and the broker.

    Paper: the order rests and the engine fills it at the next bar's open (the backtest's rule);
    testnet/live: sent now, and its fills are booked into the engine state at once. The client
    order id uses the decision time (`at_ms`, default now) as its bar. None when flat."""
    state, d, market = loop.state, loop.deployment, loop.market
    if state.side is None:
        return None
    at_ms = int(at_ms if at_ms is not None else _time.time() * 1000)
    amount = round_amount(to_decimal(state.size), market.amount_step)
    side = OrderSide.SELL if state.side == "long" else OrderSide.BUY
    price = to_decimal(state.last_close) if not math.isnan(state.last_close) else None
    verdict = risk_check(intent=RiskIntent(
        deployment_id=d.pk, account_id=d.account_id, owner_id=d.owner_id, symbol=market.symbol, side=side,
        amount=amount, price=price or Decimal(0), reduces_position=True, source=source))
    order = order_place(deployment=d, side=side, amount=amount, signal_bar_time=at_ms - at_ms % 1000,
                        intent_index=intent_index, reference_price=price, broker=loop.broker, verdict=verdict.as_dict(),
                        decision={"kind": "exit", "reason": reason, "by": source,
                                  "actor": actor.get_username() if actor is not None else None,
                                  "position": {"side": state.side, "size": state.size,
                                               "entry_price": state.entry_price}})
    if order.status not in (OrderStatus.FAILED, OrderStatus.REJECTED):
        state.values[core.S_PEND_EXIT] = 1.0
        loop.apply_exchange_fills()
    loop.save()
    return order


def _previous_open(open_ms: int, timeframe: str) -> int:
    return floor_time(open_ms - 1, timeframe)


def _bar_ms(timeframe: str) -> int:
    return nominal_ms(timeframe)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- the beat's entry point ------------------------------------------------------------------
def deployments_due(now_ms: int | None = None):
    """Deployments the loop should visit now: active or paused ones, and stopped ones whose exit
    policy is not carried out yet, whose newest closed bar has not been acted on (a stopped one
    is visited at once)."""
    now_ms = int(now_ms if now_ms is not None else _time.time() * 1000)
    qs = (Deployment.objects.select_related("config__market__exchange", "account")
          .exclude(state=DeploymentState.STOPPED, exit_applied_at__isnull=False))
    due = []
    for d in qs:
        if d.state == DeploymentState.STOPPED and (d.last_tick_at is None or d.last_tick_at < d.state_changed_at):
            due.append(d)
            continue
        newest_closed = _previous_open(floor_time(now_ms, d.config.timeframe), d.config.timeframe)
        if d.last_bar_time is None or d.last_bar_time < newest_closed:
            due.append(d)
    return due


def deployment_tick_safely(*, deployment: Deployment, now_ms: int | None = None, owner: str | None = None,
                           fetch: bool = True, broker: Broker | None = None, cache: dict | None = None) -> dict:
    """`deployment_tick` inside the deployment's lease; any failure is stored on the deployment
    (`last_error`), audited, alerted, and returned — never raised — so one deployment cannot stop
    the loop for the others. {"skipped": "busy"} when another worker holds the lease."""
    try:
        with deployment_running(deployment, owner=owner):
            return deployment_tick(deployment=deployment, now_ms=now_ms, fetch=fetch, broker=broker, cache=cache)
    except DeploymentBusy:
        return {"deployment": deployment.pk, "skipped": "busy"}
    except BrokerError as exc:
        return _tick_failed(deployment, exc.message, pause=exc.code == "auth_failed")
    except Exception as exc:  # noqa: BLE001 - stored with its reason; the loop goes on
        log.exception("tick of deployment %s failed", deployment.pk)
        return _tick_failed(deployment, f"{type(exc).__name__}: {exc}", pause=False)


def _tick_failed(deployment: Deployment, message: str, *, pause: bool) -> dict:
    message = message[:2000]
    Deployment.objects.filter(pk=deployment.pk).update(last_error=message, last_tick_at=timezone.now())
    audit_record("trading.deployment.tick_failed", target=deployment, reason=message)
    alert_raise(severity="error", source="trading", title=f"Trading tick failed: {deployment}", message=message,
                target=deployment, key=f"tick-failed:deployment-{deployment.pk}")
    deployment.refresh_from_db()
    if pause and deployment.state == DeploymentState.ACTIVE:
        deployment_pause(deployment=deployment, reason=f"Paused after a failure: {message}")
    _publish_deployment(deployment)
    return {"deployment": deployment.pk, "error": message}


def engine_tick_all(*, now_ms: int | None = None, fetch: bool = True) -> list[dict]:
    """One pass of the loop over every due deployment (the beat task's body)."""
    cache: dict = {}
    return [deployment_tick_safely(deployment=d, now_ms=now_ms, fetch=fetch, cache=cache)
            for d in deployments_due(now_ms)]


__all__ = ["DeploymentLoop", "deployment_tick", "deployment_tick_safely", "engine_tick_all", "deployments_due",
           "candles_refresh", "request_exit", "state_dump", "state_load", "history_bars", "signal_row",
           "engine_config_for"]
