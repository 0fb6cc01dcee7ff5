"""Trading serializers (API now, live events later). Secrets are write-only: a response says
whether a key is set and its last four characters, never the key, secret or passphrase."""
from __future__ import annotations

from datetime import UTC, datetime

from rest_framework import serializers

from apps.marketdata.models import Exchange
from apps.strategies.models import StrategyConfig
from tradepulse.core.api import DateTimeField, ScopedPrimaryKeyRelatedField
from tradepulse.core.crypto import mask

from .models import Deployment, ExchangeAccount, Fill, Mode, Order, PortfolioSnapshot, Position


class ExchangeAccountSerializer(serializers.ModelSerializer):
    exchange = ScopedPrimaryKeyRelatedField(queryset=Exchange.objects.all())
    exchange_name = serializers.CharField(source="exchange.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    api_key = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=True,
                                    style={"input_type": "password"})
    api_secret = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                       style={"input_type": "password"})
    api_password = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                         style={"input_type": "password"})
    has_credentials = serializers.BooleanField(read_only=True)
    api_key_hint = serializers.SerializerMethodField(help_text="The key's last four characters, to tell keys apart.")

    class Meta:
        model = ExchangeAccount
        fields = ["id", "name", "exchange", "exchange_name", "mode", "api_key", "api_secret", "api_password",
                  "has_credentials", "api_key_hint", "paper_balance", "paper_currency", "health", "last_error",
                  "last_checked_at", "permissions", "balances", "owner", "created_at", "updated_at"]
        read_only_fields = ["health", "last_error", "last_checked_at", "permissions", "balances", "owner",
                            "created_at", "updated_at"]

    def get_api_key_hint(self, obj) -> str:
        return mask(obj.api_key)


class DeploymentSerializer(serializers.ModelSerializer):
    config = ScopedPrimaryKeyRelatedField(queryset=StrategyConfig.objects.all())
    account = ScopedPrimaryKeyRelatedField(queryset=ExchangeAccount.objects.all())
    owner = serializers.CharField(source="owner.username", read_only=True)
    mode = serializers.CharField(source="account.mode", read_only=True)
    symbol = serializers.CharField(source="config.market.symbol", read_only=True)
    timeframe = serializers.CharField(source="config.timeframe", read_only=True)

    class Meta:
        model = Deployment
        fields = ["id", "name", "config", "account", "mode", "symbol", "timeframe", "capital", "state",
                  "state_reason", "state_changed_at", "exit_policy", "last_tick_at", "last_bar_time", "owner",
                  "created_at", "updated_at"]
        read_only_fields = ["state", "state_reason", "state_changed_at", "last_tick_at", "last_bar_time", "owner",
                            "created_at", "updated_at"]


class StateChangeSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why: recorded in the audit trail.")
    exit_policy = serializers.ChoiceField(choices=["keep", "close"], required=False,
                                          help_text="Stop only: keep or close open positions.")


QUOTE = "in the quote currency of the deployment's market"
BASE = "in the base currency of the market"


class FillSerializer(serializers.ModelSerializer):
    deployment = serializers.IntegerField(source="order.deployment_id", read_only=True)
    side = serializers.CharField(source="order.side", read_only=True, help_text="buy or sell.")
    symbol = serializers.CharField(source="order.symbol", read_only=True)

    class Meta:
        model = Fill
        fields = ["id", "order", "deployment", "symbol", "side", "exchange_trade_id", "amount", "price", "fee",
                  "fee_currency", "time", "source", "recorded_at"]
        extra_kwargs = {"amount": {"help_text": f"Amount traded, {BASE}."},
                        "price": {"help_text": f"Price, {QUOTE} per unit of base."},
                        "fee": {"help_text": "Fee, in fee_currency."},
                        "time": {"help_text": "When the exchange (or paper broker) filled it, UTC."}}


class OrderSerializer(serializers.ModelSerializer):
    signal_bar_at = serializers.SerializerMethodField(
        help_text="Open time of the bar whose close decided the order, UTC ISO-8601 (signal_bar_time in epoch ms).")

    class Meta:
        model = Order
        fields = ["id", "deployment", "symbol", "client_order_id", "exchange_order_id", "side", "type", "amount",
                  "price", "stop_price", "take_profit_price", "status", "filled", "average", "fee", "fee_currency",
                  "signal_bar_time", "signal_bar_at", "intent_index", "decision", "verdict", "reason_code", "reason",
                  "parent", "submitted_at", "closed_at", "created_at", "updated_at"]
        extra_kwargs = {"amount": {"help_text": f"Amount ordered, {BASE}, rounded down to the market's lot step."},
                        "filled": {"help_text": f"Amount filled so far, {BASE}."},
                        "price": {"help_text": f"Limit price, {QUOTE}; empty for market orders."},
                        "average": {"help_text": f"Average fill price, {QUOTE}."},
                        "stop_price": {"help_text": f"Stop trigger price, {QUOTE}."},
                        "take_profit_price": {"help_text": f"Take-profit price, {QUOTE}."},
                        "fee": {"help_text": "Fees paid, in fee_currency."},
                        "signal_bar_time": {"help_text": "Open time (epoch ms, UTC) of the signal bar."},
                        "decision": {"help_text": "The decision's inputs: signals, prices and sizing at the signal bar."},
                        "verdict": {"help_text": 'The pre-trade check\'s verdict: {"outcome", "amount", "reasons": '
                                                 '[{"limit", "value", "scope", "message"}], "approved"}.'}}

    def get_signal_bar_at(self, obj) -> str | None:
        if obj.signal_bar_time is None:
            return None
        return datetime.fromtimestamp(obj.signal_bar_time / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


class PositionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Position
        fields = ["id", "deployment", "symbol", "side", "amount", "entry_price", "mark_price", "realised_pnl",
                  "unrealised_pnl", "fees", "updated_at"]
        extra_kwargs = {"amount": {"help_text": f"Amount held, {BASE} (negative when short)."},
                        "entry_price": {"help_text": f"Average entry price, {QUOTE}, fees included."},
                        "mark_price": {"help_text": f"Last price the position was marked at, {QUOTE}."},
                        "realised_pnl": {"help_text": f"Realised profit and loss, {QUOTE}, net of fees."},
                        "unrealised_pnl": {"help_text": f"Unrealised profit and loss at the mark price, {QUOTE}."},
                        "fees": {"help_text": f"Fees paid on this position, {QUOTE}."}}


class PortfolioSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = PortfolioSnapshot
        fields = ["id", "deployment", "account", "time", "equity", "cash", "positions_value"]
        extra_kwargs = {"equity": {"help_text": f"Cash plus positions at their mark, {QUOTE}."},
                        "cash": {"help_text": f"Cash, {QUOTE}."},
                        "positions_value": {"help_text": f"Positions at their mark price, {QUOTE}."}}


# --- query parameters and computed payloads ---------------------------------------------------------
class PortfolioHistoryQuerySerializer(serializers.Serializer):
    deployment = ScopedPrimaryKeyRelatedField(queryset=Deployment.objects.all(), required=False,
                                              help_text="One deployment's equity; without it, the sum over the "
                                                        "deployments you may see (of `account`, if given).")
    account = ScopedPrimaryKeyRelatedField(queryset=ExchangeAccount.objects.all(), required=False,
                                           help_text="Only this account's deployments.")
    start = DateTimeField(required=False, help_text="From this time (UTC, inclusive).")
    end = DateTimeField(required=False, help_text="Until this time (UTC, exclusive).")
    max_points = serializers.IntegerField(required=False, default=1000, min_value=10, max_value=20000,
                                          help_text="At most about this many points (10-20,000); peaks and "
                                                    "troughs are kept when downsampling.")

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        return attrs


class PortfolioHistorySerializer(serializers.Serializer):
    time = serializers.ListField(child=serializers.IntegerField(), help_text="Epoch ms (UTC) of each point.")
    equity = serializers.ListField(child=serializers.FloatField(),
                                   help_text=f"Equity at each point, {QUOTE} (summed over deployments).")
    points = serializers.IntegerField(help_text="Points returned.")
    snapshots = serializers.IntegerField(help_text="Snapshots the points summarise.")
    deployments = serializers.IntegerField(help_text="Deployments that contributed.")
    quote = serializers.CharField(help_text="Currency of equity; 'mixed' when deployments trade against several "
                                            "quote currencies (then the sum mixes units: filter by account).")


class PerformanceQuerySerializer(serializers.Serializer):
    config = ScopedPrimaryKeyRelatedField(queryset=StrategyConfig.objects.all(), required=False,
                                          help_text="Only this strategy config.")
    mode = serializers.ChoiceField(choices=Mode.choices, required=False, help_text="Only deployments in this mode.")


class BacktestEvidenceSerializer(serializers.Serializer):
    trades = serializers.IntegerField(help_text="Closed trades in the backtest period.")
    total_return = serializers.FloatField(allow_null=True, help_text="Return over the period, a fraction.")
    sharpe = serializers.FloatField(allow_null=True, help_text="Annualised Sharpe (365-day year).")
    max_drawdown = serializers.FloatField(allow_null=True, help_text="Deepest drawdown, a fraction.")
    win_rate = serializers.FloatField(allow_null=True, help_text="Winning trades / trades, a fraction.")
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    run_id = serializers.IntegerField(allow_null=True, help_text="The run that measured it (backtest id).")


class PerformanceSerializer(serializers.Serializer):
    deployments = serializers.IntegerField(help_text="Deployments counted.")
    active = serializers.IntegerField(help_text="Of which active.")
    modes = serializers.ListField(child=serializers.CharField(), help_text="paper, testnet, live.")
    capital = serializers.DecimalField(max_digits=28, decimal_places=8, help_text=f"Capital allocated, {QUOTE}.")
    equity = serializers.DecimalField(max_digits=28, decimal_places=8, allow_null=True,
                                      help_text=f"Latest equity, {QUOTE}; empty until every deployment counted "
                                                "has had a tick.")
    trades = serializers.IntegerField(help_text="Closed trades (flat to flat), rebuilt from fills.")
    wins = serializers.IntegerField(help_text="Closed trades with a positive PnL net of fees.")
    win_rate = serializers.FloatField(allow_null=True, help_text="wins / trades, a fraction; empty with no trades.")
    realised_pnl = serializers.DecimalField(max_digits=40, decimal_places=12,
                                            help_text=f"Realised PnL of the positions, {QUOTE}, net of fees.")
    unrealised_pnl = serializers.DecimalField(max_digits=40, decimal_places=12,
                                              help_text=f"Unrealised PnL at the last mark, {QUOTE}.")
    fees = serializers.DecimalField(max_digits=40, decimal_places=12, help_text=f"Fees paid, {QUOTE}.")
    closed_trades_pnl = serializers.DecimalField(max_digits=40, decimal_places=12,
                                                 help_text=f"Sum of the closed trades' PnL, {QUOTE}, net of fees.")
    live_return = serializers.FloatField(allow_null=True,
                                         help_text="equity / capital - 1, a fraction; empty before the first tick.")
    backtest = BacktestEvidenceSerializer(allow_null=True,
                                          help_text="The config's latest backtest evidence, to hold live against; "
                                                    "empty when it has none.")


class ConfigPerformanceSerializer(PerformanceSerializer):
    config = serializers.IntegerField()
    config_name = serializers.CharField()
    strategy_key = serializers.CharField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    quote = serializers.CharField(help_text="The quote currency every money figure of the row is in.")


class NoticeSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="stale_data, no_data, no_risk_limits, account_auth_failed, …")
    level = serializers.ChoiceField(choices=["info", "warn", "bad"])
    message = serializers.CharField()


class CurveSerializer(serializers.Serializer):
    time = serializers.ListField(child=serializers.IntegerField(), help_text="Epoch ms (UTC): the period's start, "
                                                                           "then each trade's exit.")
    equity = serializers.ListField(child=serializers.FloatField(),
                                   help_text=f"Capital plus the cumulative closed-trade PnL, {QUOTE}.")


class ClosedTradeCurvesSerializer(serializers.Serializer):
    live = CurveSerializer()
    replay = CurveSerializer(help_text="The replay of the same bars: the backtest of exactly this period.")


class DeploymentPerformanceSerializer(PerformanceSerializer):
    notices = NoticeSerializer(many=True, help_text="What to know before trusting the figures.")
    closed_trade_curves = ClosedTradeCurvesSerializer(
        allow_null=True, help_text="Live against the replay of the same period, as equity curves of closed trades; "
                                   "empty before the first bar.")
    tracking_error = serializers.JSONField(allow_null=True,
                                           help_text="Live against a replay of the same period (entry/exit "
                                                     "slippage, missed and extra trades, PnL difference); empty "
                                                     "until the engine has computed it.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why: recorded in the audit trail with the action.")

    class Meta:
        ref_name = "TradingReason"  # graduation has a ReasonSerializer too: one schema name each


class CloseResultSerializer(serializers.Serializer):
    order = OrderSerializer(allow_null=True, help_text="The closing order; empty when the position was already flat.")


class FlattenResultSerializer(serializers.Serializer):
    paused = serializers.BooleanField(help_text="Whether it was active and has been paused.")
    cancelled = serializers.ListField(child=serializers.CharField(), help_text="Client order ids cancelled.")
    close_order = serializers.CharField(allow_null=True, help_text="Client order id of the closing order, if any.")
