"""Graduation: the policy of every stage transition, the decisions taken under it, and the
requests to go live that wait for a second person.

A config climbs DISCOVERY → VALIDATION → PAPER → TESTNET → LIVE one step at a time and may be
demoted or retired from any stage. Every threshold is a policy value (defaults from the data
migration 0002, edited by operators with an audited reason); an empty threshold means that
criterion is not applied. apps/graduation/criteria.py says how each criterion is measured.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.strategies.models import Stage, StrategyConfig
from tradepulse.core.models import TimeStampedModel

# The ladder, in order; RETIRED is off it.
LADDER = (Stage.DISCOVERY, Stage.VALIDATION, Stage.PAPER, Stage.TESTNET, Stage.LIVE)
TRADING_STAGES = (Stage.PAPER, Stage.TESTNET, Stage.LIVE)  # a deployment trades the config here

FRACTION = [MinValueValidator(0.0), MaxValueValidator(1.0)]


def stage_rank(stage: str) -> int:
    """Position on the ladder (RETIRED: -1)."""
    return LADDER.index(stage) if stage in LADDER else -1


def next_stage(stage: str) -> str | None:
    rank = stage_rank(stage)
    return LADDER[rank + 1] if 0 <= rank < len(LADDER) - 1 else None


class Kind(models.TextChoices):
    PROMOTE = "promote", "Promotion"
    DEMOTE = "demote", "Demotion"


class GraduationPolicy(TimeStampedModel):
    """The rule for one transition. A promotion policy promotes when every criterion it sets
    passes; a demotion policy demotes when any criterion it sets is measured failing.

    `automatic`: the periodic evaluation applies it by itself; otherwise only a person moves the
    config (the criteria are still shown and recorded). Thresholds left empty are not applied.
    """

    kind = models.CharField(max_length=8, choices=Kind.choices)
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    automatic = models.BooleanField(default=False, help_text="Applied by the periodic evaluation without a person.")
    # Research evidence (training out-of-sample, else hold-out, else backtest)
    min_trades = models.PositiveIntegerField(null=True, blank=True,
                                             help_text="Minimum closed trades in the research evidence.")
    min_oos_sharpe = models.FloatField(null=True, blank=True,
                                       help_text="Minimum walk-forward out-of-sample Sharpe (annualised, 365-day year).")
    max_drawdown = models.FloatField(null=True, blank=True, validators=FRACTION,
                                     help_text="Maximum drawdown of the research evidence, a fraction (0.2 = 20 %).")
    max_pbo = models.FloatField(null=True, blank=True, validators=FRACTION,
                                help_text="Maximum probability of backtest overfitting (CSCV), 0–1.")
    min_dsr = models.FloatField(null=True, blank=True, validators=FRACTION,
                                help_text="Minimum deflated Sharpe ratio, a probability 0–1.")
    # Time and trading in the current stage
    min_days_in_stage = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)],
                                          help_text="Minimum days in the current stage.")
    min_trades_in_stage = models.PositiveIntegerField(null=True, blank=True,
                                                      help_text="Minimum closed round trips by the stage's deployments.")
    max_tracking_error = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)],
                                           help_text="Maximum tracking error: the PnL difference between the "
                                                     "deployment's closed trades and a replay of the same bars, a "
                                                     "fraction of its capital.")
    max_live_drawdown = models.FloatField(null=True, blank=True, validators=FRACTION,
                                          help_text="Maximum drawdown of the stage's deployments' equity, a fraction.")
    # What promotion does
    start_deployment = models.BooleanField(default=False,
                                           help_text="Promotion to paper or testnet starts a deployment of the config.")
    deployment_account_name = models.CharField(
        max_length=100, blank=True,
        help_text="Name of the owner's account to deploy on (mode = the new stage, on the config's exchange). "
                  "Empty: the owner's only such account; none or several refuse the promotion, saying so.")
    deployment_capital_fraction = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Capital of the deployment: this fraction of the account's free balance (after what its other "
                  "deployments hold). Required when start_deployment is on.")
    requires_approval = models.BooleanField(
        default=True, help_text="Promotion to live: a person with graduation.approve_live, other than the "
                                "requester, must approve.")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    reason = models.TextField(blank=True, help_text="Why it was last changed.")

    THRESHOLDS = ("min_trades", "min_oos_sharpe", "max_drawdown", "max_pbo", "min_dsr", "min_days_in_stage",
                  "min_trades_in_stage", "max_tracking_error", "max_live_drawdown")
    EDITABLE = ("automatic", *THRESHOLDS, "start_deployment", "deployment_account_name",
                "deployment_capital_fraction", "requires_approval", "to_stage")

    class Meta:
        ordering = ["kind", "from_stage"]
        verbose_name_plural = "graduation policies"
        constraints = [models.UniqueConstraint(fields=["kind", "from_stage"], name="graduation_policy_per_transition")]
        permissions = [("approve_live", "Can approve a config going live (four-eyes: not one's own request)")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_from_stage_display()} → {self.get_to_stage_display()}"

    def clean(self):
        errors = {}
        src, dst = stage_rank(self.from_stage), stage_rank(self.to_stage)
        if self.kind == Kind.PROMOTE and self.from_stage and self.to_stage != next_stage(self.from_stage):
            errors["to_stage"] = "A promotion goes to the next stage on the ladder."
        if self.kind == Kind.DEMOTE and self.to_stage != Stage.RETIRED and not (0 <= dst < src):
            errors["to_stage"] = "A demotion goes to a lower stage (or retired)."
        if self.start_deployment:
            if self.kind != Kind.PROMOTE or self.to_stage not in (Stage.PAPER, Stage.TESTNET):
                errors["start_deployment"] = "Only a promotion to paper or testnet starts a deployment."
            elif not self.deployment_capital_fraction:
                errors["deployment_capital_fraction"] = "Say what fraction of the account's free balance to deploy."
        if errors:
            raise ValidationError(errors)


class Outcome(models.TextChoices):
    PROMOTE = "promote", "Promote"
    HOLD = "hold", "Hold"
    DEMOTE = "demote", "Demote"
    RETIRE = "retire", "Retire"


class DecidedBy(models.TextChoices):
    POLICY = "policy", "Policy"
    PERSON = "person", "Person"


class GraduationDecision(models.Model):
    """One decision about a config: what it was held against, what was measured, what followed.

    `criteria`: a list of {"name", "label", "unit", "op" (">=" or "<="), "value", "threshold",
    "passed" (true / false / null = not measured), "source", "note"}. `evidence`: what was read
    (evidence rows, deployments, snapshots), so the decision can be checked later.
    """

    OWNED_THROUGH = "config"  # visible exactly when its config is

    config = models.ForeignKey("strategies.StrategyConfig", on_delete=models.CASCADE, related_name="decisions")
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, db_index=True)
    decided_by = models.CharField(max_length=8, choices=DecidedBy.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="The person, when a person decided.")
    policy = models.ForeignKey(GraduationPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField()
    criteria = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    evidence = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    overridden = models.BooleanField(default=False, help_text="A person promoted although a criterion failed.")
    deployment = models.ForeignKey("trading.Deployment", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", help_text="The deployment started (promotion) or paused.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["config", "-created_at"], name="decision_config_created")]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} config {self.config_id}: {self.from_stage} → {self.to_stage}"

    @property
    def moved(self) -> bool:
        return self.from_stage != self.to_stage


class LiveRequestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a second person"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class LiveRequest(TimeStampedModel):
    """A request to take a testnet config live. Approved only by someone holding
    graduation.approve_live who is not the requester (four-eyes); approval promotes."""

    OWNED_THROUGH = "config"

    config = models.ForeignKey("strategies.StrategyConfig", on_delete=models.CASCADE, related_name="live_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", help_text="Empty: requested by the policy's evaluation.")
    reason = models.TextField()
    criteria = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder, help_text="The criteria as measured when requested.")
    status = models.CharField(max_length=10, choices=LiveRequestStatus.choices, default=LiveRequestStatus.PENDING,
                              db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decision_reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision = models.ForeignKey(GraduationDecision, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["config"], condition=models.Q(status="pending"),
                                               name="graduation_one_pending_live_request")]

    def __str__(self) -> str:
        return f"Live request {self.pk} for config {self.config_id} ({self.status})"


class PipelineConfig(StrategyConfig):
    """Strategy configs as the graduation admin shows them, with its actions (promote, demote,
    retire, request live), each asking for a reason."""

    class Meta:
        proxy = True
        verbose_name = "config in the pipeline"
        verbose_name_plural = "configs in the pipeline"
