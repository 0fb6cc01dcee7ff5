"""PaperBroker: orders filled against real stored candles by the backtest's own fill rules.

The broker holds no fill rule of its own. An order placed at a bar's close rests here; when the
trading loop advances the deployment's engine state over the next stored bar
(:meth:`PaperBroker.execute_bar`), the engine core (quant.engine.core, through
``stepper.step(..., simulate_fills=True)``) fills the pending order at that bar's open ±
slippage, charges the fee, and checks stop before target with gap-through at the open — exactly
as in a backtest. This broker only maps the engine's fills back to the resting orders and reports
them as an exchange would (OrderReport / TradeReport, Decimal amounts).

Market orders of the engine are sized at the fill by the config's sizing rule (as the backtest
sizes them), so a filled paper order may show `filled` different from the `amount` estimated at
the signal close. A resting market order that gets no fill at the open (the engine skipped the
entry: no size within the budget or the minimums) expires with that reason.
"""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from quant.engine import core
from quant.engine.stepper import EngineState, Hook, StepResult, step

from .base import Balance, Broker, BrokerError, OrderReport, OrderRequest, ProtectiveRequest, TradeReport

def to_decimal(value: float, places: int = 12) -> Decimal:
    """A float price/amount/fee as a Decimal with at most `places` decimals (the Order/Fill columns)."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places)).normalize()


class PaperBroker(Broker):
    """The venue of paper accounts (and of replays). `resting` are the orders accepted and not yet
    settled (OrderReports, e.g. loaded from the deployment's open Order rows)."""

    supports_oco = True  # stop and target are held together by the engine core

    def __init__(self, account=None, *, resting: list[OrderReport] | None = None, symbol: str = ""):
        self.account = account
        self.symbol = symbol
        self.resting: dict[str, OrderReport] = {r.client_order_id: r for r in resting or []}
        self.settled: dict[str, OrderReport] = {}
        self._trade_seq = 0

    # --- the Broker interface -------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> OrderReport:
        known = self.resting.get(request.client_order_id) or self.settled.get(request.client_order_id)
        if known is not None:
            return known  # same client order id: the same order
        if request.side not in ("buy", "sell"):
            raise BrokerError("invalid_order", f"Unknown side {request.side!r}.")
        if request.type not in ("market",):
            raise BrokerError("not_supported", "Paper trading sends market orders; stops and targets are held by "
                                               "the engine core.")
        report = OrderReport(client_order_id=request.client_order_id,
                             exchange_order_id=f"paper-{request.client_order_id}", symbol=request.symbol,
                             side=request.side, type=request.type, status="open", amount=request.amount,
                             filled=Decimal(0), average=None, raw={"venue": "paper", "fills_at": "next bar's open"})
        self.resting[request.client_order_id] = report
        return report

    def place_protective(self, request: ProtectiveRequest) -> OrderReport:
        report = OrderReport(client_order_id=request.client_order_id,
                             exchange_order_id=f"paper-{request.client_order_id}", symbol=request.symbol,
                             side=request.side, type="oco" if request.take_profit_price is not None else "stop_loss",
                             status="open", amount=request.amount, filled=Decimal(0), average=None,
                             price=request.take_profit_price,
                             raw={"venue": "paper", "held_by": "engine core: stop before target, gaps at the open"})
        self.resting[request.client_order_id] = report
        return report

    def cancel_order(self, *, symbol: str, client_order_id: str = "", exchange_order_id: str = "") -> OrderReport:
        report = self.resting.pop(client_order_id, None)
        if report is None:
            raise BrokerError("not_found", f"No open paper order {client_order_id}.")
        report = replace(report, status="canceled")
        self.settled[client_order_id] = report
        return report

    def fetch_order(self, *, symbol: str, client_order_id: str = "", exchange_order_id: str = "") -> OrderReport | None:
        return self.resting.get(client_order_id) or self.settled.get(client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        return [r for r in self.resting.values() if symbol is None or r.symbol == symbol]

    def recent_orders(self, symbol: str, since_ms: int | None = None) -> list[OrderReport]:
        return [r for r in [*self.resting.values(), *self.settled.values()] if r.symbol == symbol]

    def my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]:
        return [t for r in self.settled.values() if r.symbol == symbol for t in r.trades]

    def balance(self) -> dict[str, Balance]:
        if self.account is None:
            return {}
        amount = self.account.paper_balance or Decimal(0)
        return {self.account.paper_currency: Balance(self.account.paper_currency, amount, Decimal(0), amount)}

    # --- filling --------------------------------------------------------------------------------
    def execute_bar(self, state: EngineState, bar: tuple, signals, *, hook: Hook | None, bar_time: int
                    ) -> tuple[StepResult, list[OrderReport], list]:
        """Advance `state` over one stored bar ``(open, high, low, close)`` opening at `bar_time`
        (epoch ms) with the engine core's own fill rules, then decide on the bar's `signals` row
        (``hook`` sees each new intent and may place orders here).

        Returns the step, the reports of the resting orders it settled (market orders filled at
        the open, or expired when the engine had nothing to fill for them) and the engine's fills
        no resting order stands for (stop-loss, take-profit and trailing-stop exits, which the
        engine core holds)."""
        had_pending = state.values[core.S_PEND_EXIT] != 0 or state.values[core.S_PEND_ENTRY] != 0
        # what rested before this bar (the hook may place new orders during the step)
        market = sorted((r for r in self.resting.values() if r.type == "market"), key=lambda r: r.client_order_id)
        result = step(state, (*bar, bar_time), signals, hook=hook, simulate_fills=True)
        if not (had_pending or result.fills or market):
            return result, [], []
        settled: list[OrderReport] = []
        unmatched = []
        for fill in result.fills:
            order = None
            if fill.reason == "signal":
                order = next((r for r in market if r.side == fill.direction and r.status == "open"), None)
            if order is None:
                unmatched.append(fill)
            else:
                settled.append(self._filled(order, fill, bar_time))
        for order in market:
            if order.status == "open" and order.client_order_id in self.resting:
                settled.append(self._settle(order, "expired", reason=(
                    "Not filled at the open: the engine had nothing to fill for it (an entry with no size within "
                    "the budget and the minimums, or an exit of a position already closed).")))
        return result, settled, unmatched

    def execute_now(self, client_order_id: str, fill, bar_time: int) -> OrderReport:
        """Fill the resting order `client_order_id` with an engine fill (an exit the engine core
        made at a protective level)."""
        return self._filled(self.resting[client_order_id], fill, bar_time)

    def _filled(self, order: OrderReport, fill, bar_time: int) -> OrderReport:
        self._trade_seq += 1
        amount, price, fee = to_decimal(fill.amount), to_decimal(fill.price), to_decimal(fill.fee)
        trade = TradeReport(trade_id=f"paper-{order.client_order_id}-{len(order.trades) + 1}",
                            order_id=order.exchange_order_id, symbol=order.symbol, side=fill.direction, amount=amount,
                            price=price, fee=fee, fee_currency=self.quote, time_ms=bar_time)
        report = replace(order, status="filled", filled=order.filled + amount, average=price, fee=order.fee + fee,
                         fee_currency=self.quote, trades=[trade], time_ms=bar_time,
                         raw={**order.raw, "fill_reason": fill.reason, "bar_time": bar_time})
        order.status = "filled"
        self.resting.pop(order.client_order_id, None)
        self.settled[order.client_order_id] = report
        return report

    def _settle(self, order: OrderReport, status: str, *, reason: str) -> OrderReport:
        report = replace(order, status=status, trades=[], raw={**order.raw, "reason": reason})
        order.status = status
        self.resting.pop(order.client_order_id, None)
        self.settled[order.client_order_id] = report
        return report

    @property
    def quote(self) -> str:
        if self.symbol and "/" in self.symbol:
            return self.symbol.split("/")[1].split(":")[0]
        return getattr(self.account, "paper_currency", "") or ""
