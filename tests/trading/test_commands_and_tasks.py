"""`deploy` and the periodic reconciliation task; manual cancel through the API; portfolio
snapshots computed from capital and fills."""
from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent
from apps.trading import services, tasks
from apps.trading.models import Deployment, DeploymentState, Order, OrderStatus, PortfolioSnapshot, Position

from .conftest import BAR


def test_deploy_command_creates_and_activates_through_the_service(alice, config, paper):
    out = io.StringIO()
    call_command("deploy", "--config", config.pk, "--account", paper.pk, "--capital", "2500", "--activate",
                 "--reason", "paper trial", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    d = Deployment.objects.get(pk=summary["id"])
    assert (summary["state"], d.state, d.owner, d.capital) == ("active", "active", alice, Decimal("2500"))
    assert summary["mode"] == "paper" and summary["symbol"] == "BTC/USDT"
    event = AuditEvent.objects.get(action="trading.deployment.activated", target_id=str(d.pk))
    assert event.actor_label == "alice" and event.reason == "paper trial"


def test_deploy_command_refusals_are_one_clear_line(config, paper):
    with pytest.raises(CommandError, match="above the account's free balance: 10000 USDT"):
        call_command("deploy", "--config", config.pk, "--account", paper.pk, "--capital", "99999")
    with pytest.raises(CommandError, match="--account: no exchange account 999"):
        call_command("deploy", "--config", config.pk, "--account", 999, "--capital", "1")
    with pytest.raises(CommandError, match="--capital: 'lots' is not a number"):
        call_command("deploy", "--config", config.pk, "--account", paper.pk, "--capital", "lots")


def test_periodic_reconciliation_checks_active_exchange_deployments(deployment, sim):
    sim.set_balance("BTC", "1")  # not explained by any fill of ours
    assert tasks.reconcile_all() == 1
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PAUSED and "Unexplained BTC balance" in deployment.state_reason
    event = AuditEvent.objects.get(action="trading.deployment.reconciled")
    assert event.via == "" and "Unexplained BTC balance" in event.reason


def test_periodic_reconciliation_skips_a_deployment_another_worker_runs(deployment, sim):
    services.deployment_lease_acquire(deployment=deployment, owner="engine-worker")
    assert tasks.reconcile_all() == 0


def test_cancel_an_open_order_through_the_api_with_a_reason(api, alice, charlie, deployment, sim):
    last = Decimal(sim.candles("BTC/USDT", "1m", limit=1)[-1][4])
    order = services.order_place(deployment=deployment, side="buy", amount=Decimal("0.01"), signal_bar_time=BAR,
                                 type="limit", price=last * Decimal("0.95"))
    assert order.status == OrderStatus.OPEN
    url = f"/api/v1/trading/orders/{order.pk}/cancel/"
    assert api(charlie).post(url, {"reason": "mine now"}, format="json").status_code == 404
    assert api(alice).post(url, {}, format="json").status_code == 400
    body = api(alice).post(url, {"reason": "price ran away"}, format="json").json()
    assert body["status"] == "canceled"
    assert sim.orders()[0]["status"] == "CANCELED" and sim.balances()["USDT"]["locked"] == 0
    assert AuditEvent.objects.get(action="trading.order.cancel_requested").reason == "price ran away"


def test_portfolio_snapshot_is_capital_and_fills_marked_at_the_price(deployment, sim, published,
                                                                     django_capture_on_commit_callbacks):
    order = services.order_place(deployment=deployment, side="buy", amount=Decimal("0.02"), signal_bar_time=BAR)
    fill = order.fills.get()
    held = Position.objects.get(deployment=deployment).amount
    with django_capture_on_commit_callbacks(execute=True):
        snap = services.portfolio_snapshot_take(deployment=deployment, prices={"BTC/USDT": Decimal("40000")})
    assert snap.cash == Decimal("5000") - fill.amount * fill.price
    assert snap.positions_value == held * Decimal("40000") and snap.equity == snap.cash + snap.positions_value
    position = Position.objects.get(deployment=deployment)
    assert position.unrealised_pnl == pytest.approx((Decimal("40000") - position.entry_price) * held,
                                                    abs=Decimal("1e-6"))
    assert PortfolioSnapshot.objects.count() == 1
    assert any(m["type"] == "trading.portfolio.tick" for _, m in published)
    assert Order.objects.count() == 1


def test_reconciliation_is_registered_and_scheduled_on_the_trading_queue(settings):
    from tradepulse.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-trading"]
    assert entry["task"] == "trading.reconcile_all" and entry["task"] in app.tasks
    assert settings.CELERY_TASK_ROUTES["trading.*"] == {"queue": "trading"}
