"""Manual actions by permitted users: close a position, flatten a deployment (cancelling an order is
`orders.order_cancel`). Each goes through the same pre-trade check and broker as the engine's own
orders, runs under the deployment's run lease (never at the same time as a tick) and is audited
with the person's reason.

Paper orders fill the way every paper order does: at the next bar's open, by the engine core.
"""
from __future__ import annotations

import time

from django.core.exceptions import ValidationError

from apps.audit.services import audit_record
from tradepulse.core import context

from ..brokers import Broker
from ..models import OPEN_STATUSES, Deployment, DeploymentState, Order, Position
from .deployments import DeploymentBusy, deployment_pause, deployment_running
from .engine import DeploymentLoop, request_exit
from .orders import order_cancel

INTENT_MANUAL_CLOSE = 5
LEASE_WAIT_S = 5.0


def _require_reason(reason: str) -> str:
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why: every manual action is recorded with its reason."})
    return reason.strip()


def _with_lease(deployment: Deployment, owner: str, work):
    """Run `work()` holding the deployment's lease, waiting up to LEASE_WAIT_S for a running tick."""
    deadline = time.monotonic() + LEASE_WAIT_S
    while True:
        try:
            with deployment_running(deployment, owner=owner):
                return work()
        except DeploymentBusy:
            if time.monotonic() > deadline:
                raise ValidationError("The engine is running a tick of this deployment; try again in a moment.") \
                    from None
            time.sleep(0.1)


def position_close(*, position: Position, reason: str, actor=None, broker: Broker | None = None) -> Order | None:
    """Close `position` with a market order through the pre-trade check and the deployment's
    broker (paper: fills at the next bar's open). Audited with `reason` as `actor`'s. Returns the
    closing order, or None when the position is already flat."""
    reason = _require_reason(reason)
    deployment = position.deployment

    def work():
        loop = DeploymentLoop(Deployment.objects.select_related("config__market", "account").get(pk=deployment.pk),
                              broker=broker)
        with context.acting(user_id=actor.pk if actor is not None else None):
            order = request_exit(loop, reason=f"manual close: {reason}", intent_index=INTENT_MANUAL_CLOSE,
                                 source="manual", actor=actor)
            audit_record("trading.position.close_requested", target=deployment, reason=reason, actor=actor,
                         metadata={"symbol": position.symbol, "order": order.client_order_id if order else None,
                                   "status": order.status if order else "flat"})
        return order

    return _with_lease(deployment, f"manual-close-{deployment.pk}", work)


def deployment_flatten(*, deployment: Deployment, reason: str, actor=None, broker: Broker | None = None) -> dict:
    """Pause `deployment` (no new entries), cancel its open entry orders and close its position,
    through the pre-trade check and its broker; audited with `reason`. Returns
    {"paused", "cancelled": [client order ids], "close_order": id or None}."""
    reason = _require_reason(reason)
    with context.acting(user_id=actor.pk if actor is not None else None):
        deployment.refresh_from_db()
        paused = False
        if deployment.state == DeploymentState.ACTIVE:
            deployment_pause(deployment=deployment, reason=f"flattened: {reason}")
            paused = True
        cancelled = []
        for order in Order.objects.filter(deployment=deployment, status__in=OPEN_STATUSES, parent__isnull=True,
                                          type="market"):
            order_cancel(order=order, reason=f"flatten: {reason}", actor=actor)
            cancelled.append(order.client_order_id)

    def work():
        loop = DeploymentLoop(Deployment.objects.select_related("config__market", "account").get(pk=deployment.pk),
                              broker=broker)
        with context.acting(user_id=actor.pk if actor is not None else None):
            order = request_exit(loop, reason=f"flatten: {reason}", intent_index=INTENT_MANUAL_CLOSE, source="manual",
                                 actor=actor)
            result = {"paused": paused, "cancelled": cancelled, "close_order": order.client_order_id if order else None}
            audit_record("trading.deployment.flattened", target=deployment, reason=reason, actor=actor,
                         metadata=result)
        return result

    return _with_lease(deployment, f"flatten-{deployment.pk}", work)
