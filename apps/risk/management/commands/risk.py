"""Risk limits and usage, the kill switch, profile edits and overrides, from the shell.

    manage.py risk show [--deployment ID | --account ID | --user NAME] [--json]
    manage.py risk trip (--global | --user NAME | --account ID | --deployment ID) --reason TEXT [--flatten] [--json]
    manage.py risk release (--global | --user NAME | --account ID | --deployment ID) --reason TEXT [--json]
    manage.py risk set (--global | ...) --reason TEXT --limit-value field=value [--limit-value ...] [--json]
    manage.py risk override (--global | ...) --limit NAME --value N --reason TEXT [--hours H] [--json]
    manage.py risk backtest --run ID [--json]     (what the limits would have done to a finished run)

The same services as the API, the admin and the page (audited as `command:risk`, with the reason).
`show` prints each scope's limits with current usage, active overrides and kill switches.
"""
from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils import timezone

from apps.backtests.models import BacktestRun
from apps.risk import selectors, services
from apps.risk.backtest import backtest_with_limits
from apps.risk.models import KillSwitch, Scope, target_key
from apps.trading.models import Deployment, ExchangeAccount
from tradepulse.core.commands import TradePulseCommand


class Command(TradePulseCommand):
    help = __doc__

    def add_options(self, parser):
        parser.add_argument("action", choices=["show", "trip", "release", "set", "override", "backtest"])
        parser.add_argument("--run", type=int, help="backtest: the finished backtest run to replay with the limits.")
        parser.add_argument("--limit-value", dest="assignments", action="append", default=[], metavar="FIELD=VALUE",
                            help="set: a profile field and its value (repeat; an empty value clears it).")
        parser.add_argument("--global", dest="is_global", action="store_true", help="The global scope.")
        parser.add_argument("--user", help="A user's scope (username).")
        parser.add_argument("--account", type=int, help="An exchange account's scope (id).")
        parser.add_argument("--deployment", type=int, help="A deployment's scope (id).")
        parser.add_argument("--reason", default="", help="Why (required for every change).")
        parser.add_argument("--flatten", action="store_true", help="trip: also close positions.")
        parser.add_argument("--limit", help="override: the limit field, e.g. risk_per_trade_pct.")
        parser.add_argument("--value", help="override: its value.")
        parser.add_argument("--hours", type=float, help="override: lifetime in hours (default from the profile).")

    def _target(self, o):
        chosen = [k for k in ("is_global", "user", "account", "deployment") if o.get(k)]
        if len(chosen) > 1:
            raise CommandError("Name one scope: --global, --user, --account or --deployment.")
        if o.get("user"):
            user = get_user_model().objects.filter(username=o["user"]).first()
            if user is None:
                raise CommandError(f"--user: no user {o['user']!r}")
            return Scope.USER, user
        if o.get("account"):
            account = ExchangeAccount.objects.filter(pk=o["account"]).first()
            if account is None:
                raise CommandError(f"--account: no exchange account {o['account']}")
            return Scope.ACCOUNT, account
        if o.get("deployment"):
            deployment = Deployment.objects.select_related("config__market").filter(pk=o["deployment"]).first()
            if deployment is None:
                raise CommandError(f"--deployment: no deployment {o['deployment']}")
            return Scope.DEPLOYMENT, deployment
        return Scope.GLOBAL, None

    def run(self, **o):
        scope, target = self._target(o)
        action = o["action"]
        if action == "backtest":
            return self._backtest(o.get("run"))
        if action == "show":
            return self._show(scope, target)
        if action == "trip":
            switch = services.killswitch_trip(scope=scope, target=target, reason=o["reason"], flatten=o["flatten"])
            self.say(f"Kill switch {switch.pk} ACTIVE at {switch.scope_label}: {switch.reason}")
            self.say(f"  cancelled {len(switch.outcome.get('cancelled', []))} orders, closed "
                     f"{len(switch.outcome.get('closed', []))} positions")
            return services.killswitch_data(switch)
        if action == "release":
            key = target_key(scope, getattr(target, "pk", None))
            switch = KillSwitch.objects.filter(target_key=key, released_at__isnull=True).first()
            if switch is None:
                raise CommandError(f"No active kill switch at {key}.")
            switch = services.killswitch_release(switch=switch, reason=o["reason"])
            self.say(f"Kill switch {switch.pk} released at {switch.scope_label}: {switch.release_reason}")
            return services.killswitch_data(switch)
        if action == "set":
            changes = {}
            for pair in o["assignments"]:
                field, sep, value = pair.partition("=")
                if not sep:
                    raise CommandError(f"{pair!r}: write field=value, e.g. daily_loss_pct=3")
                changes[field.strip()] = value.strip()
            if not changes:
                raise CommandError("set: give at least one --limit-value field=value.")
            profile = services.profile_update(scope=scope, target=target, changes=changes, reason=o["reason"])
            self.say(f"{profile}: " + ", ".join(f"{k}={getattr(profile, k)}" for k in changes))
            return {"id": profile.pk, "target_key": profile.target_key,
                    "changes": {k: getattr(profile, k) for k in changes}}
        if action == "override":
            if not o.get("limit") or o.get("value") is None:
                raise CommandError("override: give --limit and --value.")
            expires = timezone.now() + timedelta(hours=o["hours"]) if o.get("hours") else None
            ov = services.override_create(scope=scope, target=target, limit=o["limit"], value=o["value"],
                                          reason=o["reason"], expires_at=expires)
            self.say(f"Override {ov.pk}: {ov.limit}={ov.value} at {ov.scope_label} until "
                     f"{ov.expires_at:%Y-%m-%d %H:%M} UTC")
            return {"id": ov.pk, "target_key": ov.target_key, "limit": ov.limit, "value": str(ov.value),
                    "expires_at": ov.expires_at.isoformat()}
        raise CommandError(f"unknown action {action}")  # pragma: no cover - argparse restricts it

    def _backtest(self, run_id):
        run = BacktestRun.objects.select_related("market", "owner").filter(pk=run_id).first() if run_id else None
        if run is None:
            raise CommandError(f"--run: no backtest run {run_id}")
        if run.state != "succeeded":
            raise CommandError(f"--run: run {run_id} is {run.state}; only a finished run can be replayed")
        data = backtest_with_limits(run)
        w, wo = data["with_limits"], data["without_limits"]
        self.say(f"Backtest {run.pk} with the limits of {', '.join(data['limits_of'])}:")
        self.say(f"  without limits: {wo['trades']} trades, final equity {wo['final_equity']:.2f}")
        self.say(f"  with limits:    {w['trades']} trades, final equity {w['final_equity']:.2f}")
        self.say(f"  entries approved {data['entries']['approved']}, resized {data['entries']['resized']}, "
                 f"rejected {data['entries']['rejected']}; by limit: {data['by_limit']}")
        if data["halted"]:
            self.say(f"  {data['halted']}")
        self.say(f"  not simulated: {', '.join(data['not_simulated'])}")
        return data

    def _show(self, scope, target):
        kwargs = {str(scope): target} if target is not None else {}
        data = selectors.overview(selectors.context_for(**kwargs))
        for s in data["scopes"]:
            switch = s["kill_switch"]
            self.say(f"{s['label']}  equity {s['equity']}" + (f"  KILL SWITCH ACTIVE: {switch['reason']}"
                                                                if switch else ""))
            for lim in s["limits"]:
                if lim["value"] is None:
                    continue
                used = "—" if lim["used"] is None else f"{lim['used']:g}"
                mark = " (override)" if lim["overridden"] else ""
                self.say(f"  {lim['label']:<32} {used:>12} / {lim['value']:g} {lim['unit']}{mark}")
            for ov in s["overrides"]:
                self.say(f"  override {ov['limit']}={ov['value']} until {ov['expires_at']}: {ov['reason']}")
        if data["risk_per_trade_pct"] is not None and scope == Scope.DEPLOYMENT:
            self.say(f"Risk per trade now {data['risk_per_trade_pct']:g} % ({data['risk_per_trade_source']})")
        return data
