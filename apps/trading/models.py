"""Trading: exchange accounts, deployments, and the orders, fills, positions and portfolio
snapshots they produce.

Prices, amounts, fees and balances are Decimal (rounded to the market's precision before an
order is sent). Secrets are encrypted at rest (tradepulse.core.crypto) and never leave the
server: serializers, audit entries and log lines see only whether a key is set.
"""
from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from tradepulse.core.crypto import EncryptedTextField
from tradepulse.core.models import OwnedModel, TimeStampedModel

AMOUNT = {"max_digits": 32, "decimal_places": 12}
MONEY = {"max_digits": 28, "decimal_places": 8}


class Mode(models.TextChoices):
    PAPER = "paper", "Paper"
    TESTNET = "testnet", "Testnet"
    LIVE = "live", "Live"


class Health(models.TextChoices):
    UNKNOWN = "unknown", "Not checked yet"
    OK = "ok", "OK"
    WARNING = "warning", "Works, with a warning"
    AUTH_FAILED = "auth_failed", "Authentication failed"
    ERROR = "error", "Error"


class ExchangeAccount(OwnedModel):
    """Where a deployment trades: a paper account (starting balance, no key) or an exchange key
    (testnet or live). `health` says what the last connection test found."""

    name = models.CharField(max_length=100)
    exchange = models.ForeignKey("marketdata.Exchange", on_delete=models.PROTECT, related_name="accounts")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PAPER)
    api_key = EncryptedTextField(blank=True, default="")
    api_secret = EncryptedTextField(blank=True, default="")
    api_password = EncryptedTextField(blank=True, default="", help_text="Passphrase, for exchanges that need one.")
    paper_balance = models.DecimalField(**MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal(0))],
                                        help_text="Paper accounts: starting balance in the quote currency.")
    paper_currency = models.CharField(max_length=16, default="USDT", blank=True)
    health = models.CharField(max_length=12, choices=Health.choices, default=Health.UNKNOWN)
    last_error = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    permissions = models.JSONField(default=dict, blank=True,
                                   help_text='What the key may do, from the last test: {"read", "trade", "withdraw"}.')
    balances = models.JSONField(default=dict, blank=True,
                                help_text='Last fetched balances: {"USDT": {"free": "…", "used": "…", "total": "…"}}.')
    balance_baseline = models.JSONField(default=dict, blank=True,
                                        help_text="Balances when our books started; reconciliation explains every "
                                                  "change from here by our fills.")
    baseline_at = models.DateTimeField(null=True, blank=True)

    SECRET_FIELDS = ("api_key", "api_secret", "api_password")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="trading_account_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_mode_display()}, {self.exchange_id and self.exchange.name})"

    @property
    def has_credentials(self) -> bool:
        return bool(self.api_key and self.api_secret)

    @property
    def sandbox(self) -> bool:
        return self.mode == Mode.TESTNET

    def credentials(self) -> dict:
        """ccxt credential keys (plain text): for the broker only, never for a response."""
        out = {"apiKey": self.api_key, "secret": self.api_secret}
        if self.api_password:
            out["password"] = self.api_password
        return out

    def clean(self):
        errors = {}
        if self.mode == Mode.PAPER:
            if self.paper_balance is None or self.paper_balance <= 0:
                errors["paper_balance"] = "A paper account needs a starting balance above 0 (in its quote currency)."
        elif not (self.api_key and self.api_secret):
            errors["api_key"] = f"A {self.get_mode_display().lower()} account needs an API key and secret."
        if self.mode == Mode.TESTNET and self.exchange_id and not self.exchange.supports_sandbox:
            errors["mode"] = f"{self.exchange.name} has no testnet/sandbox in ccxt."
        if self.exchange_id and self.exchange.is_file_source and self.mode != Mode.PAPER:
            errors["exchange"] = f"{self.exchange.name} is a file source, not an exchange: only paper trading."
        if errors:
            raise ValidationError(errors)


class DeploymentState(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"


class ExitPolicy(models.TextChoices):
    KEEP = "keep", "Keep positions open"
    CLOSE = "close", "Close positions"


class Deployment(OwnedModel):
    """A strategy config trading on an account with some capital. Active ones trade each closed
    bar; paused ones manage open positions but take no new entries; stopped ones are done."""

    name = models.CharField(max_length=120, blank=True)
    config = models.ForeignKey("strategies.StrategyConfig", on_delete=models.PROTECT, related_name="deployments")
    account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="deployments")
    capital = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.00000001"))],
                                  help_text="Capital allocated, in the market's quote currency.")
    state = models.CharField(max_length=8, choices=DeploymentState.choices, default=DeploymentState.PAUSED,
                             db_index=True)
    state_reason = models.TextField(blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    exit_policy = models.CharField(max_length=5, choices=ExitPolicy.choices, default=ExitPolicy.KEEP,
                                   help_text="What stopping does with open positions.")
    last_tick_at = models.DateTimeField(null=True, blank=True)
    last_bar_time = models.BigIntegerField(null=True, blank=True, help_text="Open time (epoch ms) of the last bar acted on.")
    lock_owner = models.CharField(max_length=100, blank=True, help_text="Worker holding the run lease.")
    lock_expires_at = models.DateTimeField(null=True, blank=True)
    engine_state = models.JSONField(default=dict, blank=True,
                                    help_text="The engine core's state between ticks (quant.engine.core S_* values, "
                                              "bar counter, last close, entry time).")
    data_stale_since = models.DateTimeField(null=True, blank=True,
                                            help_text="Set while the latest stored candle is late by more than a bar: "
                                                      "no new entries until fresh data arrives.")
    data_stale_reason = models.TextField(blank=True)
    last_error = models.TextField(blank=True, help_text="The last tick's failure, for a person (empty when it ran).")
    exit_applied_at = models.DateTimeField(null=True, blank=True,
                                           help_text="When the exit policy of a stopped deployment was carried out.")
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconciled_until_ms = models.BigIntegerField(null=True, blank=True,
                                                 help_text="Exchange time (epoch ms) up to which orders and trades "
                                                           "were reconciled; the next run pages on from here.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"Deployment {self.pk}"

    @property
    def market(self):
        return self.config.market

    @property
    def mode(self) -> str:
        return self.account.mode

    @property
    def data_stale(self) -> bool:
        return self.data_stale_since is not None


class OrderSide(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    MARKET = "market", "Market"
    LIMIT = "limit", "Limit"
    STOP_LOSS = "stop_loss", "Stop-loss"
    TAKE_PROFIT = "take_profit", "Take-profit"
    OCO = "oco", "OCO (take-profit + stop-loss)"


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Stored, not yet sent"
    SUBMITTED = "submitted", "Sent, answer unknown"
    OPEN = "open", "Open"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELED = "canceled", "Cancelled"
    EXPIRED = "expired", "Expired"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Not sent (refused before sending)"


OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class Order(TimeStampedModel):
    """One order intent of a deployment and what became of it. The row is stored before the
    order is sent, keyed by a client order id derived from (deployment, signal bar, intent), so a
    retry after a crash finds it instead of sending a second one."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="orders")
    account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="orders")
    symbol = models.CharField(max_length=64)
    client_order_id = models.CharField(max_length=64, unique=True)
    exchange_order_id = models.CharField(max_length=64, blank=True, db_index=True)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    type = models.CharField(max_length=12, choices=OrderType.choices, default=OrderType.MARKET)
    amount = models.DecimalField(**AMOUNT)
    price = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Limit price (limit orders).")
    stop_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    take_profit_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING, db_index=True)
    filled = models.DecimalField(**AMOUNT, default=Decimal(0))
    average = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Average fill price.")
    fee = models.DecimalField(**AMOUNT, default=Decimal(0))
    fee_currency = models.CharField(max_length=16, blank=True)
    signal_bar_time = models.BigIntegerField(help_text="Open time (epoch ms) of the bar whose close decided it.")
    intent_index = models.PositiveSmallIntegerField(default=0)
    decision = models.JSONField(default=dict, blank=True, help_text="The decision's inputs (signals, prices, sizing).")
    verdict = models.JSONField(default=dict, blank=True, help_text="The pre-trade check's verdict.")
    reason_code = models.CharField(max_length=32, blank=True,
                                   help_text="insufficient_balance, invalid_order, below_minimum, auth_failed, …")
    reason = models.TextField(blank=True, help_text="Why it was refused or failed, for a person.")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="protective",
                               help_text="The entry a protective (stop/target) order belongs to.")
    submitted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True, help_text="The exchange's last answer about it (no secrets).")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["deployment", "status"]), models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return f"{self.side} {self.amount} {self.symbol} ({self.client_order_id})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Fill(models.Model):
    """One trade of an order, as the exchange reported it (or the paper broker made it)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="fills")
    exchange_trade_id = models.CharField(max_length=64)
    amount = models.DecimalField(**AMOUNT)
    price = models.DecimalField(**AMOUNT)
    fee = models.DecimalField(**AMOUNT, default=Decimal(0))
    fee_currency = models.CharField(max_length=16, blank=True)
    time = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, default="order",
                              help_text="How we learnt of it: order (the placement's answer), poll, reconciliation.")
    engine_applied = models.BooleanField(default=False,
                                         help_text="Booked into the deployment's engine state (live: by the next tick).")

    class Meta:
        ordering = ["-time"]
        constraints = [models.UniqueConstraint(fields=["account", "exchange_trade_id"],
                                               name="trading_fill_unique_trade_per_account")]

    def __str__(self) -> str:
        return f"{self.amount} @ {self.price} ({self.exchange_trade_id})"


class Position(models.Model):
    """A deployment's holding in one symbol (long on spot). Realised PnL accumulates as it is
    reduced; unrealised PnL is marked at the last price seen."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=5, default="flat", choices=[("long", "Long"), ("short", "Short"),
                                                                  ("flat", "Flat")])
    amount = models.DecimalField(**AMOUNT, default=Decimal(0))
    entry_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    realised_pnl = models.DecimalField(**AMOUNT, default=Decimal(0))
    unrealised_pnl = models.DecimalField(**AMOUNT, default=Decimal(0))
    fees = models.DecimalField(**AMOUNT, default=Decimal(0), help_text="Fees paid, in the quote currency.")
    mark_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deployment", "symbol"]
        constraints = [models.UniqueConstraint(fields=["deployment", "symbol"], name="trading_position_unique")]

    def __str__(self) -> str:
        return f"{self.side} {self.amount} {self.symbol}"


class PortfolioSnapshot(models.Model):
    """Equity of a deployment (or a whole account) at one tick."""

    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="snapshots")
    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="snapshots")
    time = models.DateTimeField(db_index=True)
    equity = models.DecimalField(**MONEY)
    cash = models.DecimalField(**MONEY)
    positions_value = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["deployment", "time"])]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M} equity {self.equity}"
