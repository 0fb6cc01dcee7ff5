"""Every service that changes state writes an audit event; every delete carries a snapshot.

The walk finds every public function of every services module (apps/*/services.py and
apps/*/services/*.py), so a service added later is covered automatically: it must appear in
exactly one of the tables below, or `test_every_service_function_is_walked_or_classified` fails
naming it. RECIPES build what a call needs and return the call; the walk runs it and checks that
at least one AuditEvent was written BY THAT CALL, and that if the call deleted any row of the
platform's models, an event of the call carries metadata["snapshot"] (what was deleted).

READ_ONLY: functions that change nothing. NOT_AUDITED_ITSELF: state changes audited by the
service or job that calls them, with the reason (each names where the event is written).
NOT_WALKED: state changes that do audit but cannot run here (a whole-database dump or restore, a
pre-trade context); each names its event and the tests that cover it.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.db.models.signals import post_delete
from django_otp.oath import totp

import apps
from apps.audit.models import AuditEvent
from tests.backtests.conftest import MIN, T0, market, ms_dt, wave_candles  # noqa: F401
from tests.trading.conftest import (BAR, binance, btc, config, deployment, fast_retries, paper, sim,  # noqa: F401
                                    testnet)
from tests.training.training_fixtures import training_kwargs, training_market  # noqa: F401

READ_ONLY = {
    "accounts.services.token_max_days", "audit.services.snapshot_of", "backtests.services.market_engine_defaults",
    "backtests.services.range_gaps", "backtests.services.describe_gaps", "backtests.services.load_bars",
    "backtests.services.first_traded_index",
    "backtests.services.check_data", "backtests.services.backtest_compute", "backtests.services.spec_for_run",
    "backtests.services.backtest_evidence", "training.services.optuna_storage_url", "training.services.training_spec",
    "training.services.check_training_options", "training.services.check_training_quotas",
    "training.services.candidate_metrics", "trading.services.accounts.account_snapshot",
    "trading.services.deployments.config_needs_short", "trading.services.deployments.allocated_capital",
    "trading.services.deployments.free_balance", "trading.services.portfolio.deployment_cash",
    "trading.services.reconcile.expected_balances", "alerts.services.channel_validate", "alerts.services.quiet_until",
    "alerts.services.visible_alert", "trading.services.engine.engine_config_for", "trading.services.engine.state_dump",
    "trading.services.engine.state_load", "trading.services.engine.history_bars", "trading.services.engine.signal_row",
    "trading.services.engine.deployments_due", "trading.services.tracking.live_trades",
    "trading.services.tracking.deployment_tracking_error", "graduation.services.policy_for",
    "ops.services.backup_dir", "ops.services.backup_data", "ops.services.read_manifest",
    "risk.services.resolve_target", "risk.services.may_manage", "risk.services.may_view",
    "risk.services.scope_audience", "risk.services.affected_deployments", "risk.services.default_override_hours",
    "risk.services.killswitch_data", "risk.services.deployment_intent", "risk.services.breaches_of",
    "trading.services.reconcile.reconcile_since",
}
NOT_AUDITED_ITSELF = {
    "audit.services.audit_record": "it is the audit",
    "audit.services.audit_delete": "it is the audit (of a delete)",
    "accounts.services.totp_begin": "an unconfirmed enrolment is a draft; totp_confirm audits 2fa.enabled",
    "alerts.services.deliveries_create": "called by alert_raise (alerts.alert.raised); each delivery's outcome is "
                                         "audited when attempted (alerts.delivery.<state>)",
    "alerts.services.deliveries_due": "puts rows a dead worker left 'sending' back to pending; their next attempt "
                                      "is audited (alerts.delivery.<state>)",
    "trading.services.engine.candles_refresh": "candles fetched by the engine loop for its tick (market data, not "
                                               "a decision); the tick audits data_stale/data_fresh",
    "trading.services.engine.deployment_tick": "one bar of the engine loop: each decision in it is audited where it "
                                               "is made (order_place, data_stale/data_fresh, exit_applied)",
    "trading.services.engine.deployment_tick_safely": "deployment_tick, plus trading.deployment.tick_failed",
    "trading.services.engine.engine_tick_all": "deployment_tick_safely for every deployment due",
    "trading.services.engine.request_exit": "an exit intent inside a tick, audited as the order it places",
    "marketdata.services.ingest.candles_ingest": "one page of a download or an import: their job/import event "
                                                  "(marketdata.download.finished, marketdata.candles.imported)",
    "marketdata.services.ingest.issues_record": "findings of an ingest, audited with that download or import",
    "marketdata.services.ingest.gap_record": "a gap found by a download, audited with that download",
    "marketdata.services.ingest.issues_resolve_covered": "run at the end of a download, audited with it",
    "trading.services.deployments.deployment_lease_acquire": "the engine loop's claim, renewed every few seconds; "
                                                             "what the loop does (orders) is audited",
    "trading.services.deployments.deployment_lease_release": "see deployment_lease_acquire",
    "trading.services.deployments.deployment_running": "see deployment_lease_acquire",
    "trading.services.orders.fill_record": "a step of order_place/order_refresh/reconciliation, which audit the "
                                           "order's change",
    "trading.services.orders.position_apply_fill": "a step of order_place/order_refresh/reconciliation",
    "trading.services.portfolio.portfolio_snapshot_take": "a measurement taken every bar, not a decision",
    "ops.services.backups_scan": "re-indexes the backup files on disk after a restore or a copy by hand (the files "
                                 "are the record; deleting one through backup_delete is audited)",
    "risk.services.risk_watch": "periodic: overrides_expire, sizing_update and killswitch_trip, each audited",
}
# State changes that audit (the event named) but that this walk cannot run, with where they are tested.
NOT_WALKED = {
    "ops.services.backup_run": "ops.backup.succeeded/failed; runs pg_dump of the whole database (tests/ops)",
    "ops.services.backup_restore": "ops.backup.restored; replaces the whole database (tests/ops)",
    "ops.services.backups_prune": "backup_delete (walked) for each backup past the retention",
    "risk.services.verdict_record": "risk.check.<outcome>; needs a pre-trade check's intent and context (tests/risk)",
    "risk.services.sizing_update": "risk.sizing.adjusted when the adaptive size changes (tests/risk)",
}
# Rows deleted as caches or in bulk, audited by the service's event as ranges and counts.
BULK_MODELS = {"marketdata.candle", "marketdata.candleblock"}


def _service_functions() -> dict[str, object]:
    """'app.module.function' -> function, for every public function defined in a services module."""
    found = {}
    root = Path(apps.__file__).parent
    names = [f"apps.{p.parent.name}.services" for p in root.glob("*/services.py")]
    for package in root.glob("*/services/__init__.py"):
        pkg = f"apps.{package.parent.parent.name}.services"
        names += [f"{pkg}.{m.name}" for m in pkgutil.iter_modules([str(package.parent)]) if not m.name.startswith("_")]
    for name in names:
        module = importlib.import_module(name)
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == name and re.fullmatch(r"[a-z]+(_[a-z]+)+", fname):
                found[f"{name.removeprefix('apps.')}.{fname}"] = fn
    return found


# --- recipes: f(fixture_name) gives a fixture; each returns the call to check ---------------------------

def _code(device, drift=0):
    """The device's code for this time step (drift=1: the next one, within its tolerance; a code
    already used is refused)."""
    return str(totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits,
                    drift=drift)).zfill(device.digits)


def _backtest(f, **kw):
    from apps.backtests.services import backtest_create

    return backtest_create(owner=f("alice"), market=f("market"), timeframe="1m", strategy_key="sma_cross",
                           start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN), enqueue=False, **kw)


def _finished_training(f):
    from apps.training import services as training

    run = training.training_create(owner=f("alice"), enqueue=False, **training_kwargs(
        f("training_market"), n_trials=2, folds=2, n_workers=1, top_n=1))
    training.training_execute_worker(run.pk, "walk-w0")
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    return run


def _config(f, owner="alice", stage="discovery"):
    from apps.strategies.services import config_create

    return config_create(owner=f(owner), strategy_key="sma_cross", market=f("market"), timeframe="1m", stage=stage)


def _order(f, **kw):
    from apps.trading.services import order_place

    args = dict(deployment=f("deployment"), side="buy", amount=Decimal("0.01"), signal_bar_time=BAR,
                reference_price=Decimal("37000"), decision={"signal": "entry_long"},
                verdict={"approved": True, "reason": "walk"})
    return order_place(**{**args, **kw})


def _download(f, **kw):
    from apps.marketdata.services import download_start

    now = 1_700_000_000_000
    return download_start(owner=f("alice"), market=f("btc"), timeframe="1m", start_ms=now - now % 3_600_000 - 7_200_000,
                          end_ms=now - now % 3_600_000 - 3_600_000, enqueue=False, **kw)


def r_token_create(f):
    from apps.accounts.services import token_create

    return lambda: token_create(user=f("alice"), name="walk", expires_in_days=5)


def r_token_revoke(f):
    from apps.accounts.services import token_create, token_revoke

    token, _ = token_create(user=f("alice"), name="walk", expires_in_days=5)
    return lambda: token_revoke(token=token)


def r_user_update_preferences(f):
    from apps.accounts.services import user_update_preferences

    return lambda: user_update_preferences(user=f("alice"), timezone_name="Europe/Paris")


def r_user_set_roles(f):
    from apps.accounts.services import user_set_roles

    return lambda: user_set_roles(user=f("alice"), roles=["Trader", "Viewer"], reason="walk")


def r_object_share(f):
    from apps.accounts.services import object_share

    config = _config(f)
    return lambda: object_share(obj=config, with_user=f("bob"), actions=("view",), reason="walk")


def r_object_unshare(f):
    from apps.accounts.services import object_share, object_unshare

    config = _config(f)
    object_share(obj=config, with_user=f("bob"), actions=("view",))
    return lambda: object_unshare(obj=config, with_user=f("bob"), reason="walk")


def r_totp_confirm(f):
    from apps.accounts.services import totp_begin, totp_confirm

    device = totp_begin(user=f("alice"))
    return lambda: totp_confirm(device=device, code=_code(device))


def r_totp_disable(f):
    from apps.accounts.services import totp_begin, totp_confirm, totp_disable

    device = totp_begin(user=f("alice"))
    totp_confirm(device=device, code=_code(device))
    device.refresh_from_db()
    return lambda: totp_disable(user=f("alice"), code=_code(device, drift=1))


def r_ensure_admin(f):
    from apps.accounts.services import ensure_admin

    return lambda: ensure_admin(username="walk-admin", password="a-long-walk-password-1")


def r_quota_set(f):
    from apps.accounts.services import quota_set

    return lambda: quota_set(key="training_trials", value=10, user=f("alice"), reason="walk")


def r_quota_delete(f):
    from apps.accounts.services import quota_delete, quota_set

    quota = quota_set(key="training_trials", value=10, user=f("alice"), reason="walk")
    return lambda: quota_delete(quota=quota, reason="walk")


def r_backtest_create(f):
    return lambda: _backtest(f)


def r_backtest_execute(f):
    from apps.backtests.services import backtest_execute

    run = _backtest(f)
    return lambda: backtest_execute(run.pk)


def r_backtest_cancel(f):
    from apps.backtests.services import backtest_cancel

    run = _backtest(f)
    return lambda: backtest_cancel(run=run, reason="walk")


def r_backtest_save_as_config(f):
    from apps.backtests.services import backtest_execute, backtest_save_as_config

    run = _backtest(f)
    backtest_execute(run.pk)
    run.refresh_from_db()
    return lambda: backtest_save_as_config(run=run, owner=f("alice"), name="walk")


def r_config_create(f):
    return lambda: _config(f)


def r_config_update(f):
    from apps.strategies.services import config_update

    config = _config(f)
    return lambda: config_update(config=config, name="renamed", reason="walk")


def r_config_delete(f):
    from apps.strategies.services import config_delete

    config = _config(f)
    return lambda: config_delete(config=config, reason="walk")


def r_config_evidence_record(f):
    from apps.strategies.services import config_evidence_record

    config = _config(f)
    return lambda: config_evidence_record(config=config, source="backtest", period_start=ms_dt(T0),
                                          period_end=ms_dt(T0 + 1000 * MIN), trades=3, sharpe=0.5)


def r_training_create(f):
    from apps.training.services import training_create

    return lambda: training_create(owner=f("alice"), enqueue=False, **training_kwargs(f("training_market")))


def r_training_create_batch(f):
    from apps.training.services import training_create_batch

    kw = training_kwargs(f("training_market"))
    series = [(kw.pop("market"), kw.pop("timeframe"))]
    kw.pop("strategy_key")
    return lambda: training_create_batch(owner=f("alice"), strategy_keys=["sma_cross"], series=series,
                                         enqueue=False, **kw)


def r_training_cancel(f):
    from apps.training.services import training_cancel, training_create

    run = training_create(owner=f("alice"), enqueue=False, **training_kwargs(f("training_market")))
    return lambda: training_cancel(run=run, reason="walk")


def r_training_retry(f):
    from apps.training.services import training_cancel, training_create, training_retry

    run = training_create(owner=f("alice"), enqueue=False, **training_kwargs(f("training_market")))
    training_cancel(run=run, reason="walk")
    return lambda: training_retry(run=run, reason="walk")


def r_training_interrupt(f):
    from apps.training.services import training_create, training_interrupt

    run = training_create(owner=f("alice"), enqueue=False, **training_kwargs(f("training_market")))
    run.claim(worker="walk")
    return lambda: training_interrupt(run=run)


def r_training_execute_worker(f):
    from apps.training.services import training_create, training_execute_worker

    run = training_create(owner=f("alice"), enqueue=False, **training_kwargs(
        f("training_market"), n_trials=2, folds=2, n_workers=1, top_n=1))
    return lambda: training_execute_worker(run.pk, "walk-w0")


def r_training_configs_create(f):
    from apps.training.services import training_configs_create

    run = _finished_training(f)
    return lambda: training_configs_create(owner=f("alice"), market=run.market, timeframe=run.timeframe,
                                           strategy_key=run.strategy_key, result=run.result,
                                           provenance={"training_run": run.pk}, label="walk", run=run)


def r_training_create_config_from_trial(f):
    from apps.training.services import training_create_config_from_trial

    run = _finished_training(f)
    # A fold's trial: the final study's best ones are configs already (asking again changes nothing).
    number = run.trials.filter(study="fold-0", state="complete").values_list("number", flat=True).first()
    return lambda: training_create_config_from_trial(run=run, number=number, owner=f("alice"), study="fold-0",
                                                     name="walk")


def r_download_start(f):
    return lambda: _download(f)


def r_download_cancel(f):
    from apps.marketdata.services import download_cancel

    job = _download(f)
    return lambda: download_cancel(job=job, reason="walk")


def r_download_retry(f):
    from apps.marketdata.services import download_cancel, download_retry

    job = _download(f)
    download_cancel(job=job)
    return lambda: download_retry(job=job, reason="walk")


def r_download_run(f):
    from apps.marketdata.services import download_run

    job = _download(f)
    return lambda: download_run(job_id=job.pk)


def r_gaps_fill(f):
    from apps.marketdata.arrays import CandleArrays
    from apps.marketdata.services import candles_ingest, gaps_fill

    c = wave_candles(300)
    keep = [i for i in range(300) if i != 150]
    candles_ingest(market=f("btc"), timeframe="1m", source="test", rows=CandleArrays(
        c.time[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep], c.volume[keep], timeframe="1m"))
    return lambda: gaps_fill(owner=f("alice"), market=f("btc"), timeframe="1m")


def r_candles_import_csv(f):
    from apps.marketdata.services import candles_import_csv

    path = f("tmp_path") / "walk.csv"
    path.write_text("time,open,high,low,close,volume\n" + "".join(
        f"{T0 + i * MIN},100,101,99,100.5,3\n" for i in range(5)))
    return lambda: candles_import_csv(path=path, exchange_name="Walk files", symbol="WLK/USD", timeframe="1m")


def r_issue_resolve(f):
    from apps.marketdata.models import DataQualityIssue
    from apps.marketdata.services.ingest import gap_record, issue_resolve

    gap_record(market=f("market"), timeframe="1m", start_ms=T0, end_ms=T0 + 5 * MIN,
               exchange_has_no_data=False, job=None, detail="walk gap")
    issue = DataQualityIssue.objects.get()
    return lambda: issue_resolve(issue=issue, reason="walk")


def r_coverage_rebuild(f):
    from apps.marketdata.services import coverage_rebuild

    f("market")
    return lambda: coverage_rebuild()


def r_exchange_get_or_create(f):
    from apps.marketdata.services import exchange_get_or_create

    return lambda: exchange_get_or_create(name="Walk exchange files")


def r_exchange_load_markets(f):
    from apps.marketdata.services import exchange_load_markets

    f("sim")
    return lambda: exchange_load_markets(exchange=f("binance"))


def r_market_get_or_load(f):
    from apps.marketdata.services import market_get_or_load

    f("sim")
    return lambda: market_get_or_load(exchange=f("binance"), symbol="ETH/USDT")


def r_market_get_or_create_for_import(f):
    from apps.marketdata.services import exchange_get_or_create, market_get_or_create_for_import

    exchange = exchange_get_or_create(name="Walk files")
    return lambda: market_get_or_create_for_import(exchange=exchange, symbol="WLK/USD")


def r_retention_apply(f):
    from apps.marketdata.services import retention_apply

    f("market")
    return lambda: retention_apply(dry_run=False)


def r_account_create(f):
    from apps.trading.services import account_create

    return lambda: account_create(owner=f("alice"), name="walk paper", exchange=f("binance"), mode="paper",
                                  paper_balance=Decimal("1000"), reason="walk")


def r_account_update(f):
    from apps.trading.services import account_update

    return lambda: account_update(account=f("paper"), name="renamed", reason="walk")


def r_account_delete(f):
    from apps.trading.services import account_delete

    return lambda: account_delete(account=f("paper"), reason="walk")


def r_account_test_connection(f):
    from apps.trading.services import account_test_connection

    return lambda: account_test_connection(account=f("paper"), reason="walk")


def r_account_auth_failed(f):
    from apps.trading.services import account_auth_failed

    return lambda: account_auth_failed(account=f("testnet"), message="invalid API key (walk)")


def r_deployment_create(f):
    from apps.trading.services import account_test_connection, deployment_create

    account_test_connection(account=f("testnet"))
    return lambda: deployment_create(owner=f("alice"), config=f("config"), account=f("testnet"),
                                     capital=Decimal("1000"), reason="walk")


def r_deployment_activate(f):
    from apps.trading.services import deployment_activate, deployment_pause

    deployment_pause(deployment=f("deployment"), reason="walk")
    return lambda: deployment_activate(deployment=f("deployment"), reason="walk")


def r_deployment_pause(f):
    from apps.trading.services import deployment_pause

    return lambda: deployment_pause(deployment=f("deployment"), reason="walk")


def r_deployment_stop(f):
    from apps.trading.services import deployment_stop

    return lambda: deployment_stop(deployment=f("deployment"), reason="walk")


def r_deployment_reconcile(f):
    from apps.trading.services import deployment_reconcile

    return lambda: deployment_reconcile(deployment=f("deployment"))


def r_order_place(f):
    return lambda: _order(f)


def r_order_protect(f):
    from apps.trading.services import order_protect

    entry = _order(f)
    last = Decimal(f("sim").candles("BTC/USDT", "1m", limit=1)[-1][4])
    return lambda: order_protect(entry=entry, stop_price=last * Decimal("0.99"), take_profit_price=last * Decimal("1.01"))


def r_order_apply_report(f):
    from apps.trading.brokers.base import OrderReport
    from apps.trading.services import order_apply_report

    order = _order(f, type="limit", price=Decimal("30000"))
    report = OrderReport(client_order_id=order.client_order_id, exchange_order_id=order.exchange_order_id,
                         symbol=order.symbol, side=order.side, type=order.type, status="canceled",
                         amount=order.amount, filled=Decimal(0), average=None)
    return lambda: order_apply_report(order=order, report=report, source="walk")


def r_order_refresh(f):
    from apps.trading.services import order_refresh

    order = _order(f, type="limit", price=Decimal("30000"))
    f("sim").fill_order(client_order_id=order.client_order_id)  # the exchange filled it meanwhile
    return lambda: order_refresh(order=order)


def r_order_cancel(f):
    from apps.trading.services import order_cancel

    order = _order(f, type="limit", price=Decimal("30000"))
    return lambda: order_cancel(order=order, reason="walk")


def _channel(f, **kw):
    from apps.alerts.services import channel_create

    return channel_create(owner=f("alice"), name="mail", kind="email", min_severity="info", reason="walk", **kw)


def _alert(f):
    from apps.alerts.services import alert_raise

    return alert_raise(severity="warning", source="trading", title="walk alert", target=f("paper"), key="walk")


def r_alert_raise(f):
    return lambda: _alert(f)


def r_alert_resolve(f):
    from apps.alerts.services import alert_resolve

    _alert(f)
    return lambda: alert_resolve(source="trading", key="walk", reason="walk")


def r_alert_acknowledge(f):
    from apps.alerts.services import alert_acknowledge

    alert = _alert(f)
    return lambda: alert_acknowledge(alert=alert, user=f("alice"), reason="walk")


def r_alert_close(f):
    from apps.alerts.services import alert_close

    alert = _alert(f)
    return lambda: alert_close(alert=alert, user=f("alice"), reason="walk")


def r_channel_create(f):
    return lambda: _channel(f)


def r_channel_update(f):
    from apps.alerts.services import channel_update

    channel = _channel(f)
    return lambda: channel_update(channel=channel, name="renamed", reason="walk")


def r_channel_delete(f):
    from apps.alerts.services import channel_delete

    channel = _channel(f)
    return lambda: channel_delete(channel=channel, reason="walk")


def r_channel_test(f):
    from apps.alerts.services import channel_test

    channel = _channel(f)
    return lambda: channel_test(channel=channel)


def r_delivery_attempt(f):
    from django.utils import timezone

    from apps.alerts.models import Delivery
    from apps.alerts.services import delivery_attempt

    delivery = Delivery.objects.create(channel=_channel(f), is_test=True, next_attempt_at=timezone.now())
    return lambda: delivery_attempt(delivery_id=delivery.pk)


def r_delivery_retry(f):
    from apps.alerts.services import channel_test, delivery_retry

    delivery = channel_test(channel=_channel(f))
    type(delivery).objects.filter(pk=delivery.pk).update(state="failed")  # as if the mail server had refused it
    delivery.refresh_from_db()
    return lambda: delivery_retry(delivery=delivery, user=f("alice"), reason="walk")


def r_position_close(f):
    from apps.trading.models import Position
    from apps.trading.services import position_close

    _order(f)
    position = Position.objects.get(deployment=f("deployment"))
    return lambda: position_close(position=position, reason="walk", actor=f("alice"))


def r_deployment_flatten(f):
    from apps.trading.services import deployment_flatten

    _order(f)
    return lambda: deployment_flatten(deployment=f("deployment"), reason="walk", actor=f("alice"))


def r_policy_update(f):
    from apps.graduation.models import GraduationPolicy
    from apps.graduation.services import policy_update

    policy = GraduationPolicy.objects.get(kind="promote", from_stage="discovery")
    return lambda: policy_update(policy=policy, actor=f("olivia"), reason="walk", min_trades=policy.min_trades + 1)


def r_config_evaluate(f):
    from apps.graduation.services import config_evaluate

    config = _config(f)
    return lambda: config_evaluate(config=config)


def r_configs_evaluate_all(f):
    from apps.graduation.services import configs_evaluate_all

    _config(f)
    return lambda: configs_evaluate_all()


def r_config_promote(f):
    from apps.graduation.services import config_promote

    config = _config(f)
    return lambda: config_promote(config=config, actor=f("alice"), reason="walk", override=True)


def r_config_demote(f):
    from apps.graduation.services import config_demote

    config = _config(f, stage="paper")
    return lambda: config_demote(config=config, actor=f("alice"), reason="walk")


def r_config_retire(f):
    from apps.graduation.services import config_retire

    config = _config(f)
    return lambda: config_retire(config=config, actor=f("alice"), reason="walk")


def r_config_move(f):
    from apps.graduation.services import config_move

    config = _config(f, stage="paper")
    return lambda: config_move(config=config, actor=f("alice"), to_stage="discovery", reason="walk")


def r_live_request_create(f):
    from apps.graduation.services import live_request_create

    config = _config(f, stage="testnet")
    return lambda: live_request_create(config=config, actor=f("alice"), reason="walk")


def r_live_request_approve(f):
    from apps.graduation.services import live_request_approve, live_request_create

    request = live_request_create(config=_config(f, stage="testnet"), actor=f("alice"), reason="walk")
    return lambda: live_request_approve(request=request, actor=f("olivia"), reason="walk")


def r_live_request_reject(f):
    from apps.graduation.services import live_request_create, live_request_reject

    request = live_request_create(config=_config(f, stage="testnet"), actor=f("alice"), reason="walk")
    return lambda: live_request_reject(request=request, actor=f("olivia"), reason="walk")


def r_profile_update(f):
    from apps.risk.services import profile_update

    return lambda: profile_update(scope="global", changes={"position_notional_max": "100000"}, reason="walk",
                                  actor=f("olivia"))


def _override(f, **kw):
    from apps.risk.services import override_create

    return override_create(scope="global", limit="position_notional_max", value="5000", reason="walk",
                           actor=f("olivia"), **kw)


def r_override_create(f):
    return lambda: _override(f)


def r_override_revoke(f):
    from apps.risk.services import override_revoke

    override = _override(f)
    return lambda: override_revoke(override=override, reason="walk", actor=f("olivia"))


def r_overrides_expire(f):
    from datetime import timedelta

    from django.utils import timezone

    from apps.risk.services import overrides_expire

    override = _override(f)
    type(override).objects.filter(pk=override.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    return lambda: overrides_expire()


def r_killswitch_trip(f):
    from apps.risk.services import killswitch_trip

    return lambda: killswitch_trip(scope="global", reason="walk", actor=f("olivia"))


def r_killswitch_release(f):
    from apps.risk.services import killswitch_release, killswitch_trip

    switch = killswitch_trip(scope="global", reason="walk", actor=f("olivia"))
    return lambda: killswitch_release(switch=switch, reason="walk", actor=f("olivia"))


def r_backup_create(f):
    from apps.ops.services import backup_create

    f("settings").TRADEPULSE_BACKUP_DIR = str(f("tmp_path"))
    return lambda: backup_create(user=f("olivia"), enqueue=False, reason="walk")


def r_backup_delete(f):
    from apps.ops.services import backup_create, backup_delete

    f("settings").TRADEPULSE_BACKUP_DIR = str(f("tmp_path"))
    backup = backup_create(user=f("olivia"), enqueue=False, reason="walk")
    return lambda: backup_delete(backup=backup, user=f("olivia"), reason="walk")


RECIPES = {name.removeprefix("r_"): fn for name, fn in list(globals().items()) if name.startswith("r_")}


def _short(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def test_every_service_function_is_walked_or_classified():
    functions = _service_functions()
    assert len(functions) > 50  # the walk found the services
    missing = sorted(q for q in functions if q not in READ_ONLY and q not in NOT_AUDITED_ITSELF
                     and q not in NOT_WALKED and _short(q) not in RECIPES)
    assert not missing, (f"{missing}: add a recipe to {__file__} (a state change must be audited), or list it as "
                         "READ_ONLY / NOT_AUDITED_ITSELF with the reason")
    stale = sorted((set(READ_ONLY) | set(NOT_AUDITED_ITSELF) | set(NOT_WALKED)) - set(functions)) + sorted(
        set(RECIPES) - {_short(q) for q in functions})
    assert not stale, f"{stale} are no longer services: remove them from the tables"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_service_writes_an_audit_event_and_deletes_carry_a_snapshot(name, request, db, alice, bob):
    call = RECIPES[name](request.getfixturevalue)
    deleted: list[str] = []

    def on_delete(sender, instance, **_):
        label = sender._meta.label_lower
        if sender.__module__.startswith("apps.") and label not in BULK_MODELS:
            deleted.append(label)

    before = set(AuditEvent.objects.values_list("pk", flat=True))
    post_delete.connect(on_delete, weak=False, dispatch_uid="audit-walk")
    try:
        call()
    finally:
        post_delete.disconnect(dispatch_uid="audit-walk")
    events = list(AuditEvent.objects.exclude(pk__in=before))
    assert events, f"{name} changed state without writing an audit event"
    if deleted:
        assert any("snapshot" in e.metadata for e in events), (
            f"{name} deleted {sorted(set(deleted))} but no event of it carries metadata['snapshot']: "
            f"{[e.action for e in events]}")
