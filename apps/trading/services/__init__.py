"""Every state change of trading (DESIGN.md: views, API, admin, tasks and commands call these).

- accounts:    account_create, account_update, account_delete, account_test_connection, account_auth_failed
- deployments: deployment_create, deployment_activate, deployment_pause, deployment_stop,
               deployment_lease_acquire, deployment_lease_release, deployment_running
- orders:      order_place, order_protect, order_apply_report, order_refresh, order_cancel, fill_record, position_apply_fill
- reconcile:   deployment_reconcile
- portfolio:   portfolio_snapshot_take
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
