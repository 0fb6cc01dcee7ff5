"""manage.py alerts list|acknowledge|resolve|test-channel|deliver-due --as USERNAME [--json]

The same services as the API: `list` shows the alerts USERNAME may see (operators: all);
`acknowledge ID` / `resolve ID --reason …` act as that user (audited with the command as the means);
`test-channel ID` sends a test on one of the user's channels; `deliver-due` sends what is due now
(what the beat task does every 15 s).
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from apps.alerts import services
from apps.alerts.models import Alert, AlertState, Channel
from apps.alerts.selectors import alerts_visible_to
from apps.alerts.serializers import AlertSerializer, DeliverySerializer
from apps.alerts.tasks import deliver_due
from tradepulse.core import context
from tradepulse.core.commands import TradePulseCommand
from tradepulse.core.permissions import visible_to


class Command(TradePulseCommand):
    help = "List, acknowledge and resolve alerts; test a channel; send due deliveries."

    def add_options(self, parser):
        parser.add_argument("action", choices=["list", "acknowledge", "resolve", "test-channel", "deliver-due"])
        parser.add_argument("id", nargs="?", type=int, help="alert id (acknowledge, resolve) or channel id")
        parser.add_argument("--as", dest="username", help="act as this user (required except for deliver-due)")
        parser.add_argument("--state", choices=[*AlertState.values, "unresolved", "all"], default="unresolved")
        parser.add_argument("--reason", default="", help="why (recorded in the audit trail)")
        parser.add_argument("--limit", type=int, default=50)

    def run(self, **options):
        action = options["action"]
        if action == "deliver-due":
            attempted = deliver_due()
            self.say(f"{attempted} deliveries attempted")
            return {"attempted": attempted}
        if not options.get("username"):
            raise CommandError("--as USERNAME is required: alerts are seen and acted on as a user")
        user = get_user_model().objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"--as: no active user {options['username']!r}")
        if action == "list":
            return self._list(user, options["state"], options["limit"])
        if options.get("id") is None:
            raise CommandError(f"{action} needs an id")
        with context.acting(user_id=user.pk):
            if action == "test-channel":
                channel = visible_to(user, Channel.objects.all(), "change").filter(pk=options["id"]).first()
                if channel is None:
                    raise CommandError(f"no channel {options['id']} of yours")
                delivery = services.channel_test(channel=channel)
                self.say(f"test on {channel}: {delivery.state}{' — ' + delivery.last_error if delivery.last_error else ''}")
                return {"delivery": DeliverySerializer(delivery).data}
            alert = alerts_visible_to(user).filter(pk=options["id"]).first()
            if alert is None:
                raise CommandError(f"no alert {options['id']} that {user.get_username()} may see")
            service = services.alert_acknowledge if action == "acknowledge" else services.alert_close
            try:
                alert = service(alert=alert, user=user, reason=options["reason"])
            except PermissionDenied as exc:
                raise CommandError(str(exc)) from None
        self.say(f"alert {alert.pk}: {alert.state}")
        return {"alert": AlertSerializer(alert).data}

    def _list(self, user, state: str, limit: int) -> dict:
        rows = alerts_visible_to(user, Alert.objects.select_related("target_type", "acknowledged_by", "resolved_by"))
        if state == "unresolved":
            rows = rows.exclude(state=AlertState.RESOLVED)
        elif state != "all":
            rows = rows.filter(state=state)
        alerts = list(rows[:max(limit, 1)])
        for a in alerts:
            self.say(f"#{a.pk:<5} {a.severity:<8} {a.state:<12} ×{a.count:<4} {a.last_seen:%Y-%m-%d %H:%M} UTC  "
                     f"{a.title}" + (f"  [{a.target_repr}]" if a.target_repr else ""))
        if not alerts:
            self.say("no alerts")
        return {"count": rows.count(), "alerts": AlertSerializer(alerts, many=True).data}
