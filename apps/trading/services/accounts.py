"""Exchange accounts: create, change, delete, test the connection. Secrets are never audited,
published or returned: audit entries record only whether credentials were set or replaced."""
from __future__ import annotations

import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record, diff
from tradepulse.core.events import publish_for
from tradepulse.core.permissions import grant_owner

from ..brokers import Broker, BrokerError, broker_for
from ..models import DeploymentState, ExchangeAccount, Health, Mode
from .deployments import deployment_pause

log = logging.getLogger(__name__)

PUBLIC_FIELDS = ("name", "exchange_id", "mode", "paper_balance", "paper_currency")
EDITABLE = ("name", "paper_balance", "paper_currency", "api_key", "api_secret", "api_password")


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def account_snapshot(account: ExchangeAccount) -> dict:
    """What an audit entry may say about an account: no secret, only whether one is set."""
    return {**{f: getattr(account, f) for f in PUBLIC_FIELDS}, "has_credentials": account.has_credentials,
            "has_password": bool(account.api_password)}


@transaction.atomic
def account_create(*, owner, name: str, exchange, mode: str = Mode.PAPER, api_key: str = "", api_secret: str = "",
                   api_password: str = "", paper_balance: Decimal | None = None, paper_currency: str = "USDT",
                   reason: str = "") -> ExchangeAccount:
    """Create an account. Paper: a starting balance (quote currency), no key. Testnet/live: an API
    key and secret (stored encrypted); test the connection next to see what the key may do."""
    account = ExchangeAccount(owner=owner, name=name.strip(), exchange=exchange, mode=mode,
                              api_key=(api_key or "").strip(), api_secret=(api_secret or "").strip(),
                              api_password=(api_password or "").strip(), paper_balance=paper_balance,
                              paper_currency=(paper_currency or "USDT").strip().upper())
    if mode != Mode.PAPER:
        account.paper_balance = None
    account.full_clean()
    account.save()
    grant_owner(account)
    audit_record("trading.account.created", target=account, reason=reason, metadata=account_snapshot(account))
    return account


@transaction.atomic
def account_update(*, account: ExchangeAccount, reason: str = "", **changes) -> ExchangeAccount:
    """Rename, change a paper balance, or replace credentials (blank secret = keep the stored one)."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError({f: "This field cannot be changed; create a new account." for f in unknown})
    account = ExchangeAccount.objects.select_for_update().get(pk=account.pk)
    before = account_snapshot(account)
    replaced = []
    for field, value in changes.items():
        if field in ExchangeAccount.SECRET_FIELDS:
            value = (value or "").strip()
            if not value or value == getattr(account, field):
                continue  # write-only: an empty value means "unchanged"
            replaced.append(field)
        setattr(account, field, value)
    account.full_clean()
    if replaced:
        account.health, account.permissions, account.last_error = Health.UNKNOWN, {}, ""
    account.save()
    changes_out = diff(before, account_snapshot(account))
    if replaced:
        changes_out["credentials"] = ["kept", "replaced: " + ", ".join(replaced)]
    audit_record("trading.account.updated", target=account, reason=reason, changes=changes_out)
    return account


@transaction.atomic
def account_delete(*, account: ExchangeAccount, reason: str = "") -> None:
    """Delete an account no deployment uses (stopped deployments keep their history: refuse)."""
    if account.deployments.exists():
        raise ValidationError(f"Account {account.name!r} has deployments; stop them and keep the account for their "
                              "history, or delete the deployments first.")
    audit_record("trading.account.deleted", target=account, reason=reason,
                 metadata={"snapshot": account_snapshot(account)})
    account.delete()


def account_test_connection(*, account: ExchangeAccount, broker: Broker | None = None, reason: str = "") -> dict:
    """Ask the exchange what this key may do (read, trade, withdraw) and fetch balances.

    Stores health (ok / warning / auth_failed / error), the last error, permissions and
    balances; warns when the key may withdraw. A key that fails authentication is not retried:
    the account shows it and its active deployments pause. Returns {"health", "permissions",
    "balances", "warnings", "error"}.
    """
    now = timezone.now()
    if account.mode == Mode.PAPER:
        result = {"health": Health.OK, "permissions": {"read": True, "trade": True, "withdraw": False},
                  "balances": {account.paper_currency: {"free": _num(account.paper_balance), "used": "0",
                                                        "total": _num(account.paper_balance)}},
                  "warnings": [], "error": ""}
        return _store_test(account, result, now, reason)
    warnings: list[str] = []
    try:
        broker = broker or broker_for(account)
        balances = broker.balance()
        permissions = broker.key_permissions()
    except BrokerError as exc:
        health = Health.AUTH_FAILED if exc.code == "auth_failed" else Health.ERROR
        result = {"health": health, "permissions": {}, "balances": {}, "warnings": [], "error": exc.message}
        _store_test(account, result, now, reason)
        if health == Health.AUTH_FAILED:
            account_auth_failed(account=account, message=exc.message)
        return result
    if permissions.get("withdraw"):
        warnings.append("This API key may WITHDRAW funds. Trading needs no withdrawal permission: create a key "
                        "without it (and restrict it to this server's IP).")
    if permissions.get("trade") is False:
        warnings.append("This API key cannot trade (read-only): deployments on this account cannot place orders.")
    if permissions.get("withdraw") is None:
        warnings.append("The exchange does not say whether this key may withdraw; check it on the exchange.")
    shown = {c: {"free": _num(b.free), "used": _num(b.used), "total": _num(b.total)}
             for c, b in balances.items() if b.total}
    result = {"health": Health.WARNING if warnings else Health.OK, "permissions": permissions, "balances": shown,
              "warnings": warnings, "error": ""}
    return _store_test(account, result, now, reason)


def _store_test(account: ExchangeAccount, result: dict, now, reason: str) -> dict:
    with transaction.atomic():
        account = ExchangeAccount.objects.select_for_update().get(pk=account.pk)
        account.health = result["health"]
        account.last_error = result["error"] or "; ".join(result["warnings"])
        account.last_checked_at = now
        if result["health"] in (Health.OK, Health.WARNING):
            account.permissions = result["permissions"]
            account.balances = result["balances"]
            if not account.balance_baseline and account.mode != Mode.PAPER:
                account.balance_baseline = {c: b["total"] for c, b in result["balances"].items()}
                account.baseline_at = now
        account.save()
        audit_record("trading.account.tested", target=account, reason=reason or "connection test",
                     metadata={"health": result["health"], "permissions": result["permissions"],
                               "warnings": result["warnings"], "error": result["error"]})
        publish_for(account, "trading.account.updated", {"id": account.pk, "health": account.health,
                                                         "last_error": account.last_error})
    return result


def account_auth_failed(*, account: ExchangeAccount, message: str) -> None:
    """The exchange refused the key: mark the account and pause its active deployments (no retry
    loop: nothing is sent on this account until a person fixes the key and resumes)."""
    ExchangeAccount.objects.filter(pk=account.pk).update(health=Health.AUTH_FAILED, last_error=message[:2000],
                                                         last_checked_at=timezone.now())
    audit_record("trading.account.auth_failed", target=account, reason=message[:1000],
                 changes={"health": [account.health, Health.AUTH_FAILED]})
    for deployment in account.deployments.filter(state=DeploymentState.ACTIVE):
        deployment_pause(deployment=deployment, reason=f"The exchange rejected the account's API key: {message}")
