"""Dashboard pages for trading: the portfolio overview, a deployment, an account.

Pages are rendered on the server from the selectors (so what a user sees is one template, and
another user's deployment or account is a 404). Live updates: the page's script follows the
WebSocket events of what it shows and re-renders only the part an event touched, by asking this
same view for that part (`?part=<name>`): one rendering path, no polling. Actions (activate,
pause, stop, close, flatten, cancel, test connection) go through the API, i.e. the services.
"""
from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from apps.strategies.models import StrategyConfig
from tradepulse.core.permissions import visible_to

from . import selectors
from .models import DeploymentState, ExchangeAccount, Mode

RECENT_FILLS = 20
DEPLOYMENT_ORDERS = 100
DEPLOYMENT_FILLS = 100

OVERVIEW_PARTS = ("totals", "deployments", "positions", "fills", "accounts")
DEPLOYMENT_PARTS = ("header", "notices", "figures", "tracking", "position", "orders", "fills")
ACCOUNT_PARTS = ("status", "deployments")


def _render(request, template: str, parts: tuple[str, ...], context: dict):
    part = request.GET.get("part")
    if part:
        if part not in parts:
            raise Http404("No such part")
        return render(request, f"trading/_{part}.html", context)
    return render(request, template, context)


@login_required
def overview(request):
    user = request.user
    deployments = list(selectors.deployments_visible(user).order_by("state", "-created_at"))
    positions = list(selectors.open_positions_of([d.pk for d in deployments]))
    fills = list(selectors.fills_of([d.pk for d in deployments]).order_by("-time", "-pk")[:RECENT_FILLS])
    accounts = list(selectors.accounts_visible(user))
    context = {
        "deployments": deployments, "positions": positions, "fills": fills, "accounts": accounts,
        "totals": selectors.overview_totals(deployments, positions),
        "may_operate": selectors.deployments_allowed(user, deployments, "operate"),
        "may_activate": selectors.deployments_allowed(user, deployments, "change"),
        "topics_json": _topics(deployments),
        "show_actions": True,
    }
    if not request.GET.get("part"):
        context["configs"] = list(visible_to(user, StrategyConfig.objects.all()).select_related("market__exchange")
                                  .order_by("name")[:200])
        context["my_accounts"] = [a for a in accounts if a.owner_id == user.pk]
        context["exchanges_for_paper"] = _exchanges(context["configs"])
        context["may_create"] = user.has_perm("trading.add_deployment")
    return _render(request, "trading/overview.html", OVERVIEW_PARTS, context)



def _topics(deployments, *extra: str) -> str:
    """The live topics a page follows (the consumer allows 100 per connection): its deployments'
    (the owner hears them on their own channel anyway; shared viewers and operators through these)."""
    topics = [*extra, *(f"deployment-{d.pk}" for d in deployments if d.state != DeploymentState.STOPPED)]
    return json.dumps(topics[:90])


def _exchanges(configs) -> list:
    seen = {}
    for c in configs:
        seen.setdefault(c.market.exchange_id, c.market.exchange)
    return sorted(seen.values(), key=lambda e: e.name)


@login_required
def deployment_page(request, pk: int):
    user = request.user
    deployment = selectors.deployment_for(user, pk)
    if deployment is None:
        raise Http404("No such deployment")
    orders = list(deployment.orders.all().order_by("-created_at", "-pk")[:DEPLOYMENT_ORDERS])
    positions = list(deployment.positions.all())
    perf = selectors.performance(type(deployment).objects.filter(pk=pk), by="deployment")[pk]
    context = {
        "d": deployment, "orders": orders,
        "fills": list(selectors.fills_of([pk]).order_by("-time", "-pk")[:DEPLOYMENT_FILLS]),
        "positions": positions,
        "positions_open": any(p.side != "flat" for p in positions),
        "notices": selectors.deployment_notices(deployment),
        "perf": perf,
        "may_operate": selectors.may_operate(user, deployment),
        "may_activate": {deployment.pk} if selectors.may_change(user, deployment) else set(),
        "quote": deployment.config.market.quote, "base": deployment.config.market.base,
    }
    part = request.GET.get("part")
    if part in (None, "", "tracking"):  # a replay: computed for the page and when trades change, not every tick
        context["tracking_error"] = selectors.tracking_error(deployment)
    return _render(request, "trading/deployment.html", DEPLOYMENT_PARTS, context)


@login_required
def account_page(request, pk: int):
    user = request.user
    account = selectors.account_for(user, pk)
    if account is None:
        raise Http404("No such account")
    deployments = list(selectors.deployments_visible(user).filter(account=account).order_by("state", "-created_at"))
    allocated = sum((d.capital for d in deployments if d.state != DeploymentState.STOPPED), start=0)
    context = {
        "account": account, "deployments": deployments, "allocated": allocated,
        "free_to_allocate": (account.paper_balance - allocated) if account.mode == Mode.PAPER else None,
        "may_change": selectors.may_change(user, account),
        "may_operate": selectors.deployments_allowed(user, deployments, "operate"),
        "may_activate": selectors.deployments_allowed(user, deployments, "change"),
        "withdraw_allowed": bool((account.permissions or {}).get("withdraw")),
        "permission_rows": _permission_rows(account),
        "topics_json": _topics(deployments, f"account-{account.pk}"), "show_actions": True,
    }
    return _render(request, "trading/account.html", ACCOUNT_PARTS, context)


def _permission_rows(account: ExchangeAccount) -> list[tuple[str, str]]:
    """What the last connection test found the key may do: (what, yes / no / unknown)."""
    found = account.permissions or {}
    label = {True: "yes", False: "no", None: "unknown"}
    return [(what, label.get(found.get(what), "unknown")) for what in ("read", "trade", "withdraw")]
