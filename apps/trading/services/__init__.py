"""Every state change of trading (DESIGN.md: views, API, admin, tasks and commands call these).

- accounts:    account_create, account_update, account_delete, account_test_connection, account_auth_failed
- deployments: deployment_create, deployment_activate, deployment_pause, deployment_stop,
               deployment_lease_acquire, deployment_lease_release, deployment_running
- orders:      order_place, order_protect, order_apply_report, order_refresh, order_cancel, fill_record, position_apply_fill
- reconcile:   deployment_reconcile
- portfolio:   portfolio_snapshot_take
- engine:      deployment_tick, deployment_tick_safely, engine_tick_all, deployments_due, candles_refresh
- manual:      position_close, deployment_flatten (and orders.order_cancel)
- replay:      replay (the loop with the PaperBroker over stored candles, nothing stored)
- tracking:    deployment_tracking_error (live trades against a replay of the same period)
"""
from .accounts import account_auth_failed, account_create, account_delete, account_test_connection, account_update
from .deployments import (DeploymentBusy, deployment_activate, deployment_create, deployment_lease_acquire,
                          deployment_lease_release, deployment_pause, deployment_running, deployment_stop)
from .orders import (fill_record, order_apply_report, order_cancel, order_place, order_protect, order_refresh,
                     position_apply_fill)
from .portfolio import portfolio_snapshot_take
from .reconcile import deployment_reconcile

__all__ = [
    "DeploymentBusy", "account_auth_failed", "account_create", "account_delete", "account_test_connection",
    "account_update", "deployment_activate", "deployment_create", "deployment_lease_acquire",
    "deployment_lease_release", "deployment_pause", "deployment_reconcile", "deployment_running", "deployment_stop",
    "fill_record", "order_apply_report", "order_cancel", "order_place", "order_protect", "order_refresh", "portfolio_snapshot_take",
    "position_apply_fill",
]
from .engine import (candles_refresh, deployment_tick, deployment_tick_safely, deployments_due,  # noqa: E402
                     engine_tick_all)
from .manual import deployment_flatten, position_close  # noqa: E402
from .replay import replay  # noqa: E402
from .tracking import deployment_tracking_error  # noqa: E402
