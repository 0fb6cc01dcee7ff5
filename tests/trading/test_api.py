"""Trading API: accounts and deployments private to their owner (the shared permission suite),
orders, fills and positions visible exactly when their deployment is, state changes with a
reason, refusals that name the problem."""
from __future__ import annotations

from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.trading import services
from apps.trading.models import Deployment
from tests.permission_suite import check_private_to_owner

from .conftest import BAR


@pytest.fixture
def paper_deployment(alice, config, paper):
    return services.deployment_create(owner=alice, config=config, account=paper, capital=Decimal("1000"), reason="t")


def test_accounts_are_private_to_their_owner(api, alice, bob, charlie, olivia, paper):
    check_private_to_owner(api, list_url="/api/v1/trading/accounts/", obj=paper, owner=alice, colleague=bob,
                           outsider=charlie, operator=olivia, patch={"name": "x"})


def test_deployments_are_private_to_their_owner(api, alice, bob, charlie, olivia, paper_deployment):
    check_private_to_owner(api, list_url="/api/v1/trading/deployments/", obj=paper_deployment, owner=alice,
                           colleague=bob, outsider=charlie, operator=olivia)


def test_orders_fills_and_positions_follow_their_deployment(api, alice, charlie, deployment, sim):
    order = services.order_place(deployment=deployment, side="buy", amount=Decimal("0.01"), signal_bar_time=BAR,
                                 reference_price=Decimal("37000"))
    for url in ("/api/v1/trading/orders/", "/api/v1/trading/fills/", "/api/v1/trading/positions/"):
        mine = api(alice).get(url).json()["results"]
        assert len(mine) == 1, url
        assert api(charlie).get(url).json()["results"] == [], url
    assert api(charlie).get(f"/api/v1/trading/orders/{order.pk}/").status_code == 404
    row = api(alice).get(f"/api/v1/trading/orders/{order.pk}/").json()
    assert row["client_order_id"] == order.client_order_id and row["status"] == "filled"
    assert row["signal_bar_time"] == BAR and Decimal(row["filled"]) == Decimal("0.01")


def test_list_endpoints_keep_a_query_budget(api, alice, deployment, sim, django_assert_max_num_queries):
    for i in range(5):
        services.order_place(deployment=deployment, side="buy", amount=Decimal("0.001"), signal_bar_time=BAR,
                             intent_index=i, reference_price=Decimal("37000"))
    client = api(alice)
    with django_assert_max_num_queries(12):
        assert len(client.get("/api/v1/trading/orders/").json()["results"]) == 5
    with django_assert_max_num_queries(12):
        client.get("/api/v1/trading/deployments/")


def test_create_activate_pause_stop_through_the_api(api, alice, config, paper):
    client = api(alice)
    response = client.post("/api/v1/trading/deployments/", {"config": config.pk, "account": paper.pk,
                                                             "capital": "20000"}, format="json")
    assert response.status_code == 400
    assert "above the account's free balance: 10000 USDT" in response.json()["error"]["message"]
    response = client.post("/api/v1/trading/deployments/", {"config": config.pk, "account": paper.pk,
                                                             "capital": "2500"}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert response.json()["state"] == "paused"
    assert client.post(f"/api/v1/trading/deployments/{pk}/activate/", {}, format="json").status_code == 400
    body = client.post(f"/api/v1/trading/deployments/{pk}/activate/", {"reason": "go live on paper"},
                       format="json").json()
    assert body["state"] == "active" and body["state_reason"] == "go live on paper"
    body = client.post(f"/api/v1/trading/deployments/{pk}/stop/", {"reason": "enough", "exit_policy": "close"},
                       format="json").json()
    assert body["state"] == "stopped" and body["exit_policy"] == "close"
    event = AuditEvent.objects.get(action="trading.deployment.activated")
    assert event.actor_label == "alice" and event.reason == "go live on paper"


def test_a_view_share_cannot_act(api, alice, bob, paper_deployment):
    from apps.accounts.services import object_share

    object_share(obj=paper_deployment, with_user=bob, actions=("view",), reason="look")
    response = api(bob).post(f"/api/v1/trading/deployments/{paper_deployment.pk}/activate/", {"reason": "x"},
                             format="json")
    assert response.status_code == 403
    assert Deployment.objects.get(pk=paper_deployment.pk).state == "paused"


def test_someone_elses_config_is_rejected_as_unknown(api, charlie, config, paper):
    response = api(charlie).post("/api/v1/trading/deployments/", {"config": config.pk, "account": paper.pk,
                                                                    "capital": "1"}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["error"]["message"]


def test_paper_account_needs_a_balance_and_a_live_one_a_key(api, alice, binance):
    client = api(alice)
    response = client.post("/api/v1/trading/accounts/", {"name": "P", "exchange": binance.pk, "mode": "paper"},
                           format="json")
    assert response.status_code == 400 and "starting balance" in response.json()["error"]["message"]
    response = client.post("/api/v1/trading/accounts/", {"name": "L", "exchange": binance.pk, "mode": "live"},
                           format="json")
    assert response.status_code == 400 and "API key and secret" in response.json()["error"]["message"]
