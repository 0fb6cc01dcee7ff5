"""Graduation serializers: the API's and the live events' one shape for policies, decisions,
live requests and the pipeline board."""
from __future__ import annotations

from rest_framework import serializers

from .models import GraduationDecision, GraduationPolicy, LiveRequest


class CriterionSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["promote", "demote"], required=False,
                                   help_text="Which policy set it: promotion (all must pass) or demotion (any "
                                             "failing demotes).")
    name = serializers.CharField(help_text="The policy field holding the threshold, e.g. min_oos_sharpe.")
    label = serializers.CharField()
    unit = serializers.CharField(help_text="trades, days, ratio (annualised), fraction (0.2 = 20 %), probability.")
    op = serializers.ChoiceField(choices=[">=", "<="], help_text="The value must be >= or <= the threshold.")
    value = serializers.FloatField(allow_null=True, help_text="Measured value; null = not measured.")
    threshold = serializers.FloatField()
    passed = serializers.BooleanField(allow_null=True, help_text="null = not measured.")
    source = serializers.CharField(allow_blank=True, help_text="What the value was read from.")
    note = serializers.CharField(allow_blank=True)


class PolicySerializer(serializers.ModelSerializer):
    updated_by = serializers.CharField(source="updated_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = GraduationPolicy
        fields = ["id", "kind", "from_stage", "to_stage", "automatic", *GraduationPolicy.THRESHOLDS,
                  "start_deployment", "deployment_account_name", "deployment_capital_fraction", "requires_approval",
                  "updated_by", "reason", "updated_at"]
        read_only_fields = ["id", "kind", "from_stage", "updated_by", "reason", "updated_at"]


class PolicyUpdateSerializer(serializers.ModelSerializer):
    reason = serializers.CharField(help_text="Why the policy changes: recorded in the audit trail.")

    class Meta:
        model = GraduationPolicy
        fields = ["automatic", *GraduationPolicy.THRESHOLDS, "start_deployment", "deployment_account_name",
                  "deployment_capital_fraction", "requires_approval", "to_stage", "reason"]
        extra_kwargs = {f: {"required": False} for f in fields if f != "reason"}


class DecisionSerializer(serializers.ModelSerializer):
    config_name = serializers.CharField(source="config.name", read_only=True)
    owner = serializers.CharField(source="config.owner.username", read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True, default=None)
    criteria = CriterionSerializer(many=True, read_only=True)
    evidence = serializers.JSONField(read_only=True, help_text="What was read: research evidence row, stage entry "
                                                               "time, deployments, equity drawdown detail.")

    class Meta:
        model = GraduationDecision
        fields = ["id", "config", "config_name", "owner", "from_stage", "to_stage", "outcome", "decided_by", "actor",
                  "policy", "reason", "criteria", "evidence", "overridden", "deployment", "created_at"]
        read_only_fields = fields


class LiveRequestSerializer(serializers.ModelSerializer):
    config_name = serializers.CharField(source="config.name", read_only=True)
    owner = serializers.CharField(source="config.owner.username", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, allow_null=True,
                                         default=None, help_text="null: requested by the policy's evaluation.")
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True, default=None)
    criteria = CriterionSerializer(many=True, read_only=True)

    class Meta:
        model = LiveRequest
        fields = ["id", "config", "config_name", "owner", "requested_by", "reason", "criteria", "status",
                  "decided_by", "decision_reason", "decided_at", "decision", "created_at"]
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why: required, recorded with the decision and in the audit trail.")


class PromoteSerializer(ReasonSerializer):
    override = serializers.BooleanField(default=False, help_text="Promote although a criterion fails or is not "
                                                                  "measured; recorded on the decision.")
    account = serializers.IntegerField(required=False, help_text="Account to deploy on (paper/testnet), instead of "
                                                                 "the one the policy picks.")


class DemoteSerializer(ReasonSerializer):
    to_stage = serializers.ChoiceField(choices=["discovery", "validation", "paper", "testnet"], required=False,
                                       help_text="Default: the demotion policy's target.")


class BoardCardSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="config.pk")
    name = serializers.CharField(source="config.name")
    owner = serializers.CharField(source="config.owner.username")
    strategy_key = serializers.CharField(source="config.strategy_key")
    market = serializers.CharField(source="config.market.symbol")
    exchange = serializers.CharField(source="config.market.exchange.name")
    timeframe = serializers.CharField(source="config.timeframe")
    stage = serializers.CharField(source="config.stage")
    stage_entered_at = serializers.DateTimeField()
    seconds_in_stage = serializers.FloatField(help_text="Seconds since it entered its stage.")
    live_request_pending = serializers.BooleanField()
    may_promote = serializers.BooleanField(help_text="You may promote it or request live (change on the config).")
    may_demote = serializers.BooleanField(help_text="You may demote or retire it (operators: anyone's).")
    evidence = serializers.SerializerMethodField(help_text="Key research evidence: source, trades, OOS Sharpe, "
                                                           "DSR, PBO, max drawdown (fractions).")

    def get_evidence(self, card) -> dict | None:
        row = card["evidence"]
        if row is None:
            return None
        return {"id": row.pk, "source": row.source, "trades": row.trades, "sharpe": row.sharpe,
                "oos_sharpe": row.oos_sharpe, "dsr": row.dsr, "pbo": row.pbo, "max_drawdown": row.max_drawdown}
