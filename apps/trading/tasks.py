"""Trading tasks (queue `trading`): thin, they call services."""
from __future__ import annotations

import logging

from celery import shared_task

from tradepulse.core import context

from . import services
from .models import Deployment, DeploymentState, Mode

log = logging.getLogger(__name__)


@shared_task(name="trading.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    """Reconcile every active testnet/live deployment with its exchange (beat, periodically). A
    deployment another worker is running is skipped this round. Returns how many were checked."""
    checked = 0
    active = (Deployment.objects.filter(state=DeploymentState.ACTIVE).exclude(account__mode=Mode.PAPER)
              .select_related("account__exchange", "config__market"))
    with context.acting(actor_label="system:reconciliation"):
        for deployment in active:
            try:
                with services.deployment_running(deployment, owner=f"reconcile-{deployment.pk}"):
                    services.deployment_reconcile(deployment=deployment)
                    checked += 1
            except services.DeploymentBusy:
                continue
            except Exception:  # one deployment's failure must not stop the others
                log.exception("reconciliation of deployment %s failed", deployment.pk)
    return checked


@shared_task(name="trading.tick", ignore_result=True)
def tick() -> int:
    """The engine loop's beat (every TRADEPULSE_TRADING_TICK_S seconds): queue one tick for each
    deployment whose timeframe bar has closed since it last acted. Returns how many were queued."""
    due = services.deployments_due()
    for deployment in due:
        tick_deployment.delay(deployment.pk)
    return len(due)


@shared_task(name="trading.tick_deployment", ignore_result=True)
def tick_deployment(deployment_id: int) -> dict | None:
    """One tick of one deployment, inside its run lease (a second worker skips it); a failure is
    stored on the deployment and never raised into the worker."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None:
        return None
    with context.acting(actor_label="system:trading", user_id=deployment.owner_id):
        return services.deployment_tick_safely(deployment=deployment)
