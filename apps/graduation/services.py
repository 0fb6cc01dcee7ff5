"""Graduation state changes: policies, the periodic evaluation, manual promote / demote / retire,
and the four-eyes live approval. Every stage change of a config happens here, writes a
GraduationDecision (criteria, values, thresholds, evidence read), is audited with its reason and
published as `graduation.decision` to everyone who may see the config.

Deployments (decided here, documented in the policy's help texts):
- promotion to paper or testnet starts one when the policy's `start_deployment` is on, on the
  owner's account of that mode on the config's exchange: the one the policy names
  (`deployment_account_name`), else the owner's only such account; none or several refuse the
  promotion, saying which. Capital = `deployment_capital_fraction` × the account's free balance
  (after what its other deployments hold), rounded down to 1e-8 of the quote currency. A person
  may name the account instead.
- demotion and retirement pause the config's active deployments above the new stage (no new
  entries; open positions are still managed), with the decision's reason.
"""
from __future__ import annotations

import logging
from decimal import ROUND_DOWN, Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.alerts.services import alert_raise, alert_resolve
from apps.audit.services import audit_record, diff
from apps.strategies.models import Stage, StrategyConfig
from apps.trading.models import Deployment, DeploymentState, ExchangeAccount
from apps.trading.services.deployments import (allocated_capital, deployment_activate, deployment_create,
                                               deployment_pause, free_balance)
from tradepulse.core.events import publish, publish_for
from tradepulse.core.permissions import can

from . import criteria as crit
from .models import (LADDER, TRADING_STAGES, DecidedBy, GraduationDecision, GraduationPolicy, Kind, LiveRequest,
                     LiveRequestStatus, Outcome, next_stage, stage_rank)
from .selectors import config_measures
from .serializers import DecisionSerializer, LiveRequestSerializer, PolicySerializer

log = logging.getLogger(__name__)
CAPITAL_STEP = Decimal("0.00000001")
POLICY_TOPIC = "graduation-policies"


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why: every graduation decision is recorded with its reason."})
    return reason


def policy_for(kind: str, from_stage: str) -> GraduationPolicy | None:
    return GraduationPolicy.objects.filter(kind=kind, from_stage=from_stage).first()


# --- policies -----------------------------------------------------------------------------------
@transaction.atomic
def policy_update(*, policy: GraduationPolicy, actor, reason: str, **changes) -> GraduationPolicy:
    """Change a policy's thresholds or behaviour (operators: graduation.change_graduationpolicy).
    Validated as a whole; the change and its reason are audited."""
    reason = _require_reason(reason)
    if not (actor and actor.has_perm("graduation.change_graduationpolicy")):
        raise PermissionDenied("Only operators change graduation policies.")
    unknown = sorted(set(changes) - set(GraduationPolicy.EDITABLE))
    if unknown:
        raise ValidationError({f: "Not a policy setting that can be changed." for f in unknown})
    policy = GraduationPolicy.objects.select_for_update().get(pk=policy.pk)
    before = {f: getattr(policy, f) for f in GraduationPolicy.EDITABLE}
    for field, value in changes.items():
        setattr(policy, field, value)
    policy.updated_by, policy.reason = actor, reason
    policy.full_clean()
    policy.save()
    audit_record("graduation.policy.updated", target=policy, reason=reason, actor=actor,
                 changes=diff(before, {f: getattr(policy, f) for f in GraduationPolicy.EDITABLE}))
    publish("graduation.policy", PolicySerializer(policy).data, topics=[POLICY_TOPIC])
    return policy


# --- the decision record ------------------------------------------------------------------------
def _tag(kind: str, rows: list[dict]) -> list[dict]:
    return [{"kind": kind, **r} for r in rows]


def _record(*, config: StrategyConfig, to_stage: str, outcome: str, reason: str, criteria: list[dict],
            evidence: dict, policy=None, actor=None, overridden: bool = False, deployment=None,
            from_stage: str | None = None) -> GraduationDecision:
    decision = GraduationDecision.objects.create(
        config=config, from_stage=from_stage or config.stage, to_stage=to_stage, outcome=outcome,
        decided_by=DecidedBy.PERSON if actor is not None else DecidedBy.POLICY, actor=actor, policy=policy,
        reason=reason, criteria=criteria, evidence=evidence, overridden=overridden, deployment=deployment)
    decision.refresh_from_db()  # JSON as stored (dates as ISO text), for the event
    audit_record(f"graduation.decision.{outcome}", target=config, reason=reason, actor=actor,
                 changes={"stage": [decision.from_stage, to_stage]} if decision.moved else {},
                 metadata={"decision": decision.pk, "decided_by": decision.decided_by,
                           "policy": policy.pk if policy else None, "overridden": overridden,
                           "criteria": criteria, "deployment": deployment.pk if deployment else None})
    publish_for(config, "graduation.decision", DecisionSerializer(decision).data)
    return decision


def _move(config: StrategyConfig, to_stage: str) -> None:
    StrategyConfig.objects.filter(pk=config.pk).update(stage=to_stage, updated_at=timezone.now())
    config.stage = to_stage


def _pause_above(config: StrategyConfig, to_stage: str, reason: str) -> list[Deployment]:
    """Pause the config's active deployments trading a stage above `to_stage` (all, if retired)."""
    keep = [m for m in TRADING_STAGES if 0 <= stage_rank(m) <= stage_rank(to_stage)]
    paused = []
    for deployment in (Deployment.objects.filter(config=config, state=DeploymentState.ACTIVE)
                       .exclude(account__mode__in=keep)):
        paused.append(deployment_pause(deployment=deployment, reason=reason))
    return paused


def _deployment_account(config: StrategyConfig, policy: GraduationPolicy | None, mode: str) -> ExchangeAccount:
    exchange = config.market.exchange
    accounts = ExchangeAccount.objects.filter(owner=config.owner, mode=mode, exchange=exchange)
    name = policy.deployment_account_name if policy else ""
    if name:
        account = accounts.filter(name=name).first()
        if account is None:
            raise ValidationError(f"Cannot start the {mode} deployment: {config.owner.username} has no {mode} account "
                                  f"named {name!r} on {exchange.name} (the policy names it).")
        return account
    found = list(accounts[:2])
    if not found:
        raise ValidationError(f"Cannot start the {mode} deployment: {config.owner.username} has no {mode} account on "
                              f"{exchange.name}. Create one, or name one in the policy.")
    if len(found) > 1:
        raise ValidationError(f"Cannot start the {mode} deployment: {config.owner.username} has several {mode} "
                              f"accounts on {exchange.name}; name one in the policy (deployment_account_name) or "
                              "choose one when promoting.")
    return found[0]


def _start_deployment(config: StrategyConfig, policy: GraduationPolicy | None, to_stage: str, reason: str,
                      account: ExchangeAccount | None = None) -> Deployment:
    """Create and activate a deployment of `config` for `to_stage` (paper/testnet) as the policy says."""
    if account is None:
        account = _deployment_account(config, policy, to_stage)
    elif account.owner_id != config.owner_id or account.mode != to_stage:
        raise ValidationError({"account": f"Choose one of the config owner's {to_stage} accounts."})
    fraction = policy.deployment_capital_fraction if policy else None
    if not fraction:
        raise ValidationError(f"Cannot start the {to_stage} deployment: the policy sets no capital fraction.")
    quote = config.market.quote
    free = free_balance(account, quote) - allocated_capital(account)
    capital = (free * Decimal(str(fraction))).quantize(CAPITAL_STEP, rounding=ROUND_DOWN)
    if capital <= 0:
        raise ValidationError(f"Cannot start the {to_stage} deployment: account {account.name!r} has no free "
                              f"{quote} left.")
    deployment = deployment_create(owner=config.owner, config=config, account=account, capital=capital,
                                   reason=f"graduation to {to_stage}: {reason}")
    return deployment_activate(deployment=deployment, reason=f"graduation to {to_stage}: {reason}")


# --- evaluation ---------------------------------------------------------------------------------
def _signature(decision: GraduationDecision | None) -> tuple | None:
    """What makes a hold worth a new row: the stage, the outcome, each criterion's verdict and why
    it holds (values drift every evaluation, e.g. days in stage; verdicts change rarely)."""
    if decision is None:
        return None
    return (decision.from_stage, decision.outcome, (decision.evidence or {}).get("hold", ""),
            tuple((r.get("kind"), r["name"], r["passed"]) for r in decision.criteria))


def _policies() -> dict[tuple[str, str], GraduationPolicy]:
    return {(p.kind, p.from_stage): p for p in GraduationPolicy.objects.all()}


def config_evaluate(*, config: StrategyConfig, now=None,
                    policies: dict[tuple[str, str], GraduationPolicy] | None = None) -> GraduationDecision | None:
    """Hold one config against its stage's automatic policies.

    Demotion first: any demotion criterion measured failing demotes (deployments above the new
    stage paused, an alert raised). Then promotion: every criterion passing promotes (starting a
    deployment if the policy says so; a live promotion that needs approval files a live request
    instead). Otherwise it holds. A decision is written when something changes: a move, or a hold
    whose criteria verdicts differ from the config's last decision; None when nothing changed.
    """
    with transaction.atomic():
        config = StrategyConfig.objects.select_for_update().select_related("market__exchange", "owner").get(
            pk=config.pk)
        policies = policies if policies is not None else _policies()  # one read per pass when given
        demote = policies.get((Kind.DEMOTE, config.stage))
        promote = policies.get((Kind.PROMOTE, config.stage))
        demote = demote if demote and demote.automatic else None
        promote = promote if promote and promote.automatic else None
        if demote is None and promote is None:
            return None
        measures = config_measures(config, now=now)
        d_rows = crit.hold_against(demote, measures) if demote else []
        p_rows = crit.hold_against(promote, measures) if promote else []
        rows = _tag(Kind.DEMOTE, d_rows) + _tag(Kind.PROMOTE, p_rows)
        evidence = measures["evidence"]

        if demote and crit.verdict(demote, d_rows):
            return _demote_by_policy(config, demote, d_rows, rows, evidence)

        hold_reason, hold_kind = None, "criteria"
        if promote and crit.verdict(promote, p_rows):
            if promote.to_stage == Stage.LIVE and promote.requires_approval:
                request, created = _live_request_by_policy(config, p_rows)
                hold_kind = f"live-request-{request.pk}"
                hold_reason = (f"Every criterion passes; going live needs a second person: live request #{request.pk} "
                               "waits for someone with graduation.approve_live.")
            else:
                reason = f"Every criterion of the policy passes: {crit.describe(p_rows)}."
                try:
                    with transaction.atomic():
                        deployment = None
                        if promote.start_deployment:
                            deployment = _start_deployment(config, promote, promote.to_stage, reason)
                        from_stage = config.stage
                        _move(config, promote.to_stage)
                        decision = _record(config=config, from_stage=from_stage, to_stage=promote.to_stage,
                                           outcome=Outcome.PROMOTE, reason=reason, criteria=rows, evidence=evidence,
                                           policy=promote, deployment=deployment)
                    alert_resolve(source="graduation", key=f"graduation-refused:config-{config.pk}",
                                  reason=f"promoted to {promote.to_stage}")
                    return decision
                except ValidationError as exc:
                    why = "; ".join(exc.messages)
                    hold_reason = f"Every criterion passes, but the promotion is refused: {why}"
                    hold_kind = f"refused: {why}"
                    alert_raise(severity="warning", source="graduation",
                                title=f"{config.name}: promotion to {promote.to_stage} refused",
                                message=why, target=config, context={"config": config.pk},
                                key=f"graduation-refused:config-{config.pk}")
        if hold_reason is None:
            failing = crit.failing(p_rows)
            hold_reason = (f"Holds in {config.stage}: {crit.describe(failing)}." if failing
                           else f"Holds in {config.stage}: no automatic promotion from this stage.")
        last = GraduationDecision.objects.filter(config=config).order_by("-created_at", "-pk").first()
        evidence = {**evidence, "hold": hold_kind}
        candidate = GraduationDecision(from_stage=config.stage, outcome=Outcome.HOLD, criteria=rows, evidence=evidence)
        if _signature(last) == _signature(candidate):
            return None
        return _record(config=config, to_stage=config.stage, outcome=Outcome.HOLD, reason=hold_reason,
                       criteria=rows, evidence=evidence, policy=promote or demote)


def _demote_by_policy(config, policy, d_rows, rows, evidence) -> GraduationDecision:
    failing = [r for r in d_rows if r["passed"] is False]
    reason = f"Degraded in {config.stage}: {crit.describe(failing)}."
    from_stage = config.stage
    paused = _pause_above(config, policy.to_stage, f"demoted by graduation policy: {reason}")
    _move(config, policy.to_stage)
    _cancel_live_requests(config, f"config demoted: {reason}")
    decision = _record(config=config, from_stage=from_stage, to_stage=policy.to_stage, outcome=Outcome.DEMOTE,
                       reason=reason, criteria=rows, evidence={**evidence, "paused": [d.pk for d in paused]},
                       policy=policy, deployment=paused[0] if paused else None)
    alert_raise(severity="error" if from_stage == Stage.LIVE else "warning", source="graduation",
                title=f"{config.name} demoted from {from_stage} to {policy.to_stage}", message=reason,
                context={"config": config.pk, "decision": decision.pk, "paused_deployments": [d.pk for d in paused]},
                target=config, key=f"graduation-demoted:config-{config.pk}")
    return decision


def configs_evaluate_all(*, now=None) -> list[GraduationDecision]:
    """Evaluate every config in a stage with an automatic policy; one config's failure is logged
    and does not stop the others. Returns the decisions written."""
    policies = _policies()
    stages = {stage for (_kind, stage), p in policies.items() if p.automatic}
    decisions = []
    for config in StrategyConfig.objects.filter(stage__in=stages).order_by("pk"):
        try:
            decision = config_evaluate(config=config, now=now, policies=policies)
        except Exception:  # noqa: BLE001 - one broken config must not stop the pipeline
            log.exception("graduation evaluation of config %s failed", config.pk)
            continue
        if decision is not None:
            decisions.append(decision)
    return decisions


# --- people -------------------------------------------------------------------------------------
def _check(actor, action: str, config: StrategyConfig) -> None:
    if not can(actor, "view", config):
        raise ValidationError({"config": "Unknown strategy configuration."})
    if not can(actor, action, config):
        raise PermissionDenied("You may view this configuration but not move it.")


def config_promote(*, config: StrategyConfig, actor, reason: str, override: bool = False,
                   account: ExchangeAccount | None = None) -> GraduationDecision:
    """A person promotes `config` one stage up, held against that transition's policy: refused
    when a criterion fails or is not measured, unless `override` (recorded on the decision).
    Live is reached only through a live request and a second person's approval."""
    reason = _require_reason(reason)
    with transaction.atomic():
        config = StrategyConfig.objects.select_for_update().select_related("market__exchange", "owner").get(
            pk=config.pk)
        _check(actor, "change", config)
        to_stage = next_stage(config.stage)
        if config.stage == Stage.RETIRED:
            raise ValidationError("A retired configuration is not promoted; create a new one from its evidence.")
        if to_stage is None:
            raise ValidationError("This configuration is already live.")
        if to_stage == Stage.LIVE:
            raise ValidationError("Going live needs a second person: request live approval; someone else with "
                                  "graduation.approve_live approves it.")
        policy = policy_for(Kind.PROMOTE, config.stage)
        measures = config_measures(config)
        rows = crit.hold_against(policy, measures) if policy else []
        failing = crit.failing(rows)
        if failing and not override:
            raise ValidationError(f"Criteria not met for {config.stage} → {to_stage}: {crit.describe(failing)}. "
                                  "Promote with override to answer for it yourself.")
        deployment = None
        if to_stage in (Stage.PAPER, Stage.TESTNET) and (account is not None or (policy and policy.start_deployment)):
            deployment = _start_deployment(config, policy, to_stage, reason, account=account)
        from_stage = config.stage
        _move(config, to_stage)
        return _record(config=config, from_stage=from_stage, to_stage=to_stage, outcome=Outcome.PROMOTE,
                       reason=reason, criteria=_tag(Kind.PROMOTE, rows), evidence=measures["evidence"],
                       policy=policy, actor=actor, overridden=bool(failing), deployment=deployment)


def config_demote(*, config: StrategyConfig, actor, reason: str, to_stage: str | None = None) -> GraduationDecision:
    """A person demotes `config` to a lower stage (default: the demotion policy's target, else one
    down). Deployments above the new stage are paused. Operators may demote anyone's config."""
    reason = _require_reason(reason)
    with transaction.atomic():
        config = StrategyConfig.objects.select_for_update().select_related("owner").get(pk=config.pk)
        _check(actor, "operate", config)
        policy = policy_for(Kind.DEMOTE, config.stage)
        if to_stage is None:
            to_stage = policy.to_stage if policy else (LADDER[stage_rank(config.stage) - 1]
                                                       if stage_rank(config.stage) > 0 else None)
        if to_stage is None or stage_rank(to_stage) < 0 or stage_rank(to_stage) >= stage_rank(config.stage):
            raise ValidationError({"to_stage": f"Choose a stage below {config.stage}."})
        measures = config_measures(config)
        rows = _tag(Kind.DEMOTE, crit.hold_against(policy, measures)) if policy else []
        from_stage = config.stage
        paused = _pause_above(config, to_stage, f"demoted by {actor.get_username()}: {reason}")
        _move(config, to_stage)
        _cancel_live_requests(config, f"config demoted: {reason}")
        return _record(config=config, from_stage=from_stage, to_stage=to_stage, outcome=Outcome.DEMOTE, reason=reason,
                       criteria=rows, evidence={**measures["evidence"], "paused": [d.pk for d in paused]},
                       policy=policy, actor=actor, deployment=paused[0] if paused else None)


def config_retire(*, config: StrategyConfig, actor, reason: str) -> GraduationDecision:
    """Take `config` off the ladder: every active deployment paused, pending live requests cancelled."""
    reason = _require_reason(reason)
    with transaction.atomic():
        config = StrategyConfig.objects.select_for_update().select_related("owner").get(pk=config.pk)
        _check(actor, "operate", config)
        if config.stage == Stage.RETIRED:
            raise ValidationError("This configuration is already retired.")
        measures = config_measures(config)
        from_stage = config.stage
        paused = _pause_above(config, Stage.RETIRED, f"retired by {actor.get_username()}: {reason}")
        _move(config, Stage.RETIRED)
        _cancel_live_requests(config, f"config retired: {reason}")
        return _record(config=config, from_stage=from_stage, to_stage=Stage.RETIRED, outcome=Outcome.RETIRE,
                       reason=reason, criteria=[], evidence={**measures["evidence"], "paused": [d.pk for d in paused]},
                       actor=actor, deployment=paused[0] if paused else None)


# --- going live: four eyes ----------------------------------------------------------------------
def _publish_request(request: LiveRequest) -> None:
    publish_for(request.config, "graduation.live_request", LiveRequestSerializer(request).data)


def _cancel_live_requests(config: StrategyConfig, reason: str) -> None:
    for request in LiveRequest.objects.filter(config=config, status=LiveRequestStatus.PENDING):
        request.status, request.decision_reason, request.decided_at = (LiveRequestStatus.CANCELLED, reason,
                                                                       timezone.now())
        request.save(update_fields=["status", "decision_reason", "decided_at", "updated_at"])
        audit_record("graduation.live_request.cancelled", target=config, reason=reason,
                     metadata={"live_request": request.pk})
        _publish_request(request)


def _live_rows(config: StrategyConfig) -> list[dict]:
    policy = policy_for(Kind.PROMOTE, Stage.TESTNET)
    return _tag(Kind.PROMOTE, crit.hold_against(policy, config_measures(config))) if policy else []


def _live_request_by_policy(config: StrategyConfig, p_rows: list[dict]) -> tuple[LiveRequest, bool]:
    pending = LiveRequest.objects.filter(config=config, status=LiveRequestStatus.PENDING).first()
    if pending:
        return pending, False
    request = LiveRequest.objects.create(config=config, requested_by=None, criteria=_tag(Kind.PROMOTE, p_rows),
                                         reason=f"Every criterion of the testnet → live policy passes: "
                                                f"{crit.describe(p_rows)}.")
    audit_record("graduation.live_request.created", target=config, reason=request.reason,
                 metadata={"live_request": request.pk, "requested_by": "policy"})
    _publish_request(request)
    return request, True


def live_request_create(*, config: StrategyConfig, actor, reason: str) -> LiveRequest:
    """Ask for `config` (on testnet) to go live. It goes live only when someone else holding
    graduation.approve_live approves (live_request_approve)."""
    reason = _require_reason(reason)
    with transaction.atomic():
        config = StrategyConfig.objects.select_for_update().get(pk=config.pk)
        _check(actor, "change", config)
        if config.stage != Stage.TESTNET:
            raise ValidationError(f"Only a configuration on testnet can go live (this one is in {config.stage}).")
        if LiveRequest.objects.filter(config=config, status=LiveRequestStatus.PENDING).exists():
            raise ValidationError("A live request for this configuration is already waiting for approval.")
        request = LiveRequest.objects.create(config=config, requested_by=actor, reason=reason,
                                             criteria=_live_rows(config))
        audit_record("graduation.live_request.created", target=config, reason=reason, actor=actor,
                     metadata={"live_request": request.pk, "criteria": request.criteria})
        _publish_request(request)
        return request


def _pending(request: LiveRequest, actor, verb: str) -> LiveRequest:
    request = LiveRequest.objects.select_for_update().select_related("config").get(pk=request.pk)
    if not can(actor, "view", request.config):
        raise ValidationError({"live_request": "Unknown live request."})
    if not actor.has_perm("graduation.approve_live"):
        raise PermissionDenied(f"Only people with the graduation.approve_live permission {verb} live requests.")
    if request.requested_by_id is not None and request.requested_by_id == actor.pk:
        raise PermissionDenied(f"Four eyes: you asked for this; another person must {verb.rstrip('s')} it.")
    if request.status != LiveRequestStatus.PENDING:
        raise ValidationError(f"This live request is already {request.get_status_display().lower()}.")
    return request


def live_request_approve(*, request: LiveRequest, actor, reason: str) -> GraduationDecision:
    """A second person approves: the config goes live (decision by that person, with the
    testnet → live criteria as measured now; any failing one marks the decision overridden)."""
    reason = _require_reason(reason)
    with transaction.atomic():
        request = _pending(request, actor, "approves")
        config = StrategyConfig.objects.select_for_update().get(pk=request.config_id)
        if config.stage != Stage.TESTNET:
            raise ValidationError(f"The configuration is no longer on testnet (it is in {config.stage}).")
        rows = _live_rows(config)
        measures_evidence = config_measures(config)["evidence"]
        _move(config, Stage.LIVE)
        requester = request.requested_by.get_username() if request.requested_by else "the policy"
        decision = _record(config=config, from_stage=Stage.TESTNET, to_stage=Stage.LIVE, outcome=Outcome.PROMOTE,
                           reason=f"{reason} (live request #{request.pk} by {requester})", criteria=rows,
                           evidence={**measures_evidence, "live_request": request.pk},
                           policy=policy_for(Kind.PROMOTE, Stage.TESTNET), actor=actor,
                           overridden=bool(crit.failing(rows)))
        request.status, request.decided_by, request.decision_reason = LiveRequestStatus.APPROVED, actor, reason
        request.decided_at, request.decision = timezone.now(), decision
        request.save()
        audit_record("graduation.live_request.approved", target=config, reason=reason, actor=actor,
                     metadata={"live_request": request.pk, "decision": decision.pk,
                               "requested_by": request.requested_by_id})
        _publish_request(request)
        return decision


def live_request_reject(*, request: LiveRequest, actor, reason: str) -> LiveRequest:
    """A second person refuses the request; the config stays on testnet."""
    reason = _require_reason(reason)
    with transaction.atomic():
        request = _pending(request, actor, "rejects")
        request.status, request.decided_by, request.decision_reason = LiveRequestStatus.REJECTED, actor, reason
        request.decided_at = timezone.now()
        request.save()
        audit_record("graduation.live_request.rejected", target=request.config, reason=reason, actor=actor,
                     metadata={"live_request": request.pk})
        _publish_request(request)
        return request


def config_move(*, config: StrategyConfig, actor, to_stage: str, reason: str, override: bool = False):
    """The command's `--to STAGE`: promote (one step; live = a live request), demote, or retire."""
    if to_stage not in Stage.values:
        raise ValidationError({"to_stage": f"Unknown stage {to_stage!r}; one of: {', '.join(Stage.values)}."})
    if to_stage == Stage.RETIRED:
        return config_retire(config=config, actor=actor, reason=reason)
    if stage_rank(to_stage) < stage_rank(config.stage):
        return config_demote(config=config, actor=actor, reason=reason, to_stage=to_stage)
    if to_stage == config.stage:
        raise ValidationError(f"The configuration is already in {to_stage}.")
    if to_stage != next_stage(config.stage):
        raise ValidationError(f"Promotion goes one stage at a time: {config.stage} → {next_stage(config.stage)}.")
    if to_stage == Stage.LIVE:
        return live_request_create(config=config, actor=actor, reason=reason)
    return config_promote(config=config, actor=actor, reason=reason, override=override)
