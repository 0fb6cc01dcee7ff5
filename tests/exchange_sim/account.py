"""The private (signed) half of the simulator: one spot account, its orders, fills and OCO lists.

Mixed into ExchangeSimulator (server.py), which owns markets, the clock, faults and HTTP.
Behaviour follows Binance spot as ccxt sees it; README.md lists what is and is not simulated.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import numpy as np

from .protocol import _Q8, ApiError, _dec_param, _err_mandatory, _int_param, _s8, _strip_signature

MINUTE = 60_000
OPEN = ("NEW", "PARTIALLY_FILLED")
LIMIT_TYPES = ("LIMIT", "LIMIT_MAKER")
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
ORDER_TYPES = ("MARKET",) + LIMIT_TYPES + STOP_TYPES
DEFAULT_API_PERMISSIONS = {
    "ipRestrict": False, "enableReading": True, "enableSpotAndMarginTrading": True, "enableWithdrawals": False,
    "enableInternalTransfer": False, "enableMargin": False, "enableFutures": False,
    "permitsUniversalTransfer": False, "enableVanillaOptions": False, "enablePortfolioMarginTrading": False,
}


@dataclass
class _Order:
    symbol: str
    orderId: int
    clientOrderId: str
    side: str
    type: str
    timeInForce: str | None
    price: Decimal
    origQty: Decimal
    time: int
    origQuoteOrderQty: Decimal = Decimal(0)
    executedQty: Decimal = Decimal(0)
    cumQuote: Decimal = Decimal(0)
    status: str = "NEW"
    updateTime: int = 0
    stopPrice: Decimal = Decimal(0)
    orderListId: int = -1
    locked_asset: str | None = None
    locked_amount: Decimal = Decimal(0)
    fills: list = field(default_factory=list)
    checked_until: int = 0  # resting orders: 1m candles opening before this have been matched

    @property
    def remaining(self) -> Decimal:
        return self.origQty - self.executedQty

    def as_binance(self) -> dict:
        return {
            "symbol": self.symbol,
            "orderId": self.orderId,
            "orderListId": self.orderListId,
            "clientOrderId": self.clientOrderId,
            "price": _s8(self.price),
            "origQty": _s8(self.origQty),
            "executedQty": _s8(self.executedQty),
            "cummulativeQuoteQty": _s8(self.cumQuote),
            "status": self.status,
            "timeInForce": self.timeInForce or "GTC",
            "type": self.type,
            "side": self.side,
            "stopPrice": _s8(self.stopPrice),
            "icebergQty": "0.00000000",
            "time": self.time,
            "updateTime": self.updateTime or self.time,
            "isWorking": True,
            "workingTime": self.time,
            "origQuoteOrderQty": _s8(self.origQuoteOrderQty),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass
class _OrderList:
    orderListId: int
    listClientOrderId: str
    symbol: str
    legs: list  # [above, below] _Order
    time: int
    status: str = "EXECUTING"  # EXECUTING / ALL_DONE

    def as_binance(self, reports: bool = False) -> dict:
        out = {
            "orderListId": self.orderListId, "contingencyType": "OCO",
            "listStatusType": "EXEC_STARTED" if self.status == "EXECUTING" else "ALL_DONE",
            "listOrderStatus": self.status, "listClientOrderId": self.listClientOrderId,
            "transactionTime": self.time, "symbol": self.symbol,
            "orders": [{"symbol": o.symbol, "orderId": o.orderId, "clientOrderId": o.clientOrderId} for o in self.legs],
        }
        if reports:
            out["orderReports"] = [o.as_binance() for o in self.legs]
        return out


class AccountMixin:
    """Balances, orders, trades and OCO lists of the simulator's one account."""

    def _init_account(self, balances, api_permissions=None) -> None:
        self._balances: dict[str, Decimal] = {}
        self._locked: dict[str, Decimal] = {}
        for m in self._markets.values():
            self._balances.setdefault(m.base, Decimal(0))
            self._balances.setdefault(m.quote, Decimal(0))
        init_bal = {"USDT": "100000"} if balances is None else balances
        for asset, amount in init_bal.items():
            self._balances[asset] = Decimal(str(amount))
        self._orders: dict[int, _Order] = {}
        self._lists: dict[int, _OrderList] = {}
        self._client_ids: dict[tuple[str, str], int] = {}
        self._list_client_ids: dict[tuple[str, str], int] = {}
        self._trades: list[dict] = []
        self._next_order_id = 1_000_001
        self._next_trade_id = 5_000_001
        self._next_list_id = 9_001
        #: what GET /sapi/v1/account/apiRestrictions reports (change it to test permission warnings)
        self.api_permissions: dict[str, Any] = {**DEFAULT_API_PERMISSIONS, **(api_permissions or {})}

    def _private_routes(self) -> dict:
        return {
            ("POST", "/api/v3/order"): self._ep_new_order,
            ("GET", "/api/v3/order"): self._ep_get_order,
            ("DELETE", "/api/v3/order"): self._ep_cancel_order,
            ("GET", "/api/v3/openOrders"): self._ep_open_orders,
            ("DELETE", "/api/v3/openOrders"): self._ep_cancel_all,
            ("GET", "/api/v3/allOrders"): self._ep_all_orders,
            ("GET", "/api/v3/account"): self._ep_account,
            ("GET", "/api/v3/myTrades"): self._ep_my_trades,
            ("POST", "/api/v3/orderList/oco"): self._ep_new_oco,
            ("GET", "/api/v3/orderList"): self._ep_get_list,
            ("DELETE", "/api/v3/orderList"): self._ep_cancel_list,
            ("GET", "/sapi/v1/account/apiRestrictions"): self._ep_api_restrictions,
        }

    # ------------------------------------------------------------------ auth and order faults
    def _authenticate(self, req) -> None:
        if self._faults.auth_fail:
            self._count_fault("auth_fail")
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        key = req.headers.get("X-MBX-APIKEY")
        if not key:
            raise ApiError(401, -2014, "API-key format invalid.")
        if key != self.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if "timestamp" not in req.params:
            raise _err_mandatory("timestamp")
        sig = req.params.get("signature")
        if not sig:
            raise _err_mandatory("signature")
        if self.api_secret is not None:
            payload = _strip_signature(req.query) + _strip_signature(req.body)
            expected = hmac.new(self.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, sig.lower()):
                raise ApiError(400, -1022, "Signature for this request is not valid.")

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._fault_counts[kind] = self._fault_counts.get(kind, 0) + 1

    def _take(self, switch: str) -> bool:
        """Consume one pending `switch` (a *_next counter); True if it fired."""
        with self._lock:
            if getattr(self._faults, switch) > 0:
                setattr(self._faults, switch, getattr(self._faults, switch) - 1)
                kind = switch[:-5]
                self._fault_counts[kind] = self._fault_counts.get(kind, 0) + 1
                return True
        return False

    def _order_faults(self) -> None:
        if self._take("reject_next"):
            raise ApiError(400, -2010, "Order rejected: exchange_sim reject fault.")
        if self._take("insufficient_balance_next"):
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")

    # ------------------------------------------------------------------ prices
    def _book(self, sid: str, now: int) -> tuple[Decimal, Decimal, Decimal]:
        """(last, bid, ask) from the last closed 1m candle close +/- spread, tick-rounded."""
        spec = self._markets[sid]
        tick = Decimal(spec.tick_size)
        last = Decimal(repr(self._last_price(sid, now)))
        ask = (last * (1 + self.spread) / tick).to_integral_value(ROUND_UP) * tick
        bid = (last * (1 - self.spread) / tick).to_integral_value(ROUND_DOWN) * tick
        return last, bid, ask

    def _check_filters(self, spec, qty: Decimal, ref_price: Decimal, price: Decimal | None) -> None:
        step, tick = Decimal(spec.step_size), Decimal(spec.tick_size)
        if price is not None and (price <= 0 or price % tick != 0):
            raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if qty <= 0 or qty < Decimal(spec.min_qty) or qty > Decimal(spec.max_qty) or qty % step != 0:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        if qty * ref_price < Decimal(spec.min_notional):
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")

    def _new_client_id(self, spec, cid: str | None) -> str:
        cid = cid or f"sim-{self._next_order_id}"
        existing = self._client_ids.get((spec.id, cid))
        if existing is not None and (self.duplicate_client_order_id == "any" or self._orders[existing].status in OPEN):
            raise ApiError(400, -2010, "Duplicate order sent.")
        return cid

    def _lock_funds(self, order: _Order, asset: str, amount: Decimal) -> None:
        if self._balances.get(asset, Decimal(0)) < amount:
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")
        order.locked_asset, order.locked_amount = asset, amount
        self._balances[asset] -= amount
        self._locked[asset] = self._locked.get(asset, Decimal(0)) + amount

    def _unlock(self, order: _Order) -> None:
        if order.locked_asset:
            self._locked[order.locked_asset] -= order.locked_amount
            self._balances[order.locked_asset] += order.locked_amount
            order.locked_asset, order.locked_amount = None, Decimal(0)

    def _make_order(self, spec, cid, side, otype, tif, price, qty, now, stop=Decimal(0), quote_qty=None) -> _Order:
        order = _Order(symbol=spec.id, orderId=self._next_order_id, clientOrderId=cid, side=side, type=otype,
                       timeInForce=None if otype in ("MARKET", "STOP_LOSS", "TAKE_PROFIT") else (tif or "GTC"),
                       price=price or Decimal(0), origQty=qty, time=now, stopPrice=stop,
                       origQuoteOrderQty=quote_qty or Decimal(0), updateTime=now,
                       checked_until=((now + MINUTE - 1) // MINUTE) * MINUTE)
        self._next_order_id += 1
        self._orders[order.orderId] = order
        self._client_ids[(spec.id, cid)] = order.orderId
        return order

    # ------------------------------------------------------------------ orders
    def _ep_new_order(self, req) -> dict:
        p = req.params
        spec = self._market_or_error(p.get("symbol"))
        side = (p.get("side") or "").upper()
        otype = (p.get("type") or "").upper()
        if not side:
            raise _err_mandatory("side")
        if not otype:
            raise _err_mandatory("type")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        if otype not in ORDER_TYPES:
            raise ApiError(400, -1116, "Invalid orderType.")
        self._order_faults()
        now = self.now()
        cid = self._new_client_id(spec, p.get("newClientOrderId"))
        qty = _dec_param(p, "quantity")
        quote_qty = _dec_param(p, "quoteOrderQty")
        price = _dec_param(p, "price")
        stop = _dec_param(p, "stopPrice")
        tif = p.get("timeInForce")
        step = Decimal(spec.step_size)
        last, bid, ask = self._book(spec.id, now)
        if otype == "MARKET":
            if qty is None and quote_qty is None:
                raise ApiError(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            fill_px = ask if side == "BUY" else bid
            if qty is None:
                qty = (quote_qty / fill_px / step).to_integral_value(ROUND_DOWN) * step
            self._check_filters(spec, qty, fill_px, None)
        else:
            if otype in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") and not tif:
                raise _err_mandatory("timeInForce")
            if qty is None:
                raise _err_mandatory("quantity")
            if otype in STOP_TYPES and stop is None:
                raise _err_mandatory("stopPrice")
            if otype not in ("STOP_LOSS", "TAKE_PROFIT") and price is None:
                raise _err_mandatory("price")
            self._check_filters(spec, qty, price or stop, price)
        crosses = otype == "MARKET" or (otype in LIMIT_TYPES and (price >= ask if side == "BUY" else price <= bid))
        if otype == "LIMIT_MAKER" and crosses:
            raise ApiError(400, -2010, "Order would immediately match and take.")
        if otype in STOP_TYPES and self._triggered(otype, side, stop, last):
            raise ApiError(400, -2010, "Stop price would trigger immediately.")
        if side == "BUY":
            need_asset, need = spec.quote, qty * (ask if crosses else (price or stop))
        else:
            need_asset, need = spec.base, qty
        if self._balances.get(need_asset, Decimal(0)) < need:
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")
        order = self._make_order(spec, cid, side, otype, tif, None if otype == "MARKET" else price, qty, now,
                                 stop or Decimal(0), quote_qty)
        if crosses:
            ratio = Decimal(str(self._faults.partial_fill_ratio or 0))
            part = (qty * ratio / step).to_integral_value(ROUND_DOWN) * step if ratio else qty
            if 0 < part < qty:
                self._count_fault("partial_fill")
            self._fill(order, ask if side == "BUY" else bid, now, maker=False, qty=part if part > 0 else qty)
            if order.status == "PARTIALLY_FILLED":
                if otype == "MARKET" or tif in ("IOC", "FOK"):
                    order.status = "EXPIRED"  # no more liquidity: Binance expires the rest
                else:
                    self._lock_funds(order, need_asset, order.remaining * price if side == "BUY" else order.remaining)
        elif tif in ("IOC", "FOK"):
            order.status = "EXPIRED"
        else:
            self._lock_funds(order, need_asset, need)
        return self._order_response(order, p, now)

    def _order_response(self, order: _Order, p: dict, now: int) -> dict:
        resp_type = (p.get("newOrderRespType") or ("FULL" if order.type in ("MARKET", "LIMIT") else "ACK")).upper()
        if resp_type == "ACK":
            return {"symbol": order.symbol, "orderId": order.orderId, "orderListId": order.orderListId,
                    "clientOrderId": order.clientOrderId, "transactTime": now}
        out = order.as_binance()
        for k in ("time", "updateTime", "isWorking", "icebergQty"):
            out.pop(k, None)
        out["transactTime"] = now
        out["workingTime"] = now
        if resp_type == "FULL":
            out["fills"] = list(order.fills)
        return out

    @staticmethod
    def _triggered(otype: str, side: str, stop: Decimal, price: Decimal) -> bool:
        falling = (otype.startswith("STOP") and side == "SELL") or (otype.startswith("TAKE") and side == "BUY")
        return price <= stop if falling else price >= stop

    def _fill(self, order: _Order, px: Decimal, ts: int, maker: bool, qty: Decimal | None = None) -> None:
        """Execute `qty` (default: the rest) of `order` at `px`; fees in the received asset."""
        spec = self._markets[order.symbol]
        qty = order.remaining if qty is None else min(qty, order.remaining)
        quote = (qty * px).quantize(_Q8, rounding=ROUND_DOWN)
        self._unlock(order)
        if order.side == "BUY":
            commission = (qty * self.fee_rate).quantize(_Q8, rounding=ROUND_UP)
            commission_asset = spec.base
            self._balances[spec.quote] -= quote
            self._balances[spec.base] = self._balances.get(spec.base, Decimal(0)) + qty - commission
        else:
            commission = (quote * self.fee_rate).quantize(_Q8, rounding=ROUND_UP)
            commission_asset = spec.quote
            self._balances[spec.base] -= qty
            self._balances[spec.quote] = self._balances.get(spec.quote, Decimal(0)) + quote - commission
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        order.fills.append({"price": _s8(px), "qty": _s8(qty), "commission": _s8(commission),
                            "commissionAsset": commission_asset, "tradeId": trade_id})
        order.executedQty += qty
        order.cumQuote += quote
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        order.updateTime = ts
        self._trades.append({
            "symbol": order.symbol, "id": trade_id, "orderId": order.orderId, "orderListId": order.orderListId,
            "price": _s8(px), "qty": _s8(qty), "quoteQty": _s8(quote), "commission": _s8(commission),
            "commissionAsset": commission_asset, "time": ts, "isBuyer": order.side == "BUY",
            "isMaker": maker, "isBestMatch": True,
        })

    def _fill_resting(self, order: _Order, px: Decimal, ts: int) -> None:
        """A resting order (or OCO leg) trades: partially once if the partial switch is on."""
        spec = self._markets[order.symbol]
        step = Decimal(spec.step_size)
        lst = self._lists.get(order.orderListId)
        if lst is not None:
            self._finish_list(lst, keep=order, ts=ts)
        ratio = Decimal(str(self._faults.partial_fill_ratio or 0))
        part = None
        if ratio and order.executedQty == 0:
            part = (order.origQty * ratio / step).to_integral_value(ROUND_DOWN) * step
            part = part if 0 < part < order.origQty else None
            if part is not None:
                self._count_fault("partial_fill")
        lock = order.locked_asset, (order.locked_amount / order.remaining if order.remaining else 0)
        self._fill(order, px, ts, maker=order.type in LIMIT_TYPES, qty=part)
        if order.status == "PARTIALLY_FILLED" and lock[0]:
            self._lock_funds(order, lock[0], order.remaining * lock[1])

    def _finish_list(self, lst: _OrderList, *, keep: _Order | None, ts: int) -> None:
        """One leg traded (or the list was cancelled): the other legs expire, the lock goes."""
        for leg in lst.legs:
            self._unlock(leg)
            if leg is not keep and leg.status in OPEN:
                leg.status = "EXPIRED" if keep is not None else "CANCELED"
                leg.updateTime = ts
        lst.status = "ALL_DONE"
        if keep is not None:  # the traded leg holds its own lock again until it fills
            asset, _ = self._list_lock(lst)
            need = keep.remaining if asset != self._markets[lst.symbol].quote else keep.remaining * (keep.price or keep.stopPrice)
            self._lock_funds(keep, asset, need)

    def _list_lock(self, lst: _OrderList) -> tuple[str, Decimal]:
        spec = self._markets[lst.symbol]
        first = lst.legs[0]
        if first.side == "SELL":
            return spec.base, first.origQty
        return spec.quote, max(o.origQty * (o.price or o.stopPrice) for o in lst.legs)

    def _fill_price(self, order: _Order, c: dict, i: int) -> Decimal:
        tick = Decimal(self._markets[order.symbol].tick_size)
        if order.type in LIMIT_TYPES or order.type.endswith("_LIMIT"):
            return order.price
        opened = (Decimal(repr(float(c["open"][i]))) / tick).to_integral_value() * tick
        falling = self._triggered(order.type, order.side, Decimal(1), Decimal(0))
        # market-type stop: the level, or the open if the bar opened beyond it (gap)
        return min(order.stopPrice, opened) if falling else max(order.stopPrice, opened)

    @staticmethod
    def _hits(order: _Order, c: dict) -> np.ndarray:
        if order.type in LIMIT_TYPES:
            px = float(order.price)
            return (c["low"] <= px) if order.side == "BUY" else (c["high"] >= px)
        stop = float(order.stopPrice)
        falling = AccountMixin._triggered(order.type, order.side, Decimal(1), Decimal(0))
        return (c["low"] <= stop) if falling else (c["high"] >= stop)

    def _match_open_orders(self) -> None:
        """Trade resting orders whose price was crossed by a 1m candle closed since placement.
        Within one OCO, when one candle touches both legs the stop leg wins (the worse case)."""
        with self._state_lock:
            now = self.now()
            grid = self._grids["1m"]
            k_last = grid.floor_index(now) - 1  # last closed 1m candle
            seen_lists: set[int] = set()
            for order in list(self._orders.values()):
                if order.status not in OPEN or order.type == "MARKET" or order.orderListId in seen_lists:
                    continue
                model = self._models.get(order.symbol)
                if model is None:
                    continue
                lst = self._lists.get(order.orderListId)
                legs = [o for o in lst.legs if o.status in OPEN] if lst else [order]
                if lst:
                    seen_lists.add(lst.orderListId)
                legs.sort(key=lambda o: not o.type.startswith("STOP"))  # stop legs first
                k = grid.ceil_index(min(o.checked_until for o in legs))
                while k <= k_last:
                    k_end = min(k_last, k + 50_000 - 1)
                    c = model.candles(grid, np.arange(k, k_end + 1, dtype=np.int64))
                    firsts = []
                    for leg in legs:
                        idx = np.nonzero(self._hits(leg, c))[0]
                        firsts.append(int(idx[0]) if idx.size else None)
                    found = [(i, n) for n, i in enumerate(firsts) if i is not None]
                    if found:
                        i, n = min(found)  # earliest candle; ties keep the stop leg (sorted first)
                        leg = legs[n]
                        self._fill_resting(leg, self._fill_price(leg, c, i), int(c["close_time"][i]))
                        break
                    k = k_end + 1
                for leg in legs:
                    leg.checked_until = max(leg.checked_until, grid.time(k_last + 1))

    def _find_order(self, p: dict) -> _Order | None:
        spec = self._market_or_error(p.get("symbol"))
        oid = _int_param(p, "orderId")
        cid = p.get("origClientOrderId")
        order = None
        if oid is not None:
            order = self._orders.get(oid)
        elif cid:
            found = self._client_ids.get((spec.id, cid))
            order = self._orders.get(found) if found is not None else None
        else:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order is None or order.symbol != spec.id:
            return None
        return order

    def _ep_get_order(self, req) -> dict:
        order = self._find_order(req.params)
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return order.as_binance()

    def _cancel(self, order: _Order, new_cid: str | None) -> dict:
        now = self.now()
        lst = self._lists.get(order.orderListId)
        if lst is not None:
            self._finish_list(lst, keep=None, ts=now)
        self._unlock(order)
        order.status = "CANCELED"
        order.updateTime = now
        out = order.as_binance()
        for k in ("time", "updateTime", "isWorking", "workingTime", "icebergQty", "origQuoteOrderQty"):
            out.pop(k, None)
        out["origClientOrderId"] = order.clientOrderId
        out["clientOrderId"] = new_cid or f"sim-cancel-{order.orderId}"
        out["transactTime"] = now
        return out

    def _ep_cancel_order(self, req) -> dict:
        order = self._find_order(req.params)
        if order is None or order.status not in OPEN:
            raise ApiError(400, -2011, "Unknown order sent.")
        return self._cancel(order, req.params.get("newClientOrderId"))

    def _ep_cancel_all(self, req) -> list:
        spec = self._market_or_error(req.params.get("symbol"))
        open_ = [o for o in self._orders.values() if o.symbol == spec.id and o.status in OPEN]
        if not open_:
            raise ApiError(400, -2011, "Unknown order sent.")
        return [self._cancel(o, None) for o in open_ if o.status in OPEN]

    def _ep_open_orders(self, req) -> list:
        sym = req.params.get("symbol")
        if sym:
            sym = self._market_or_error(sym).id
        return [o.as_binance() for o in self._orders.values() if o.status in OPEN and (not sym or o.symbol == sym)]

    def _ep_all_orders(self, req) -> list:
        spec = self._market_or_error(req.params.get("symbol"))
        start = _int_param(req.params, "startTime")
        limit = min(_int_param(req.params, "limit", 500) or 500, 1000)
        out = [o.as_binance() for o in self._orders.values()
               if o.symbol == spec.id and (start is None or o.time >= start)]
        return out[:limit] if start is not None else out[-limit:]

    # ------------------------------------------------------------------ OCO lists
    def _ep_new_oco(self, req) -> dict:
        p = req.params
        spec = self._market_or_error(p.get("symbol"))
        side = (p.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        qty = _dec_param(p, "quantity")
        if qty is None:
            raise _err_mandatory("quantity")
        self._order_faults()
        now = self.now()
        list_cid = p.get("listClientOrderId") or f"sim-list-{self._next_list_id}"
        if (spec.id, list_cid) in self._list_client_ids:
            raise ApiError(400, -2010, "Duplicate order sent.")
        last, _bid, _ask = self._book(spec.id, now)
        legs = []
        for pos in ("above", "below"):
            otype = (p.get(f"{pos}Type") or "").upper()
            if not otype:
                raise _err_mandatory(f"{pos}Type")
            allowed = ("LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT") if (pos == "above") == (side == "SELL") \
                else ("STOP_LOSS", "STOP_LOSS_LIMIT")
            if otype not in allowed:
                raise ApiError(400, -1013, f"{pos}Type must be one of {', '.join(allowed)} for a {side} OCO.")
            price = _dec_param(p, f"{pos}Price")
            stop = _dec_param(p, f"{pos}StopPrice")
            if otype in STOP_TYPES and stop is None:
                raise _err_mandatory(f"{pos}StopPrice")
            if otype not in ("STOP_LOSS", "TAKE_PROFIT") and price is None:
                raise _err_mandatory(f"{pos}Price")
            level = stop if stop is not None else price
            if (pos == "above" and level <= last) or (pos == "below" and level >= last):
                raise ApiError(400, -1013, "The relationship of the prices for the orders is not correct.")
            self._check_filters(spec, qty, level, price)
            legs.append((pos, otype, price, stop))
        cids = []
        for pos, *_ in legs:
            cids.append(self._new_client_id(spec, p.get(f"{pos}ClientOrderId") or f"{list_cid}-{pos}"))
        lst = _OrderList(orderListId=self._next_list_id, listClientOrderId=list_cid, symbol=spec.id, legs=[], time=now)
        need_asset, need = (spec.base, qty) if side == "SELL" else \
            (spec.quote, max(qty * (pr or st) for _, _, pr, st in legs))
        if self._balances.get(need_asset, Decimal(0)) < need:
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")
        self._next_list_id += 1
        for (pos, otype, price, stop), cid in zip(legs, cids):
            tif = p.get(f"{pos}TimeInForce") or ("GTC" if otype.endswith("_LIMIT") else None)
            order = self._make_order(spec, cid, side, otype, tif, price, qty, now, stop or Decimal(0))
            order.orderListId = lst.orderListId
            lst.legs.append(order)
        self._lock_funds(lst.legs[0], need_asset, need)
        self._lists[lst.orderListId] = lst
        self._list_client_ids[(spec.id, list_cid)] = lst.orderListId
        return lst.as_binance(reports=True)

    def _find_list(self, p: dict) -> _OrderList:
        lid = _int_param(p, "orderListId")
        cid = p.get("listClientOrderId") or p.get("origClientOrderId")
        lst = None
        if lid is not None:
            lst = self._lists.get(lid)
        elif cid:
            spec = self._market_or_error(p.get("symbol")) if p.get("symbol") else None
            for (sid, c), found in self._list_client_ids.items():
                if c == cid and (spec is None or sid == spec.id):
                    lst = self._lists[found]
        else:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderListId' must be sent, but both were empty/null!")
        if lst is None:
            raise ApiError(400, -2011, "Order list does not exist.")
        return lst

    def _ep_get_list(self, req) -> dict:
        return self._find_list(req.params).as_binance()

    def _ep_cancel_list(self, req) -> dict:
        lst = self._find_list(req.params)
        if lst.status != "EXECUTING":
            raise ApiError(400, -2011, "Unknown order sent.")
        self._finish_list(lst, keep=None, ts=self.now())
        return lst.as_binance(reports=True)

    # ------------------------------------------------------------------ account
    def _ep_account(self, req) -> dict:
        omit_zero = (req.params.get("omitZeroBalances") or "").lower() == "true"
        assets = sorted(set(self._balances) | set(self._locked))
        balances = []
        for a in assets:
            free, locked = self._balances.get(a, Decimal(0)), self._locked.get(a, Decimal(0))
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": a, "free": _s8(free), "locked": _s8(locked)})
        bps = int(self.fee_rate * 10000)
        rate = _s8(self.fee_rate)
        perms = self.api_permissions
        return {
            "makerCommission": bps, "takerCommission": bps, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": rate, "taker": rate, "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": bool(perms.get("enableSpotAndMarginTrading")),
            "canWithdraw": bool(perms.get("enableWithdrawals")), "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.now(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 354937868,
        }

    def _ep_api_restrictions(self, req) -> dict:
        return {**self.api_permissions, "createTime": 1_600_000_000_000}

    def _ep_my_trades(self, req) -> list:
        p = req.params
        spec = self._market_or_error(p.get("symbol"))
        oid = _int_param(p, "orderId")
        start = _int_param(p, "startTime")
        end = _int_param(p, "endTime")
        from_id = _int_param(p, "fromId")
        limit = min(_int_param(p, "limit", 500) or 500, 1000)
        out = [t for t in self._trades if t["symbol"] == spec.id
               and (oid is None or t["orderId"] == oid)
               and (start is None or t["time"] >= start)
               and (end is None or t["time"] <= end)
               and (from_id is None or t["id"] >= from_id)]
        return out[:limit] if (start is not None or from_id is not None) else out[-limit:]

    # ------------------------------------------------------------------ for tests
    def balances(self) -> dict[str, dict[str, Decimal]]:
        with self._state_lock:
            return {a: {"free": self._balances.get(a, Decimal(0)), "locked": self._locked.get(a, Decimal(0))}
                    for a in sorted(set(self._balances) | set(self._locked))}

    def set_balance(self, asset: str, free: Any) -> None:
        """Set an asset's free balance, as a deposit or a trade made elsewhere would."""
        with self._state_lock:
            self._balances[asset] = Decimal(str(free))

    def orders(self) -> list[dict]:
        with self._state_lock:
            return [o.as_binance() for o in self._orders.values()]

    def order_lists(self) -> list[dict]:
        with self._state_lock:
            return [lst.as_binance(reports=True) for lst in self._lists.values()]

    def fill_order(self, *, client_order_id: str | None = None, order_id: int | None = None,
                   price: Any = None) -> dict:
        """Trade a resting order now (at its limit/stop price unless `price`): "a fill while our
        worker is down". Returns the order as GET /api/v3/order would."""
        with self._state_lock:
            if order_id is None:
                order_id = next(oid for (_, cid), oid in self._client_ids.items() if cid == client_order_id)
            order = self._orders[order_id]
            if order.status not in OPEN:
                raise ValueError(f"order {order_id} is {order.status}, not open")
            px = Decimal(str(price)) if price is not None else (order.price or order.stopPrice)
            self._fill_resting(order, px, self.now())
            return order.as_binance()
