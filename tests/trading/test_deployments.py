"""Deployments: refused at creation when they cannot work (naming why), state changes audited
with a reason, an auth failure pauses, and one deployment never runs twice at once."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from apps.audit.models import AuditEvent
from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.models import Deployment, DeploymentState, ExchangeAccount, Health


def test_capital_above_the_free_balance_is_refused_naming_the_amounts(alice, config, paper):
    services.deployment_create(owner=alice, config=config, account=paper, capital=Decimal("6000"), reason="t")
    with pytest.raises(ValidationError) as exc:
        services.deployment_create(owner=alice, config=config, account=paper, capital=Decimal("5000"), reason="t")
    assert "Capital 5000 USDT is above the account's free balance: 4000 USDT" in str(exc.value)


def test_capital_on_an_exchange_account_is_checked_against_its_real_balance(alice, config, testnet, sim):
    sim.set_balance("USDT", "1500")
    with pytest.raises(ValidationError, match="free balance: 1500"):
        services.deployment_create(owner=alice, config=config, account=testnet, capital=Decimal("2000"), reason="t")
    d = services.deployment_create(owner=alice, config=config, account=testnet, capital=Decimal("1000"), reason="t")
    assert d.state == DeploymentState.PAUSED and "activate" in d.state_reason


def test_a_config_that_needs_shorts_is_refused_on_a_spot_market(alice, btc, paper):
    short = config_create(owner=alice, strategy_key="sma_cross", market=btc, timeframe="1h",
                          parameters={"fast": 5, "slow": 20})
    short.parameters["allow_short"] = True  # what the execution settings will carry
    with pytest.raises(ValidationError, match="takes short positions .* spot market"):
        services.deployment_create(owner=alice, config=short, account=paper, capital=Decimal("100"), reason="t")


def test_another_users_config_or_account_is_unknown(alice, bob, config, paper):
    with pytest.raises(ValidationError, match="Unknown strategy configuration"):
        services.deployment_create(owner=bob, config=config, account=paper, capital=Decimal(1), reason="t")


def test_state_changes_need_a_reason_and_are_audited(alice, config, paper):
    d = services.deployment_create(owner=alice, config=config, account=paper, capital=Decimal("100"), reason="t")
    with pytest.raises(ValidationError, match="Say why"):
        services.deployment_activate(deployment=d, reason=" ")
    services.deployment_activate(deployment=d, reason="go")
    services.deployment_pause(deployment=d, reason="news ahead")
    services.deployment_stop(deployment=d, reason="done", exit_policy="close")
    d.refresh_from_db()
    assert (d.state, d.state_reason, d.exit_policy) == ("stopped", "done", "close")
    events = list(AuditEvent.objects.filter(target_id=str(d.pk), action__startswith="trading.deployment.")
                  .order_by("created_at").values_list("action", "reason"))
    assert events[1:] == [("trading.deployment.activated", "go"), ("trading.deployment.paused", "news ahead"),
                          ("trading.deployment.stopped", "done")]
    with pytest.raises(ValidationError, match="stopped"):
        services.deployment_activate(deployment=d, reason="again")


def test_a_key_that_fails_authentication_pauses_the_deployment_and_is_not_retried(deployment, sim):
    sim.set_faults(auth_fail=True)
    sim.clear_requests()
    result = services.account_test_connection(account=deployment.account)
    assert result["health"] == Health.AUTH_FAILED
    account = ExchangeAccount.objects.get(pk=deployment.account_id)
    assert account.health == Health.AUTH_FAILED and "rejected the API credentials" in account.last_error
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PAUSED and "rejected the account's API key" in deployment.state_reason
    assert len(sim.requests_to("/api/v3/account")) == 1


def test_connection_test_reports_permissions_and_warns_about_withdrawals(testnet, sim):
    testnet.mode = "live"
    testnet.save()
    sim.api_permissions["enableWithdrawals"] = True
    result = services.account_test_connection(account=testnet)
    assert result["health"] == Health.WARNING
    assert result["permissions"]["withdraw"] is True and result["permissions"]["trade"] is True
    assert "WITHDRAW" in result["warnings"][0]
    assert result["balances"]["USDT"]["total"] == "100000"
    testnet.refresh_from_db()
    assert testnet.balance_baseline == {"USDT": "100000"}


def test_the_lease_lets_one_worker_run_a_deployment(alice, config, paper):
    d = services.deployment_create(owner=alice, config=config, account=paper, capital=Decimal("100"), reason="t")
    assert services.deployment_lease_acquire(deployment=d, owner="w1")
    assert not services.deployment_lease_acquire(deployment=d, owner="w2")
    assert services.deployment_lease_acquire(deployment=d, owner="w1")  # renewal
    services.deployment_lease_release(deployment=d, owner="w1")
    assert services.deployment_lease_acquire(deployment=d, owner="w2")
    assert services.deployment_lease_acquire(deployment=d, owner="w3", seconds=60) is False
    Deployment.objects.filter(pk=d.pk).update(lock_expires_at="2000-01-01T00:00:00Z")  # w2 died
    assert services.deployment_lease_acquire(deployment=d, owner="w3")


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_deployment_on_postgresql(alice, config, paper):
    if connection.vendor != "postgresql":
        pytest.skip("the race is about PostgreSQL row locking")
    d = services.deployment_create(owner=alice, config=config, account=paper, capital=Decimal("100"), reason="t")
    for _round in range(20):
        Deployment.objects.filter(pk=d.pk).update(lock_owner="", lock_expires_at=None)
        barrier = threading.Barrier(2)
        won = []

        def worker(name):
            try:
                barrier.wait()
                if services.deployment_lease_acquire(deployment=d, owner=name):
                    won.append(name)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, won
        assert Deployment.objects.get(pk=d.pk).lock_owner == won[0]


def test_deployment_running_refuses_a_second_runner(alice, config, paper):
    d = services.deployment_create(owner=alice, config=config, account=paper, capital=Decimal("100"), reason="t")
    with services.deployment_running(d, owner="a"):
        with pytest.raises(services.DeploymentBusy):
            with services.deployment_running(d, owner="b"):
                pass
    assert Deployment.objects.get(pk=d.pk).lock_owner == ""


def test_a_connection_test_reaches_everyone_who_may_see_the_account(testnet, sim, bob, charlie, published,
                                                                     django_capture_on_commit_callbacks):
    """The account page updates live for a colleague it is shared with, not only for its owner."""
    from apps.accounts.services import object_share

    object_share(obj=testnet, with_user=bob)
    with django_capture_on_commit_callbacks(execute=True):
        services.account_test_connection(account=testnet)
    sent = [groups for groups, message in published if message["type"] == "trading.account.updated"]
    assert sent
    for groups in sent:
        assert {f"user-{testnet.owner_id}", f"user-{bob.pk}", f"topic-account-{testnet.pk}"} <= set(groups)
        assert f"user-{charlie.pk}" not in groups
