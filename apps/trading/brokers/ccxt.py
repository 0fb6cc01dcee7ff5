"""CcxtBroker: testnet and live orders through the one ccxt factory (apps.marketdata.exchanges).

Retries, as freqtrade's exchange wrapper does them: reads (fetch order, open orders, trades,
balance) and cancels are safe to repeat and are retried on transient errors; placing an order
is sent once. When a placement times out or the connection drops, the order may or may not
exist: we look it up by its client order id before saying anything, and a later placement with
the same id is refused by the exchange as a duplicate, which again leads to the lookup. So one
intent is one order however often it is retried.

Errors become BrokerError with a stable code (insufficient_balance, invalid_order, auth_failed,
unknown_symbol, network, ...) and a message scrubbed of credentials.
"""
from __future__ import annotations

import logging
import time
from decimal import Decimal

import ccxt

from apps.marketdata import exchanges

from .base import (Balance, Broker, BrokerError, OrderReport, OrderRequest, ProtectiveRequest, TradeReport,
                   round_amount, round_price)

log = logging.getLogger(__name__)

READ_ATTEMPTS = 4
RETRY_DELAY = 0.25  # seconds, doubled each retry
LOOKUP_ATTEMPTS = 3  # after an unknown placement outcome
PAGE_LIMIT = 500  # orders / trades per request when paging through history (Binance's default page)
STATUS = {"open": "open", "closed": "filled", "canceled": "canceled", "cancelled": "canceled", "expired": "expired",
          "rejected": "rejected"}
# exchanges whose spot OCO (orderList/oco) we drive through ccxt's implicit API
OCO_EXCHANGES = ("binance",)


def classify(exc: Exception, client) -> BrokerError:
    """A BrokerError (stable code, scrubbed message) for a ccxt exception."""
    message = exchanges.translate_error(exc, client).message
    if isinstance(exc, ccxt.InsufficientFunds):
        return BrokerError("insufficient_balance", f"Insufficient balance: {message}")
    if isinstance(exc, (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended)):
        return BrokerError("auth_failed", message)
    if isinstance(exc, ccxt.BadSymbol):
        return BrokerError("unknown_symbol", message)
    if isinstance(exc, ccxt.OrderNotFound):
        return BrokerError("not_found", message)
    if isinstance(exc, ccxt.InvalidOrder) and "duplicate" in str(exc).lower():
        return BrokerError("duplicate", message)
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.BadRequest)):
        return BrokerError("invalid_order", f"The exchange refused the order: {message}")
    if isinstance(exc, ccxt.NotSupported):
        return BrokerError("not_supported", message)
    if isinstance(exc, ccxt.NetworkError):
        return BrokerError("network", message, retryable=True)
    return BrokerError("exchange_error", message)


def _dec(value) -> Decimal | None:
    if value in (None, ""):
        return None
    return Decimal(str(value))


class CcxtBroker(Broker):
    def __init__(self, account, *, client=None, sleep=time.sleep):
        self.account = account
        self.exchange_id = account.exchange.code
        self._sleep = sleep
        try:
            self.client = client or exchanges.build_client(self.exchange_id, credentials=account.credentials(),
                                                           sandbox=account.sandbox)
        except exchanges.MarketDataError as exc:
            raise BrokerError("exchange_error", exc.message) from None
        self.supports_oco = self.exchange_id in OCO_EXCHANGES and hasattr(self.client, "privatePostOrderListOco")
        self._markets_loaded = False

    # --- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, *args, safe: bool, **kwargs):
        """client.<method>(...); repeated on transient errors only when `safe`."""
        if not self._markets_loaded and method != "load_markets":
            self._call("load_markets", safe=True)
            self._markets_loaded = True
        attempts = READ_ATTEMPTS if safe else 1
        for attempt in range(1, attempts + 1):
            try:
                return getattr(self.client, method)(*args, **kwargs)
            except ccxt.NetworkError as exc:
                if attempt == attempts:
                    raise classify(exc, self.client) from None
                log.warning("%s %s failed (%s), retry %d/%d", self.exchange_id, method, type(exc).__name__, attempt,
                            attempts - 1)
                self._sleep(RETRY_DELAY * 2 ** (attempt - 1))
            except ccxt.BaseError as exc:
                raise classify(exc, self.client) from None

    def _market(self, symbol: str) -> dict:
        if not self._markets_loaded:
            self._call("load_markets", safe=True)
            self._markets_loaded = True
        try:
            return self.client.market(symbol)
        except ccxt.BaseError:
            raise BrokerError("unknown_symbol", f"Unknown symbol {symbol!r} on {self.exchange_id}.") from None

    def _amount(self, symbol: str, amount: Decimal) -> str:
        step = _dec((self._market(symbol).get("precision") or {}).get("amount"))
        return format(round_amount(amount, step if self.client.precisionMode == ccxt.TICK_SIZE else None), "f")

    def _price(self, symbol: str, price: Decimal) -> str:
        step = _dec((self._market(symbol).get("precision") or {}).get("price"))
        return format(round_price(price, step if self.client.precisionMode == ccxt.TICK_SIZE else None), "f")

    def _report(self, o: dict) -> OrderReport:
        fee = o.get("fee") or {}
        fees = o.get("fees") or ([fee] if fee else [])
        trades = [self._trade(t) for t in (o.get("trades") or [])]
        status = STATUS.get(o.get("status") or "", "open")
        filled = _dec(o.get("filled")) or Decimal(0)
        if status == "open" and filled > 0:
            status = "partially_filled"
        info = o.get("info") or {}
        return OrderReport(
            client_order_id=o.get("clientOrderId") or "", exchange_order_id=str(o.get("id") or ""),
            symbol=o.get("symbol") or "", side=o.get("side") or "", type=o.get("type") or "", status=status,
            amount=_dec(o.get("amount")) or Decimal(0), filled=filled, average=_dec(o.get("average")),
            price=_dec(o.get("price")), fee=sum((_dec(f.get("cost")) or Decimal(0) for f in fees), Decimal(0)),
            fee_currency=(fees[0].get("currency") or "") if fees else "", time_ms=o.get("timestamp"),
            trades=trades, raw=info if isinstance(info, dict) else {},
        )

    @staticmethod
    def _trade(t: dict) -> TradeReport:
        fee = t.get("fee") or {}
        return TradeReport(
            trade_id=str(t.get("id") or ""), order_id=str(t.get("order") or ""), symbol=t.get("symbol") or "",
            side=t.get("side") or "", amount=_dec(t.get("amount")) or Decimal(0),
            price=_dec(t.get("price")) or Decimal(0), fee=_dec(fee.get("cost")) or Decimal(0),
            fee_currency=fee.get("currency") or "", time_ms=int(t.get("timestamp") or 0),
        )

    # --- orders ---------------------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> OrderReport:
        symbol = request.symbol
        params: dict = {"clientOrderId": request.client_order_id}
        price = None
        otype = request.type
        if otype == "limit":
            price = self._price(symbol, request.price)
        elif otype == "stop_loss":
            params["stopLossPrice"] = self._price(symbol, request.stop_price)
            otype = "market"
        elif otype == "take_profit":
            params["takeProfitPrice"] = self._price(symbol, request.stop_price)
            otype = "market"
        amount = self._amount(symbol, request.amount)
        try:
            raw = self._call("create_order", symbol, otype, request.side, amount, price, params, safe=False)
        except BrokerError as exc:
            if exc.code not in ("network", "duplicate"):
                raise
            # The order may exist (accepted, answer lost; or sent before a crash): find it.
            found = self._lookup(symbol, request.client_order_id)
            if found is not None:
                log.info("order %s already on %s after %s: using it", request.client_order_id, self.exchange_id,
                         exc.code)
                return found
            raise
        report = self._report(raw)
        report.client_order_id = report.client_order_id or request.client_order_id
        if report.filled and not report.trades:
            report.trades = self.my_trades(symbol, order_id=report.exchange_order_id)
        return report

    def _lookup(self, symbol: str, client_order_id: str) -> OrderReport | None:
        for attempt in range(LOOKUP_ATTEMPTS):
            try:
                return self.fetch_order(symbol=symbol, client_order_id=client_order_id)
            except BrokerError as exc:
                if exc.code != "network" or attempt == LOOKUP_ATTEMPTS - 1:
                    raise
                self._sleep(RETRY_DELAY * 2 ** attempt)
        return None

    def place_protective(self, request: ProtectiveRequest) -> OrderReport:
        symbol = request.symbol
        if request.take_profit_price is not None and self.supports_oco:
            market = self._market(symbol)
            payload = {
                "symbol": market["id"], "side": request.side.upper(), "quantity": self._amount(symbol, request.amount),
                "listClientOrderId": request.client_order_id,
                "newOrderRespType": "FULL",
            }
            above, below = ("above", "below") if request.side == "sell" else ("below", "above")
            payload.update({
                f"{above}Type": "LIMIT_MAKER", f"{above}Price": self._price(symbol, request.take_profit_price),
                f"{above}ClientOrderId": f"{request.client_order_id}t",
                f"{below}Type": "STOP_LOSS", f"{below}StopPrice": self._price(symbol, request.stop_price),
                f"{below}ClientOrderId": f"{request.client_order_id}s",
            })
            try:
                raw = self._call("privatePostOrderListOco", payload, safe=False)
            except BrokerError as exc:
                if exc.code not in ("network", "duplicate"):
                    raise
                raw = self._call("privateGetOrderList", {"origClientOrderId": request.client_order_id}, safe=True)
            return self._list_report(raw, request)
        if self.client.has.get("createStopLossOrder") or self.exchange_id in OCO_EXCHANGES:
            # no OCO here: the stop rests on the exchange, the engine watches the target
            return self.place_order(OrderRequest(client_order_id=request.client_order_id, symbol=symbol,
                                                 side=request.side, amount=request.amount, type="stop_loss",
                                                 stop_price=request.stop_price))
        raise BrokerError("not_supported", f"{self.exchange_id} cannot rest stop orders through ccxt: the engine "
                                           "manages the stop-loss and take-profit.")

    def _list_report(self, raw: dict, request: ProtectiveRequest) -> OrderReport:
        status = {"EXECUTING": "open", "ALL_DONE": "filled", "REJECT": "rejected"}.get(raw.get("listOrderStatus"),
                                                                                       "open")
        return OrderReport(
            client_order_id=raw.get("listClientOrderId") or request.client_order_id,
            exchange_order_id=str(raw.get("orderListId") or ""), symbol=request.symbol, side=request.side,
            type="oco", status=status, amount=request.amount, filled=Decimal(0), average=None,
            leg_ids=[str(o.get("orderId")) for o in raw.get("orders") or []], raw=raw,
        )

    def cancel_order(self, *, symbol: str, client_order_id: str = "", exchange_order_id: str = "") -> OrderReport:
        params = {"clientOrderId": client_order_id} if client_order_id and not exchange_order_id else {}
        raw = self._call("cancel_order", exchange_order_id or None, symbol, params, safe=True)
        return self._report(raw)

    def fetch_order(self, *, symbol: str, client_order_id: str = "", exchange_order_id: str = "") -> OrderReport | None:
        params = {"clientOrderId": client_order_id} if client_order_id and not exchange_order_id else {}
        try:
            raw = self._call("fetch_order", exchange_order_id or None, symbol, params, safe=True)
        except BrokerError as exc:
            if exc.code == "not_found":
                return None
            raise
        report = self._report(raw)
        if report.filled and not report.trades:
            report.trades = self.my_trades(symbol, order_id=report.exchange_order_id)
        return report

    def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        return [self._report(o) for o in self._call("fetch_open_orders", symbol, safe=True)]

    def _paged(self, method: str, symbol: str, since_ms: int, params: dict | None = None) -> list[dict]:
        """Every item of `method` from `since_ms` on, page by page (PAGE_LIMIT each): the next
        page starts at the last item's time (items of that millisecond are read again and
        dropped by id), until a page comes back short or brings nothing new."""
        out, seen, since = [], set(), since_ms
        while True:
            page = self._call(method, symbol, since, PAGE_LIMIT, dict(params or {}), safe=True) or []
            new = [item for item in page if item.get("id") not in seen]
            for item in new:
                seen.add(item.get("id"))
                out.append(item)
            if len(page) < PAGE_LIMIT or not new:
                return out
            since = max(int(item.get("timestamp") or since) for item in page)

    def recent_orders(self, symbol: str, since_ms: int | None = None) -> list[OrderReport]:
        """Orders of `symbol` from `since_ms` on, all of them (paged); without `since_ms` the
        exchange's latest page."""
        if since_ms is None:
            return [self._report(o) for o in self._call("fetch_orders", symbol, None, safe=True)]
        return [self._report(o) for o in self._paged("fetch_orders", symbol, since_ms)]

    def my_trades(self, symbol: str, since_ms: int | None = None, *, order_id: str = "") -> list[TradeReport]:
        """Our trades of `symbol` (of one order with `order_id`); from `since_ms` on, all of them
        (paged); without it the exchange's latest page."""
        params = {"orderId": order_id} if order_id else {}
        if since_ms is None or order_id:
            return [self._trade(t) for t in self._call("fetch_my_trades", symbol, since_ms, None, params, safe=True)]
        return [self._trade(t) for t in self._paged("fetch_my_trades", symbol, since_ms, params)]

    def balance(self) -> dict[str, Balance]:
        raw = self._call("fetch_balance", safe=True)
        self._last_balance_info = raw.get("info") or {}
        out = {}
        for currency, total in (raw.get("total") or {}).items():
            free, used = (raw.get("free") or {}).get(currency), (raw.get("used") or {}).get(currency)
            out[currency] = Balance(currency, _dec(free) or Decimal(0), _dec(used) or Decimal(0),
                                    _dec(total) or Decimal(0))
        return out

    # --- key permissions ------------------------------------------------------------------------
    def key_permissions(self) -> dict:
        """{"read", "trade", "withdraw": True/False/None (unknown), "source"}: what this key may do.

        Binance (live): sapi/v1/account/apiRestrictions. Otherwise the account endpoint's
        canTrade/canWithdraw when the exchange reports them; else only "read" is known.
        """
        if self.exchange_id == "binance" and not self.account.sandbox:
            try:
                r = self._call("sapiGetAccountApiRestrictions", safe=True)
                return {"read": bool(r.get("enableReading")), "trade": bool(r.get("enableSpotAndMarginTrading")),
                        "withdraw": bool(r.get("enableWithdrawals")), "source": "apiRestrictions"}
            except BrokerError as exc:
                if exc.code == "auth_failed":
                    raise
                log.info("apiRestrictions unavailable on %s: %s", self.exchange_id, exc.message)
        info = getattr(self, "_last_balance_info", None)
        if info is None:
            self.balance()
            info = self._last_balance_info
        trade = info.get("canTrade") if isinstance(info, dict) else None
        withdraw = info.get("canWithdraw") if isinstance(info, dict) else None
        return {"read": True, "trade": None if trade is None else bool(trade),
                "withdraw": None if withdraw is None else bool(withdraw), "source": "account"}
