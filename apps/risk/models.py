"""Risk: profiles of limits at four scopes, manual overrides with an expiry, the kill switch, and
the adaptive sizing history.

No risk number is written here: every limit field is empty (= no limit at that scope) until a
data migration (0002_defaults) or a permitted person sets it, through a service, with a reason.

Scopes: global (one profile), user, exchange account, deployment. `target_key` names the scope's
target in one string ("global", "user:3", "account:5", "deployment:7"), which makes "one profile
per target" and "one active kill switch per target" plain unique constraints.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from tradepulse.core.models import TimeStampedModel

PCT = {"max_digits": 9, "decimal_places": 4, "null": True, "blank": True,
       "validators": [MinValueValidator(0)]}
MONEY = {"max_digits": 28, "decimal_places": 8, "null": True, "blank": True, "validators": [MinValueValidator(0)]}


class Scope(models.TextChoices):
    GLOBAL = "global", "Global"
    USER = "user", "User"
    ACCOUNT = "account", "Exchange account"
    DEPLOYMENT = "deployment", "Deployment"


SCOPE_ORDER = (Scope.GLOBAL, Scope.USER, Scope.ACCOUNT, Scope.DEPLOYMENT)  # widest first
SCOPE_FIELD = {Scope.USER: "user", Scope.ACCOUNT: "account", Scope.DEPLOYMENT: "deployment"}


def target_key(scope: str, target_id: int | None) -> str:
    return "global" if scope == Scope.GLOBAL else f"{scope}:{target_id}"


class ScopedModel(TimeStampedModel):
    """Something that applies at one scope: global, or one user, account or deployment."""

    scope = models.CharField(max_length=10, choices=Scope.choices, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    account = models.ForeignKey("trading.ExchangeAccount", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="+")
    deployment = models.ForeignKey("trading.Deployment", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="+")
    target_key = models.CharField(max_length=40, editable=False, db_index=True)

    class Meta:
        abstract = True

    @property
    def target(self):
        field = SCOPE_FIELD.get(self.scope)
        return getattr(self, field) if field else None

    @property
    def target_id(self) -> int | None:
        field = SCOPE_FIELD.get(self.scope)
        return getattr(self, f"{field}_id") if field else None

    @property
    def scope_label(self) -> str:
        target = self.target
        return "Global" if self.scope == Scope.GLOBAL else f"{self.get_scope_display()} {target}"

    @property
    def owner_id(self) -> int | None:
        """Whose scope this is (None for global): the user, or the owner of the account/deployment."""
        if self.scope == Scope.USER:
            return self.user_id
        target = self.target
        return getattr(target, "owner_id", None)

    def clean(self):
        errors = {}
        for scope, field in SCOPE_FIELD.items():
            has = getattr(self, f"{field}_id") is not None
            if self.scope == scope and not has:
                errors[field] = f"A {Scope(scope).label.lower()} scope needs its {field}."
            elif self.scope != scope and has:
                errors[field] = f"Only the {Scope(scope).label.lower()} scope names a {field}."
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        self.target_key = target_key(self.scope, self.target_id)
        super().save(*args, **kwargs)


class RiskProfile(ScopedModel):
    """The limits at one scope. An empty field sets no limit here; where several scopes limit the
    same thing, the tightest wins (the check names the scope that bound it)."""

    # entry limits (percentages are of the scope's equity unless said otherwise)
    risk_per_trade_pct = models.DecimalField(**PCT, help_text="Most of the deployment's equity one trade may lose "
                                                              "(entry to stop; the whole notional when there is no "
                                                              "stop), in %.")
    position_notional_max = models.DecimalField(**MONEY, help_text="Largest position in one symbol, in the quote "
                                                                   "currency.")
    open_positions_max = models.PositiveIntegerField(null=True, blank=True, help_text="Most open positions at once.")
    asset_exposure_pct = models.DecimalField(**PCT, help_text="Most exposure to one base asset, % of equity.")
    total_exposure_pct = models.DecimalField(**PCT, help_text="Most exposure over all positions, % of equity.")
    leverage_max = models.DecimalField(**PCT, help_text="Most gross notional / equity (1 = no leverage).")
    daily_loss_pct = models.DecimalField(**PCT, help_text="Loss since the UTC day's start, % of that day's starting "
                                                          "equity, that stops entries and trips the kill switch.")
    drawdown_pct = models.DecimalField(**PCT, help_text="Drawdown from peak equity, %, that stops entries and trips "
                                                        "the kill switch.")
    orders_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="Most orders in 60 seconds.")
    loss_streak_max = models.PositiveIntegerField(null=True, blank=True,
                                                  help_text="Consecutive losing trades that start a cooldown.")
    cooldown_minutes = models.PositiveIntegerField(null=True, blank=True,
                                                   help_text="No entries for this long after the loss streak.")
    correlation_max = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True,
                                          validators=[MinValueValidator(0), MaxValueValidator(1)],
                                          help_text="Highest |correlation| of returns between a new entry and any "
                                                    "open position (0..1).")
    correlation_bars = models.PositiveIntegerField(null=True, blank=True,
                                                   help_text="Bars of returns the correlation is measured over.")
    # adaptive sizing: drawdown throttle (docs/risk.md says why this one)
    adaptive_enabled = models.BooleanField(null=True, blank=True,
                                           help_text="Throttle risk per trade as drawdown deepens (empty: inherit).")
    adaptive_floor_pct = models.DecimalField(**PCT, help_text="Risk per trade at the deepest throttle, in %.")
    adaptive_start_pct = models.DecimalField(**PCT, help_text="Drawdown (%) where the throttle starts.")
    # policy
    override_hours = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Default lifetime of a manual override, in hours.")
    auto_trip_flatten = models.BooleanField(null=True, blank=True,
                                            help_text="Whether an automatic kill-switch trip also closes positions.")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["scope", "target_key"]
        constraints = [models.UniqueConstraint(fields=["target_key"], name="risk_profile_one_per_target")]

    def __str__(self) -> str:
        return f"Risk profile · {self.scope_label}"


class RiskOverride(ScopedModel):
    """A manual value for one limit at one scope, with a reason and an expiry. While active it
    replaces the scope's profile value (for risk per trade on a deployment it also suspends the
    adaptive sizing); when it expires, the profile and the adaptive control apply again by
    themselves (the check only reads overrides whose expiry is in the future)."""

    limit = models.CharField(max_length=40)
    value = models.DecimalField(max_digits=28, decimal_places=8, validators=[MinValueValidator(0)])
    reason = models.TextField()
    expires_at = models.DateTimeField(db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    revoke_reason = models.TextField(blank=True)
    expiry_recorded_at = models.DateTimeField(null=True, blank=True,
                                              help_text="When the expiry was audited and announced.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Override {self.limit}={self.value} · {self.scope_label}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class KillSwitch(ScopedModel):
    """One trip of the kill switch at a scope, until released. While active: no new entries in
    the scope (exits still go), open entry orders cancelled, positions closed if `flatten`.
    Stored in the database, so it holds across restarts of every process."""

    reason = models.TextField()
    flatten = models.BooleanField(default=False)
    automatic = models.BooleanField(default=False, help_text="Tripped by a limit breach, not by a person.")
    trigger = models.JSONField(default=dict, blank=True, help_text="The breach that tripped it: limit, value, observed.")
    tripped_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    outcome = models.JSONField(default=dict, blank=True, help_text="Orders cancelled and positions closed.")
    released_at = models.DateTimeField(null=True, blank=True, db_index=True)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["target_key"], condition=models.Q(released_at__isnull=True),
                                               name="risk_killswitch_one_active_per_target")]

    def __str__(self) -> str:
        state = "released" if self.released_at else "active"
        return f"Kill switch · {self.scope_label} ({state})"

    @property
    def active(self) -> bool:
        return self.released_at is None


class SizingAdjustment(models.Model):
    """One change of a deployment's adaptive risk per trade, with its inputs and the reason."""

    deployment = models.ForeignKey("trading.Deployment", on_delete=models.CASCADE, related_name="sizing_adjustments")
    time = models.DateTimeField(default=timezone.now, db_index=True)
    method = models.CharField(max_length=32, default="drawdown_throttle")
    risk_before_pct = models.DecimalField(max_digits=9, decimal_places=4, null=True, blank=True)
    risk_after_pct = models.DecimalField(max_digits=9, decimal_places=4)
    inputs = models.JSONField(default=dict, help_text="Equity, peak, drawdown and the bounds it used.")
    reason = models.TextField()

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.deployment_id}: {self.risk_before_pct} → {self.risk_after_pct} %"
