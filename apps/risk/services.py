"""Every state change of risk (views, API, admin, tasks and commands call these).

- profiles:    profile_update (create-or-change a scope's limits; before/after audited, with a reason)
- overrides:   override_create, override_revoke, overrides_expire
- kill switch: killswitch_trip, killswitch_release
- checks:      verdict_record (audit resizes/rejections, store adaptive adjustments, trip on breach)
- sizing:      sizing_update
- watch:       risk_watch (periodic: expire overrides, adapt sizing, trip on daily-loss/drawdown)

Who may change what: the global scope only operators and admins (they run the platform); a user,
account or deployment scope its owner (or whoever may operate it) and operators; always with the
role's `risk.change_*` permission, so viewers change nothing. A trader can only tighten in effect:
the global limits still apply and the tightest wins.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.alerts.services import alert_raise
from apps.audit.services import audit_record
from apps.trading import services as trading_services
from apps.trading.brokers import BrokerError
from apps.trading.models import OPEN_STATUSES, Deployment, DeploymentState, ExchangeAccount, Order, Position
from tradepulse.core.events import audience, publish
from tradepulse.core.permissions import can, sees_everything

from . import selectors
from .models import SCOPE_FIELD, KillSwitch, RiskOverride, RiskProfile, Scope, SizingAdjustment, target_key
from .rules import LIMITS, OrderIntent, RiskContext, Verdict, state_rejects

log = logging.getLogger(__name__)

PROFILE_FIELDS = (*LIMITS, *selectors.PARAMS)
OVERRIDABLE = tuple(LIMITS)
TARGET_MODELS = {Scope.USER: get_user_model, Scope.ACCOUNT: lambda: ExchangeAccount,
                 Scope.DEPLOYMENT: lambda: Deployment}


# --- scopes and permissions ------------------------------------------------------------------------
def resolve_target(scope: str, target_id: int | None):
    """The object a scope names (None for global); a clear error for a wrong pair."""
    if scope not in Scope.values:
        raise ValidationError({"scope": f"Unknown scope {scope!r}: one of {', '.join(Scope.values)}."})
    if scope == Scope.GLOBAL:
        if target_id is not None:
            raise ValidationError({"target": "The global scope has no target."})
        return None
    if target_id is None:
        raise ValidationError({"target": f"The {scope} scope needs the id of its {scope}."})
    model = TARGET_MODELS[scope]()
    obj = model.objects.filter(pk=target_id).first()
    if obj is None:
        raise ValidationError({"target": f"No {scope} with id {target_id}."})
    return obj


def may_manage(user, scope: str, target) -> bool:
    """May `user` change limits, overrides or the kill switch at this scope?"""
    if user is None:
        return True  # the system itself (automatic trips, migrations)
    if not (user.is_active and user.has_perm("risk.change_riskprofile")):
        return False
    if sees_everything(user):
        return True
    if scope == Scope.GLOBAL:
        return False
    if scope == Scope.USER:
        return target.pk == user.pk
    return can(user, "operate", target)


def may_view(user, scope: str, target) -> bool:
    if user is None or sees_everything(user) or scope == Scope.GLOBAL:
        return True
    if scope == Scope.USER:
        return target.pk == user.pk
    return can(user, "view", target)


def _require(user, scope: str, target, what: str) -> None:
    if not may_manage(user, scope, target):
        where = "the global scope" if scope == Scope.GLOBAL else f"this {scope}"
        raise PermissionDenied(f"You may not {what} at {where}: operators and admins manage global risk; owners "
                               f"manage their own.")


def _require_operator_if_operators(actor, author, what: str, verb: str) -> None:
    """What an operator or admin imposed on a trader's scope (a kill switch, an override) is
    lifted only by an operator or admin, not by the scope's owner."""
    if actor is not None and author is not None and author.pk != actor.pk and sees_everything(author) \
            and not sees_everything(actor):
        raise PermissionDenied(f"{what} by the operator {author.get_username()}: only an operator or admin may "
                               f"{verb}.")


def _reason_required(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why: every change of risk is recorded with its reason."})
    return reason


def _scope_kwargs(scope: str, target) -> dict:
    field = SCOPE_FIELD.get(scope)
    return {"scope": scope, **({field: target} if field else {})}


def scope_audience(scope: str, target) -> list[int]:
    if target is None:
        return []
    if scope == Scope.USER:
        return [target.pk]
    return audience(target)


def _publish(event: str, data: dict, scope: str, target) -> None:
    topics = ["risk-global"] if scope == Scope.GLOBAL else []
    if scope == Scope.DEPLOYMENT and target is not None:
        topics.append(f"deployment-{target.pk}")
    publish(event, data, users=scope_audience(scope, target), topics=topics)


def affected_deployments(scope: str, target):
    qs = Deployment.objects.exclude(state=DeploymentState.STOPPED)
    if scope == Scope.USER:
        return qs.filter(owner=target)
    if scope == Scope.ACCOUNT:
        return qs.filter(account=target)
    if scope == Scope.DEPLOYMENT:
        return Deployment.objects.filter(pk=target.pk)
    return qs


# --- profiles -------------------------------------------------------------------------------------
def _coerce(field: str, value):
    if value is None or value == "":
        return None
    model_field = RiskProfile._meta.get_field(field)
    try:
        return model_field.to_python(value)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None


@transaction.atomic
def profile_update(*, scope: str, target=None, changes: dict, reason: str, actor=None) -> RiskProfile:
    """Set limits at a scope (creating its profile on first use). `changes`: field -> value, an
    empty value removes the limit at this scope. Audited with before/after and the reason."""
    reason = _reason_required(reason)
    _require(actor, scope, target, "change risk limits")
    unknown = sorted(set(changes) - set(PROFILE_FIELDS) - {"notes"})
    if unknown:
        raise ValidationError({f: "Not a risk profile field." for f in unknown})
    profile = RiskProfile.objects.select_for_update().filter(target_key=target_key(scope, getattr(target, "pk", None))).first()
    created = profile is None
    if created:
        profile = RiskProfile(**_scope_kwargs(scope, target))
    fields = sorted(changes)
    before = {f: getattr(profile, f) for f in fields}
    for f in fields:
        setattr(profile, f, changes[f] if f == "notes" else _coerce(f, changes[f]))
    profile.full_clean()
    profile.save()
    after = {f: getattr(profile, f) for f in fields}
    diff = {f: [before[f], after[f]] for f in fields if before[f] != after[f] or created}
    audit_record("risk.profile.created" if created else "risk.profile.updated", target=profile, changes=diff,
                 reason=reason, actor=actor, metadata={"scope": scope, "target_key": profile.target_key})
    _publish("risk.profile.updated", {"id": profile.pk, "scope": scope, "target_key": profile.target_key,
                                      "changes": diff}, scope, target)
    return profile


# --- overrides ------------------------------------------------------------------------------------
def default_override_hours(scope: str, target) -> int:
    """The default lifetime of an override, from the most specific profile that sets it."""
    keys = [("global", "global")]
    if scope != Scope.GLOBAL:
        keys.append((scope, target_key(scope, target.pk)))
    for s in reversed(selectors.scope_rows([k for _, k in keys], timezone.now())[0].values()):
        if s.override_hours:
            return s.override_hours
    profile = RiskProfile.objects.filter(target_key="global").first()
    if profile is None or not profile.override_hours:
        raise ValidationError({"expires_at": "No default override lifetime is configured (global profile "
                                             "override_hours): give an expiry."})
    return profile.override_hours


@transaction.atomic
def override_create(*, scope: str, target=None, limit: str, value, reason: str, expires_at=None, actor=None) -> RiskOverride:
    """A manual value for one limit at one scope until `expires_at` (default: now + the profile's
    override_hours). Needs a reason; audited; the adaptive throttle pauses while a risk-per-trade
    override applies and resumes by itself when it ends."""
    reason = _reason_required(reason)
    _require(actor, scope, target, "override risk limits")
    if limit not in OVERRIDABLE:
        raise ValidationError({"limit": f"Unknown limit {limit!r}: one of {', '.join(OVERRIDABLE)}."})
    try:
        value = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({"value": f"{value!r} is not a number."}) from None
    if not value.is_finite() or value < 0:
        raise ValidationError({"value": "An override value is a number of at least 0."})
    now = timezone.now()
    if expires_at is None:
        expires_at = now + timedelta(hours=default_override_hours(scope, target))
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    override = RiskOverride(**_scope_kwargs(scope, target), limit=limit, value=value, reason=reason,
                            expires_at=expires_at, created_by=actor)
    override.full_clean()
    override.save()
    audit_record("risk.override.created", target=override, reason=reason, actor=actor,
                 changes={limit: [None, value]},
                 metadata={"scope": scope, "target_key": override.target_key, "expires_at": expires_at})
    _publish("risk.override.created", _override_data(override), scope, target)
    return override


def _override_data(o: RiskOverride) -> dict:
    return {"id": o.pk, "scope": o.scope, "target_key": o.target_key, "limit": o.limit, "value": o.value,
            "reason": o.reason, "expires_at": o.expires_at, "active": o.active}


@transaction.atomic
def override_revoke(*, override: RiskOverride, reason: str, actor=None) -> RiskOverride:
    """End an override before its expiry (audited)."""
    reason = _reason_required(reason)
    _require(actor, override.scope, override.target, "revoke overrides")
    override = RiskOverride.objects.select_for_update().get(pk=override.pk)
    _require_operator_if_operators(actor, override.created_by, "This override was set", "revoke it")
    if not override.active:
        raise ValidationError("This override is no longer active.")
    override.revoked_at, override.revoked_by, override.revoke_reason = timezone.now(), actor, reason
    override.save(update_fields=["revoked_at", "revoked_by", "revoke_reason", "updated_at"])
    audit_record("risk.override.revoked", target=override, reason=reason, actor=actor)
    _publish("risk.override.ended", _override_data(override), override.scope, override.target)
    return override


def overrides_expire(*, now=None) -> int:
    """Record (audit and announce) each override that has expired. The check already ignores
    them from the instant of expiry; this only writes it down. Returns how many."""
    now = now or timezone.now()
    count = 0
    for o in RiskOverride.objects.filter(expires_at__lte=now, revoked_at__isnull=True, expiry_recorded_at__isnull=True):
        with transaction.atomic():
            updated = RiskOverride.objects.filter(pk=o.pk, expiry_recorded_at__isnull=True).update(expiry_recorded_at=now)
            if not updated:
                continue
            audit_record("risk.override.expired", target=o, reason=f"expired at {o.expires_at:%Y-%m-%d %H:%M} UTC; "
                                                                   "the profile and adaptive sizing apply again")
            _publish("risk.override.ended", _override_data(o), o.scope, o.target)
            count += 1
    return count


# --- kill switch ----------------------------------------------------------------------------------
def killswitch_trip(*, scope: str, target=None, reason: str, actor=None, flatten: bool = False,
                    automatic: bool = False, trigger: dict | None = None) -> KillSwitch:
    """Stop new entries at the scope at once (the check rejects them from the commit on), cancel
    open entry orders of the deployments in it, and close their positions when `flatten`.
    Idempotent: a scope already tripped returns its active switch. Audited, announced live, and
    an alert is raised."""
    reason = _reason_required(reason)
    _require(actor, scope, target, "trip the kill switch")
    key = target_key(scope, getattr(target, "pk", None))
    try:
        with transaction.atomic():
            switch = KillSwitch(**_scope_kwargs(scope, target), reason=reason, flatten=flatten, automatic=automatic,
                                trigger=trigger or {}, tripped_by=actor)
            switch.full_clean(validate_constraints=False)
            switch.save()
            audit_record("risk.killswitch.tripped", target=switch, reason=reason, actor=actor,
                         metadata={"scope": scope, "target_key": key, "flatten": flatten, "automatic": automatic,
                                   "trigger": trigger or {}})
    except IntegrityError:
        existing = KillSwitch.objects.get(target_key=key, released_at__isnull=True)
        previous = existing.tripped_by
        if actor is not None and sees_everything(actor) and (previous is None or not sees_everything(previous)):
            # An operator trips a scope its owner (or a limit) already tripped: the switch becomes the
            # operator's, so the owner can no longer release it (see killswitch_release).
            existing.tripped_by = actor
            existing.save(update_fields=["tripped_by", "updated_at"])
            audit_record("risk.killswitch.tripped", target=existing, reason=reason, actor=actor,
                         changes={"tripped_by": [previous.get_username() if previous else None, actor.get_username()]},
                         metadata={"scope": scope, "target_key": key, "already_active": True})
        return existing
    outcome = _stop_trading(switch, scope, target, flatten)
    KillSwitch.objects.filter(pk=switch.pk).update(outcome=outcome)
    switch.outcome = outcome
    alert_raise(severity="critical", source="risk", title=f"Kill switch tripped: {switch.scope_label}",
                message=reason, context={"scope": scope, "target_key": key, "automatic": automatic,
                                         "trigger": trigger or {}, "outcome": outcome},
                target=switch, key=f"kill-switch:{key}")
    _publish("risk.killswitch.tripped", killswitch_data(switch), scope, target)
    return switch


def killswitch_data(s: KillSwitch) -> dict:
    return {"id": s.pk, "scope": s.scope, "target_key": s.target_key, "label": s.scope_label, "reason": s.reason,
            "automatic": s.automatic, "flatten": s.flatten, "active": s.active, "tripped_at": s.created_at,
            "released_at": s.released_at, "release_reason": s.release_reason, "outcome": s.outcome}


def _stop_trading(switch: KillSwitch, scope: str, target, flatten: bool) -> dict:
    """Cancel open entry orders (and, when flattening, protective ones too) and close positions."""
    cancelled, failed, closed = [], [], []
    deployments = list(affected_deployments(scope, target).select_related("config__market", "account"))
    orders = Order.objects.filter(deployment__in=deployments, status__in=OPEN_STATUSES)
    if not flatten:
        orders = orders.filter(parent__isnull=True).exclude(side="sell")  # keep exits protecting held positions
    note = f"kill switch {switch.pk}: {switch.reason}"
    for order in orders.select_related("deployment", "account"):
        try:
            trading_services.order_cancel(order=order, reason=note, actor=switch.tripped_by)
            cancelled.append(order.client_order_id)
        except (BrokerError, ValidationError, trading_services.DeploymentBusy) as exc:
            # e.g. the deployment's tick holds its lease (an automatic trip from inside the tick):
            # the check already refuses its entries; the failure is recorded on the switch
            failed.append({"order": order.client_order_id, "error": _text(exc)})
    if flatten:
        for deployment in deployments:
            try:
                closed += _flatten(deployment, switch, note)
            except (BrokerError, ValidationError, trading_services.DeploymentBusy) as exc:
                failed.append({"deployment": deployment.pk, "error": f"not closed: {_text(exc)}"})
    return {"cancelled": cancelled, "cancel_failed": failed, "closed": closed,
            "deployments": [d.pk for d in deployments]}


def _text(exc: Exception) -> str:
    return getattr(exc, "message", None) or "; ".join(getattr(exc, "messages", None) or [str(exc)])


def _flatten(deployment: Deployment, switch: KillSwitch, note: str) -> list[dict]:
    """Close the deployment's long positions: trading's own flatten when it has one, else a
    market sell per position through order_place (an exit: the check never blocks it)."""
    flatten = getattr(trading_services, "deployment_flatten", None)
    if flatten is not None:
        result = flatten(deployment=deployment, reason=note, actor=switch.tripped_by)
        return [{"deployment": deployment.pk, "result": str(result)}]
    out = []
    for position in Position.objects.filter(deployment=deployment, amount__gt=0):
        order = trading_services.order_place(
            deployment=deployment, side="sell", amount=position.amount,
            signal_bar_time=int(switch.created_at.timestamp() * 1000), intent_index=0,
            reference_price=position.mark_price or position.entry_price,
            decision={"reason": note, "kill_switch": switch.pk},
            verdict={"approved": True, "outcome": "approved", "reason": "exit: the kill switch flattens"})
        out.append({"deployment": deployment.pk, "symbol": position.symbol, "order": order.client_order_id,
                    "status": order.status})
    return out


@transaction.atomic
def killswitch_release(*, switch: KillSwitch, reason: str, actor=None) -> KillSwitch:
    """Release an active kill switch: entries are checked against the limits again. Audited.
    A switch an operator or admin tripped is theirs to lift: the scope's owner may not release it."""
    reason = _reason_required(reason)
    _require(actor, switch.scope, switch.target, "release the kill switch")
    switch = KillSwitch.objects.select_for_update().get(pk=switch.pk)
    _require_operator_if_operators(actor, switch.tripped_by, "This kill switch was tripped", "release it")
    if not switch.active:
        raise ValidationError("This kill switch is already released.")
    switch.released_at, switch.released_by, switch.release_reason = timezone.now(), actor, reason
    switch.save(update_fields=["released_at", "released_by", "release_reason", "updated_at"])
    audit_record("risk.killswitch.released", target=switch, reason=reason, actor=actor,
                 changes={"active": [True, False]}, metadata={"scope": switch.scope, "target_key": switch.target_key})
    _publish("risk.killswitch.released", killswitch_data(switch), switch.scope, switch.target)
    return switch


# --- what the check decided -----------------------------------------------------------------------
def verdict_record(*, intent: OrderIntent, verdict: Verdict, context: RiskContext) -> None:
    """After a check: audit a resize or rejection, store an adaptive adjustment that changed the
    deployment's risk per trade, and trip the kill switch where daily loss or drawdown breached."""
    adaptive = context.adaptive
    changed = adaptive is not None and (adaptive.get("previous_pct") is None
                                        or Decimal(adaptive["previous_pct"]) != adaptive["risk_pct"])
    if verdict.outcome == "approved" and not changed and not verdict.breaches:
        return  # the common case writes nothing and reads nothing
    deployment = Deployment.objects.filter(pk=intent.deployment_id).first() if intent.deployment_id else None
    if verdict.outcome != "approved":
        audit_record(f"risk.check.{verdict.outcome}", target=deployment, reason=verdict.reason,
                     metadata={"intent": {"symbol": intent.symbol, "side": intent.side, "amount": intent.amount,
                                          "price": intent.price, "stop_price": intent.stop_price,
                                          "source": intent.source}, "verdict": verdict.as_dict()})
    if changed and deployment is not None:
        _adjustment_store(deployment, adaptive)
    for breach in verdict.breaches:
        _trip_for_breach(breach, context)


def _adjustment_store(deployment: Deployment, adaptive: dict) -> SizingAdjustment | None:
    previous = adaptive.get("previous_pct")
    if previous is not None and Decimal(previous) == adaptive["risk_pct"]:
        return None
    adj = SizingAdjustment.objects.create(deployment=deployment, risk_before_pct=previous,
                                          risk_after_pct=adaptive["risk_pct"], inputs=adaptive["inputs"],
                                          reason=adaptive["reason"])
    adaptive["previous_pct"] = adj.risk_after_pct
    audit_record("risk.sizing.adjusted", target=deployment, reason=adj.reason,
                 changes={"risk_per_trade_pct": [previous, adj.risk_after_pct]}, metadata=adj.inputs)
    publish("risk.sizing.adjusted", {"id": adj.pk, "deployment": deployment.pk, "time": adj.time,
                                     "before": previous, "after": adj.risk_after_pct, "reason": adj.reason,
                                     "inputs": adj.inputs},
            users=audience(deployment), topics=[f"deployment-{deployment.pk}"])
    return adj


def _trip_for_breach(breach: dict, context: RiskContext) -> KillSwitch | None:
    scope_state = next((s for s in context.scopes if s.key == breach["scope_key"]), None)
    if scope_state is None or scope_state.kill_switch:
        return None
    scope = scope_state.scope
    target = None if scope == Scope.GLOBAL else resolve_target(scope, int(breach["scope_key"].split(":")[1]))
    flatten = bool(next((s.params.get("auto_trip_flatten") for s in reversed(context.scopes)
                         if s.params.get("auto_trip_flatten") is not None), False))
    switch = killswitch_trip(scope=scope, target=target, reason=f"Automatic: {breach['message']}", automatic=True,
                             flatten=flatten, trigger=breach)
    scope_state.kill_switch = {"id": switch.pk, "reason": switch.reason, "automatic": True}
    return switch


# --- adaptive sizing and the watch ----------------------------------------------------------------
def deployment_intent(deployment: Deployment) -> OrderIntent:
    """A probe intent for reading a deployment's risk state (nothing is placed)."""
    market = deployment.config.market
    return OrderIntent(deployment_id=deployment.pk, account_id=deployment.account_id, owner_id=deployment.owner_id,
                       symbol=market.symbol, side="buy", amount=Decimal(0), price=Decimal(0), source="watch")


def sizing_update(*, deployment: Deployment, context: RiskContext | None = None) -> SizingAdjustment | None:
    """Recompute the deployment's adaptive risk per trade; store an adjustment if it changed."""
    context = context or selectors.risk_context(deployment_intent(deployment))
    if context.adaptive is None:
        return None
    return _adjustment_store(deployment, context.adaptive)


def breaches_of(context: RiskContext) -> list[dict]:
    breaches: list[dict] = []
    probe = OrderIntent(deployment_id=None, account_id=None, owner_id=None, symbol="", side="buy",
                        amount=Decimal(1), price=Decimal(1))
    for s in context.scopes:
        state_rejects(probe, context, s, breaches)
    return breaches


def risk_watch(*, now=None) -> dict:
    """Periodic: record expired overrides, update each active deployment's adaptive sizing, and
    trip the kill switch where daily loss or drawdown has breached its limit (even with no new
    order to check)."""
    expired = overrides_expire(now=now)
    tripped, adjusted = [], 0
    for deployment in Deployment.objects.filter(state=DeploymentState.ACTIVE).select_related("config__market"):
        try:
            context = selectors.risk_context(deployment_intent(deployment), now=now)
            if sizing_update(deployment=deployment, context=context):
                adjusted += 1
            for breach in breaches_of(context):
                switch = _trip_for_breach(breach, context)
                if switch:
                    tripped.append(switch.pk)
        except Exception:  # one deployment's failure must not stop the others
            log.exception("risk watch of deployment %s failed", deployment.pk)
    return {"overrides_expired": expired, "sizing_adjusted": adjusted, "kill_switches_tripped": tripped}
