"""Deployments: create (refusing what cannot work, naming why), activate, pause, stop, and the
run lease that keeps one deployment from running twice at once, however many workers there are.

The lease is a conditional UPDATE on the deployment row (free, expired, or already ours → take
it), so it works the same on PostgreSQL and SQLite and needs no lock held across a tick; a
worker that dies simply lets its lease expire.
"""
from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from apps.audit.services import audit_record
from tradepulse.core.events import publish
from tradepulse.core.permissions import can, grant_owner

from ..brokers import BrokerError, broker_for
from ..models import Deployment, DeploymentState, ExchangeAccount, ExitPolicy, Mode

log = logging.getLogger(__name__)

LEASE_SECONDS = 120


class DeploymentBusy(RuntimeError):
    """Another worker holds this deployment's run lease."""


def config_needs_short(config) -> bool:
    """True when the config's execution settings take short entries (allow_short)."""
    execution = getattr(config, "execution", None) or {}
    if isinstance(execution, dict) and execution.get("allow_short"):
        return True
    return bool((config.parameters or {}).get("allow_short"))


def _num(value: Decimal) -> str:
    """12.50000000 -> '12.5' (no exponent)."""
    return format(value.normalize(), "f")


def allocated_capital(account: ExchangeAccount, *, exclude: int | None = None) -> Decimal:
    """Capital held by the account's deployments that are not stopped."""
    qs = account.deployments.exclude(state=DeploymentState.STOPPED)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return qs.aggregate(total=Sum("capital"))["total"] or Decimal(0)


def free_balance(account: ExchangeAccount, currency: str) -> Decimal:
    """Free balance in `currency`: the paper starting balance, or the exchange's free balance."""
    if account.mode == Mode.PAPER:
        if currency != account.paper_currency:
            raise ValidationError(f"Paper account {account.name!r} holds {account.paper_currency}, but the config "
                                  f"trades against {currency}.")
        return account.paper_balance or Decimal(0)
    try:
        balances = broker_for(account).balance()
    except BrokerError as exc:
        raise ValidationError(f"Could not read the balance of account {account.name!r}: {exc.message}") from None
    found = balances.get(currency)
    return found.free if found else Decimal(0)


@transaction.atomic
def deployment_create(*, owner, config, account: ExchangeAccount, capital: Decimal, exit_policy: str = ExitPolicy.KEEP,
                      name: str = "", reason: str = "") -> Deployment:
    """A deployment of `config` on `account` with `capital` (quote currency), created paused.

    Refused, naming why: a config or account the owner may not use; a market on another exchange
    than the account's; a config that needs shorts on a spot market; capital above what the
    account has free (its balance minus what its other running deployments hold).
    """
    capital = Decimal(str(capital))
    if not can(owner, "view", config):
        raise ValidationError({"config": "Unknown strategy configuration."})
    if not can(owner, "change", account):
        raise ValidationError({"account": "Unknown exchange account."})
    _require_graduated(config, account)
    market = config.market
    if market.exchange_id != account.exchange_id:
        raise ValidationError({"account": f"The config trades {market.symbol} on {market.exchange.name}, but account "
                                          f"{account.name!r} is on {account.exchange.name}."})
    if config_needs_short(config) and (market.type or "spot") == "spot":
        raise ValidationError({"config": f"The config takes short positions (allow_short), but {market.symbol} on "
                                         f"{market.exchange.name} is a spot market: a spot account cannot sell what "
                                         "it does not hold. Turn shorts off or use a margin/derivatives market."})
    if capital <= 0:
        raise ValidationError({"capital": "Capital must be above 0."})
    free = free_balance(account, market.quote) - allocated_capital(account)
    if capital > free:
        raise ValidationError({"capital": f"Capital {_num(capital)} {market.quote} is above the account's free "
                                          f"balance: {_num(max(free, Decimal(0)))} {market.quote} (after what its other "
                                          "deployments hold)."})
    deployment = Deployment(owner=owner, config=config, account=account, capital=capital, exit_policy=exit_policy,
                            name=name or f"{config.name} on {account.name}", state=DeploymentState.PAUSED,
                            state_reason="Created; activate it to start trading.", state_changed_at=timezone.now())
    deployment.full_clean()
    deployment.save()
    grant_owner(deployment)
    audit_record("trading.deployment.created", target=deployment, reason=reason,
                 metadata={"config": config.pk, "account": account.pk, "mode": account.mode, "capital": capital,
                           "exit_policy": exit_policy, "symbol": market.symbol})
    _publish(deployment)
    return deployment


def _set_state(deployment: Deployment, state: str, reason: str, action: str) -> Deployment:
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why: every state change is recorded with its reason."})
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if deployment.state == DeploymentState.STOPPED:
            raise ValidationError("This deployment is stopped; create a new one to trade again.")
        before = deployment.state
        deployment.state, deployment.state_reason, deployment.state_changed_at = state, reason.strip(), timezone.now()
        deployment.save(update_fields=["state", "state_reason", "state_changed_at", "updated_at"])
        audit_record(action, target=deployment, reason=reason, changes={"state": [before, state]})
        _publish(deployment)
    return deployment


def _require_graduated(config, account: ExchangeAccount) -> None:
    """Real money only for a config on the live stage (graduation's four-eyes live approval):
    checked when a live deployment is created and each time it is activated."""
    from apps.strategies.models import Stage

    if account.mode == Mode.LIVE and config.stage != Stage.LIVE:
        raise ValidationError({"config": f"Configuration {config.name!r} is in {config.stage}: a live account trades "
                                         "real money, so its config must first graduate to live (a live request "
                                         "approved by a second person)."})


def deployment_activate(*, deployment: Deployment, reason: str) -> Deployment:
    """Trade from the next closed bar on (no restart: the engine picks active deployments up).
    A live deployment whose config is no longer on the live stage is refused."""
    deployment = Deployment.objects.select_related("config", "account").get(pk=deployment.pk)
    _require_graduated(deployment.config, deployment.account)
    return _set_state(deployment, DeploymentState.ACTIVE, reason, "trading.deployment.activated")


def deployment_pause(*, deployment: Deployment, reason: str) -> Deployment:
    """No new entries; open positions and their protective orders are still managed."""
    return _set_state(deployment, DeploymentState.PAUSED, reason, "trading.deployment.paused")


def deployment_stop(*, deployment: Deployment, reason: str, exit_policy: str | None = None) -> Deployment:
    """Stop for good. The exit policy (keep or close positions) is recorded and applied by the
    engine loop on its next run for this deployment."""
    if exit_policy is not None:
        if exit_policy not in ExitPolicy.values:
            raise ValidationError({"exit_policy": f"Choose one of: {', '.join(ExitPolicy.values)}."})
        Deployment.objects.filter(pk=deployment.pk).update(exit_policy=exit_policy)
    return _set_state(deployment, DeploymentState.STOPPED, reason, "trading.deployment.stopped")


# --- run lease ----------------------------------------------------------------------------------
def deployment_lease_acquire(*, deployment: Deployment, owner: str, seconds: int = LEASE_SECONDS) -> bool:
    """Take (or renew) the deployment's run lease for `owner`; False if another live worker has it."""
    now = timezone.now()
    taken = (Deployment.objects.filter(pk=deployment.pk)
             .filter(Q(lock_owner="") | Q(lock_owner=owner) | Q(lock_expires_at__lt=now))
             .update(lock_owner=owner, lock_expires_at=now + timedelta(seconds=seconds)))
    return taken == 1


def deployment_lease_release(*, deployment: Deployment, owner: str) -> None:
    Deployment.objects.filter(pk=deployment.pk, lock_owner=owner).update(lock_owner="", lock_expires_at=None)


@contextmanager
def deployment_running(deployment: Deployment, *, owner: str | None = None, seconds: int = LEASE_SECONDS):
    """`with deployment_running(d):` the block runs only if this worker holds the lease
    (DeploymentBusy otherwise); the lease is released afterwards."""
    owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
    if not deployment_lease_acquire(deployment=deployment, owner=owner, seconds=seconds):
        raise DeploymentBusy(f"Deployment {deployment.pk} is being run by another worker.")
    try:
        yield owner
    finally:
        deployment_lease_release(deployment=deployment, owner=owner)


def _publish(deployment: Deployment) -> None:
    publish("trading.deployment.updated",
            {"id": deployment.pk, "state": deployment.state, "state_reason": deployment.state_reason},
            users=[deployment.owner_id], topics=[f"deployment-{deployment.pk}"])
