"""A reconciliation mismatch raises an alert about the deployment (critical when it paused it);
a later reconciliation whose books match resolves it."""
from __future__ import annotations

from decimal import Decimal

from apps.alerts.models import Alert, AlertState
from apps.trading import services
from tests.trading.conftest import (binance, btc, config, deployment, fast_retries, sim,  # noqa: F401
                                    testnet)
from tests.trading.test_orders import _place


def test_a_mismatch_raises_a_critical_alert_and_matching_books_resolve_it(deployment, sim, alice, charlie):  # noqa: F811
    _place(deployment)
    services.deployment_reconcile(deployment=deployment)
    assert not Alert.objects.exists()  # books match: nothing to say
    btc_free = sim.balances()["BTC"]["free"]
    sim.set_balance("BTC", btc_free + Decimal("0.5"))
    result = services.deployment_reconcile(deployment=deployment)
    assert result["paused"] is True
    alert = Alert.objects.get(source="trading")
    assert alert.severity == "critical" and alert.target == deployment and alert.owner == alice
    assert alert.title == f"Reconciliation mismatch: {deployment} (paused)"
    assert "Unexplained BTC balance" in alert.message and alert.context["paused"] is True

    sim.set_balance("BTC", btc_free)  # the stray deposit is withdrawn again
    assert services.deployment_reconcile(deployment=deployment)["flagged"] == []
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and "match the exchange" in alert.resolution
