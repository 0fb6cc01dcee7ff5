"""Serializers: the API's and the live events' one shape for alerts, channels and deliveries.

Channel secrets (`url`, `bot_token`) are write-only: no response ever carries them; the owner
sees `secret_hint` (host and last four characters) to tell channels apart.
"""
from __future__ import annotations

from rest_framework import serializers

from tradepulse.core.api import LocalTimeField

from .models import Alert, Channel, ChannelKind, Delivery


class AlertSerializer(serializers.ModelSerializer):
    target_type = serializers.SerializerMethodField(help_text='"app_label.model" of the object it is about, or null.')
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                               help_text="Null when it resolved itself.")
    is_system = serializers.BooleanField(read_only=True, help_text="About the platform, not an object: operators only.")

    class Meta:
        model = Alert
        fields = ["id", "severity", "source", "key", "title", "message", "context", "target_type", "target_id",
                  "target_repr", "state", "first_seen", "last_seen", "count", "acknowledged_at", "acknowledged_by",
                  "resolved_at", "resolved_by", "resolution", "is_system"]
        read_only_fields = fields

    def get_target_type(self, alert) -> str | None:
        return f"{alert.target_type.app_label}.{alert.target_type.model}" if alert.target_type_id else None


class AlertActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="",
                                   help_text="Why (recorded in the audit trail).")


class AlertSummarySerializer(serializers.Serializer):
    unread = serializers.IntegerField(help_text="Open alerts you may see that nobody acknowledged yet.")
    open = serializers.IntegerField(help_text="Unresolved alerts (open or acknowledged) you may see.")
    by_severity = serializers.DictField(child=serializers.IntegerField(), help_text="Unresolved, per severity.")


class ChannelSerializer(serializers.ModelSerializer):
    url = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=2000,
                                help_text="Webhook, Slack or Discord URL. Write-only: never returned.")
    bot_token = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=200,
                                      help_text="Telegram bot token. Write-only: never returned.")
    secret_hint = serializers.CharField(read_only=True, help_text="Host and last characters of the secret.")
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    quiet_start = LocalTimeField(required=False, allow_null=True, help_text="HH:MM in your time zone.")
    quiet_end = LocalTimeField(required=False, allow_null=True, help_text="HH:MM in your time zone.")

    class Meta:
        model = Channel
        fields = ["id", "owner", "name", "kind", "enabled", "min_severity", "email", "url", "bot_token", "chat_id",
                  "quiet_start", "quiet_end", "secret_hint", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "secret_hint", "created_at", "updated_at"]


class DeliverySerializer(serializers.ModelSerializer):
    channel_name = serializers.CharField(source="channel.name", read_only=True)
    channel_kind = serializers.ChoiceField(source="channel.kind", choices=ChannelKind.choices, read_only=True)
    alert_title = serializers.CharField(source="alert.title", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Delivery
        fields = ["id", "channel", "channel_name", "channel_kind", "alert", "alert_title", "is_test", "state",
                  "attempts", "next_attempt_at", "last_error", "note", "sent_at", "created_at", "updated_at"]
        read_only_fields = fields
