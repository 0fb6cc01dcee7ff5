"""Every delete, through any door, writes an audit event with a snapshot of what was deleted
(issue 9, finding 5). The API's config delete goes through `config_delete`; the admin's delete
page and its bulk "delete selected" action are audited for every model (Django logs a bulk
delete without signals, so it went unaudited before)."""
from __future__ import annotations

from decimal import Decimal

from apps.audit.models import AuditEvent
from apps.audit.services import snapshot_of
from apps.backtests import services as backtests
from apps.backtests.models import BacktestRun
from apps.strategies.models import StrategyConfig
from apps.strategies.services import config_create, config_evidence_record
from apps.trading.services import account_create
from tests.backtests.conftest import MIN, T0, market, ms_dt  # noqa: F401
from tests.conftest import make_user
from tests.trading.conftest import binance, btc, config, deployment, fast_retries, sim, testnet  # noqa: F401


def _run(owner, market):  # noqa: F811
    return backtests.backtest_create(owner=owner, market=market, timeframe="1m", strategy_key="sma_cross",
                                     start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN), enqueue=False)


def test_deleting_a_config_through_the_api_is_audited_with_a_snapshot(api, alice, market):  # noqa: F811
    config = config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1m", name="keeper",
                           parameters={"fast": 7, "slow": 40}, execution={"stop_loss": 0.02})
    config_evidence_record(config=config, source="backtest", period_start=ms_dt(T0), period_end=ms_dt(T0 + MIN),
                           trades=4, sharpe=1.25)
    response = api(alice).delete(f"/api/v1/strategy-configs/{config.pk}/", {"reason": "superseded by v2"},
                                 format="json")
    assert response.status_code == 204
    assert not StrategyConfig.objects.filter(pk=config.pk).exists()
    event = AuditEvent.objects.get(action="strategies.config.deleted")
    assert (event.actor_label, event.reason, event.target_id) == ("alice", "superseded by v2", str(config.pk))
    snap = event.metadata["snapshot"]
    assert snap["name"] == "keeper" and snap["parameters"] == {"fast": 7, "slow": 40} and snap["stop_loss"] == 0.02
    assert event.metadata["evidence"][0]["sharpe"] == 1.25 and event.metadata["evidence"][0]["trades"] == 4


def test_a_config_a_deployment_trades_is_refused_not_a_server_error(api, alice, deployment):
    response = api(alice).delete(f"/api/v1/strategy-configs/{deployment.config_id}/")
    assert response.status_code == 400 and "still used by" in response.json()["error"]["message"]
    assert StrategyConfig.objects.filter(pk=deployment.config_id).exists()
    assert not AuditEvent.objects.filter(action="strategies.config.deleted").exists()  # rolled back with it


def test_admin_delete_page_audits_a_snapshot(client, alice, market):  # noqa: F811
    root = make_user("root", None, is_staff=True, is_superuser=True)
    run = _run(alice, market)
    client.force_login(root)
    response = client.post(f"/admin/backtests/backtestrun/{run.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.backtests.backtestrun.deleted")
    assert event.actor_label == "root" and event.metadata["snapshot"]["strategy_key"] == "sma_cross"
    assert event.metadata["snapshot"]["owner_id"] == alice.pk


def test_admin_bulk_delete_audits_every_object_with_a_snapshot(client, alice, market):  # noqa: F811
    root = make_user("root", None, is_staff=True, is_superuser=True)
    runs = [_run(alice, market) for _ in range(3)]
    client.force_login(root)
    response = client.post("/admin/backtests/backtestrun/", {
        "action": "delete_selected", "_selected_action": [r.pk for r in runs], "post": "yes"})
    assert response.status_code == 302
    assert not BacktestRun.objects.exists()
    events = AuditEvent.objects.filter(action="admin.backtests.backtestrun.deleted")
    assert sorted(int(e.metadata["snapshot"]["id"]) for e in events) == sorted(r.pk for r in runs)
    assert all(e.actor_label == "root" for e in events)


def test_the_admin_confirmation_page_deletes_and_audits_nothing(client, alice, market):  # noqa: F811
    root = make_user("root", None, is_staff=True, is_superuser=True)
    run = _run(alice, market)
    client.force_login(root)
    page = client.post("/admin/backtests/backtestrun/", {"action": "delete_selected", "_selected_action": [run.pk]})
    assert page.status_code == 200 and "Are you sure" in page.content.decode()
    assert BacktestRun.objects.filter(pk=run.pk).exists()
    assert not AuditEvent.objects.filter(action__endswith=".deleted").exists()


def test_a_snapshot_never_holds_a_secret(alice, db):
    from apps.marketdata.services import exchange_get_or_create

    account = account_create(owner=alice, name="testnet", exchange=exchange_get_or_create(name="binance"),
                             mode="testnet", api_key="key-1234567890", api_secret="secret-1234567890",
                             reason="test")
    snap = snapshot_of(account)
    assert snap["api_key"] == snap["api_secret"] == "[REDACTED]" and snap["name"] == "testnet"
    assert "key-1234567890" not in str(snap) and "secret-1234567890" not in str(snap)
    assert Decimal(snap["paper_balance"] or 0) >= 0
