"""Risk serializers: profiles, overrides, kill switches, sizing adjustments, and the request
bodies of their actions (each needs a reason). Units are in the field help texts."""
from __future__ import annotations

from rest_framework import serializers

from tradepulse.core.api import DateTimeField

from .models import KillSwitch, RiskOverride, RiskProfile, Scope, SizingAdjustment
from .rules import LIMITS
from .selectors import PARAMS

SCOPED = ["id", "scope", "target_key", "scope_label", "user", "account", "deployment"]


class ScopedSerializer(serializers.ModelSerializer):
    scope_label = serializers.CharField(read_only=True)


class RiskProfileSerializer(ScopedSerializer):
    class Meta:
        model = RiskProfile
        fields = [*SCOPED, *LIMITS, *PARAMS, "notes", "created_at", "updated_at"]
        read_only_fields = fields


class TargetSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=Scope.choices)
    target = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**31 - 1,
                                      help_text="Id of the user, exchange account or deployment; empty for global.")


class ProfileChangeSerializer(TargetSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why: recorded in the audit trail.")
    changes = serializers.DictField(
        child=serializers.CharField(allow_blank=True, allow_null=True, max_length=40),
        help_text="Field -> value. Percentages in %, notional in the quote currency, counts as integers, minutes "
                  "for cooldown_minutes, hours for override_hours; an empty value removes the limit at this scope. "
                  f"Fields: {', '.join([*LIMITS, *PARAMS])}.")


class ProfilePatchSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why: recorded in the audit trail.")
    changes = serializers.DictField(
        child=serializers.CharField(allow_blank=True, allow_null=True, max_length=40),
        help_text="Field -> value (see POST); an empty value removes the limit at this scope.")


class RiskOverrideSerializer(ScopedSerializer):
    active = serializers.BooleanField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = RiskOverride
        fields = [*SCOPED, "limit", "value", "reason", "expires_at", "active", "created_by", "created_at",
                  "revoked_at", "revoke_reason", "expiry_recorded_at"]
        read_only_fields = fields


class OverrideCreateSerializer(TargetSerializer):
    limit = serializers.ChoiceField(choices=list(LIMITS), help_text="The limit to override.")
    value = serializers.DecimalField(max_digits=28, decimal_places=8, min_value=0,
                                     help_text="Its value while the override lasts, in the limit's unit.")
    reason = serializers.CharField(max_length=2000)
    expires_at = DateTimeField(required=False, allow_null=True,
                               help_text="When it ends (UTC). Empty: now + the profile's override_hours (24 h).")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why: recorded in the audit trail.")

    class Meta:
        ref_name = "RiskReason"  # graduation has a ReasonSerializer too: one schema name each


class KillSwitchSerializer(ScopedSerializer):
    active = serializers.BooleanField(read_only=True)
    tripped_by = serializers.CharField(source="tripped_by.username", read_only=True, default=None)
    released_by = serializers.CharField(source="released_by.username", read_only=True, default=None)

    class Meta:
        model = KillSwitch
        fields = [*SCOPED, "reason", "flatten", "automatic", "trigger", "outcome", "active", "tripped_by",
                  "created_at", "released_at", "released_by", "release_reason"]
        read_only_fields = fields


class TripSerializer(TargetSerializer):
    reason = serializers.CharField(max_length=2000)
    flatten = serializers.BooleanField(default=False, help_text="Also close the scope's positions.")


class SizingAdjustmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = SizingAdjustment
        fields = ["id", "deployment", "time", "method", "risk_before_pct", "risk_after_pct", "inputs", "reason"]
        read_only_fields = fields


class OverviewQuerySerializer(serializers.Serializer):
    deployment = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    account = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
