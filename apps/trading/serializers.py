"""Trading serializers (API now, live events later). Secrets are write-only: a response says
whether a key is set and its last four characters, never the key, secret or passphrase."""
from __future__ import annotations

from rest_framework import serializers

from apps.marketdata.models import Exchange
from apps.strategies.models import StrategyConfig
from tradepulse.core.api import ScopedPrimaryKeyRelatedField
from tradepulse.core.crypto import mask

from .models import Deployment, ExchangeAccount, Fill, Order, PortfolioSnapshot, Position


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


class FillSerializer(serializers.ModelSerializer):
    class Meta:
        model = Fill
        fields = ["id", "order", "exchange_trade_id", "amount", "price", "fee", "fee_currency", "time", "source",
                  "recorded_at"]


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "deployment", "symbol", "client_order_id", "exchange_order_id", "side", "type", "amount",
                  "price", "stop_price", "take_profit_price", "status", "filled", "average", "fee", "fee_currency",
                  "signal_bar_time", "intent_index", "decision", "verdict", "reason_code", "reason", "parent",
                  "submitted_at", "closed_at", "created_at", "updated_at"]


class PositionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Position
        fields = ["id", "deployment", "symbol", "side", "amount", "entry_price", "mark_price", "realised_pnl",
                  "unrealised_pnl", "fees", "updated_at"]


class PortfolioSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = PortfolioSnapshot
        fields = ["id", "deployment", "account", "time", "equity", "cash", "positions_value"]
