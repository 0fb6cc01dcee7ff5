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
