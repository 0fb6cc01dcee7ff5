"""The one interface every broker implements, and the rules every order meets before it is sent.

A broker places, cancels and looks up orders, lists open orders and our trades, and reports
balances. Orders carry a client order id derived from (deployment, signal bar, intent), so
placing the same intent twice finds the first order instead of making a second.

Amounts and prices are Decimal, rounded to the market's steps the way ccxt's
`amount_to_precision` / `price_to_precision` do: amounts DOWN (never more than intended or
affordable), prices to the nearest tick. Minimum amount and minimum notional are checked here,
before anything is sent, with a reason a person can act on.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CLIENT_ID_PREFIX = "tp"
CLIENT_ID_MAX = 36  # Binance newClientOrderId: ^[a-zA-Z0-9-_]{1,36}$
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    if n < 0:
        raise ValueError("base36 of a negative number")
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if n == 0:
            return out


def client_order_id(deployment_id: int, bar_time_ms: int, intent: int, *, suffix: str = "") -> str:
    """`tp-<deployment>-<bar open time in seconds, base 36>-<intent>[<suffix>]`: the same
    (deployment, bar, intent) always gives the same id; at most 36 characters of [A-Za-z0-9_-]
    (Binance's rule, the strictest of the exchanges we target)."""
    cid = f"{CLIENT_ID_PREFIX}-{deployment_id}-{_base36(bar_time_ms // 1000)}-{intent}{suffix}"
    if not _CLIENT_ID_RE.match(cid):
        raise ValueError(f"client order id {cid!r} is longer than {CLIENT_ID_MAX} characters or has characters "
                         "exchanges refuse")
    return cid


def deployment_prefix(deployment_id: int) -> str:
    """Every client order id of a deployment starts with this."""
    return f"{CLIENT_ID_PREFIX}-{deployment_id}-"


# --- errors --------------------------------------------------------------------------------------
class BrokerError(Exception):
    """An order-level problem with a stable `code` and a message safe to store and show."""

    codes = ("insufficient_balance", "invalid_order", "below_minimum", "auth_failed", "unknown_symbol", "network",
             "duplicate", "not_found", "not_supported", "exchange_error")

    def __init__(self, code: str, message: str, *, retryable: bool = False):
        assert code in self.codes, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


# --- values --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: str  # "buy" / "sell"
    amount: Decimal
    type: str = "market"  # market / limit / stop_loss / take_profit
    price: Decimal | None = None  # limit price
    stop_price: Decimal | None = None  # trigger of stop_loss / take_profit


@dataclass(frozen=True)
class ProtectiveRequest:
    """Stop-loss and take-profit for an open position, as one OCO where the exchange has it."""

    client_order_id: str
    symbol: str
    side: str  # the closing side: "sell" for a long
    amount: Decimal
    stop_price: Decimal
    take_profit_price: Decimal | None = None


@dataclass
class TradeReport:
    trade_id: str
    order_id: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    time_ms: int


@dataclass
class OrderReport:
    """What the exchange says about one order. `status` uses apps.trading.models.OrderStatus values."""

    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: str
    type: str
    status: str
    amount: Decimal
    filled: Decimal
    average: Decimal | None
    price: Decimal | None = None
    fee: Decimal = Decimal(0)
    fee_currency: str = ""
    time_ms: int | None = None
    trades: list[TradeReport] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    leg_ids: list[str] = field(default_factory=list)  # OCO: the legs' exchange order ids


@dataclass
class Balance:
    currency: str
    free: Decimal
    used: Decimal
    total: Decimal


# --- precision and minimums ----------------------------------------------------------------------
def round_amount(amount: Decimal, step: Decimal | None) -> Decimal:
    """Down to a multiple of the lot step (ccxt TRUNCATE)."""
    amount = Decimal(amount)
    if not step:
        return amount
    return (amount / step).to_integral_value(ROUND_DOWN) * step


def round_price(price: Decimal, step: Decimal | None) -> Decimal:
    """To the nearest tick (ccxt ROUND)."""
    price = Decimal(price)
    if not step:
        return price
    return (price / step).to_integral_value(ROUND_HALF_UP) * step


def check_minimums(market, amount: Decimal, price: Decimal | None) -> None:
    """Raise BrokerError("below_minimum") when the order is below the market's minimum amount or
    notional; `price` is the expected fill (a reference price for market orders)."""
    quote, base = market.quote, market.base
    min_amount = market.limit("amount", "min")
    if amount <= 0:
        raise BrokerError("below_minimum", f"Amount rounds to 0 {base} at the market's lot step "
                                           f"{market.amount_step}.")
    if min_amount is not None and amount < min_amount:
        raise BrokerError("below_minimum", f"Amount {amount} {base} is below {market.symbol}'s minimum amount "
                                           f"{min_amount} {base}.")
    min_cost = market.limit("cost", "min")
    if min_cost is not None and price is not None and amount * price < min_cost:
        raise BrokerError("below_minimum", f"Order value {(amount * price).normalize():f} {quote} is below "
                                           f"{market.symbol}'s minimum notional {min_cost} {quote}.")


# --- the interface ------------------------------------------------------------------------------
class Broker(ABC):
    """One execution venue. Every method may raise BrokerError; none retries an unsafe call."""

    #: True when stop-loss + take-profit can rest on the exchange as one OCO
    supports_oco: bool = False

    @abstractmethod
    def place_order(self, request: OrderRequest) -> OrderReport:
        """Send the order; if one with the same client order id already exists, return it."""

    @abstractmethod
    def place_protective(self, request: ProtectiveRequest) -> OrderReport:
        """Protective exit orders (OCO if supported); BrokerError("not_supported") if the
        exchange can rest neither, and the engine must manage them."""

    @abstractmethod
    def cancel_order(self, *, symbol: str, client_order_id: str = "", exchange_order_id: str = "") -> OrderReport:
        ...

    @abstractmethod
    def fetch_order(self, *, symbol: str, client_order_id: str = "", exchange_order_id: str = "") -> OrderReport | None:
        """The order, or None when the exchange does not know it."""

    @abstractmethod
    def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        ...

    @abstractmethod
    def recent_orders(self, symbol: str, since_ms: int | None = None) -> list[OrderReport]:
        """Orders of `symbol` (open and closed) since `since_ms`."""

    @abstractmethod
    def my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]:
        ...

    @abstractmethod
    def balance(self) -> dict[str, Balance]:
        ...
