"""Who sees which alert, and the counts the top bar and the metrics show.

The rule (DESIGN.md, Permissions): an alert about an object is seen by whoever may see that
object (its owner, users it is shared with, operators); an alert addressed to a user (`owner`)
by that user; a system alert (no target, no owner) by operators only.
"""
from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Count, Q, QuerySet
from django.db.models.functions import Cast

from tradepulse.core.permissions import can, sees_everything, visible_to

from .models import Alert, AlertState


def alerts_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """`queryset` (default: every alert) narrowed to the alerts `user` may see."""
    queryset = Alert.objects.all() if queryset is None else queryset
    if user is None or not user.is_authenticated or not user.is_active:
        return queryset.none()
    if sees_everything(user):
        return queryset
    condition = Q(owner=user)
    type_ids = Alert.objects.exclude(target_type=None).values_list("target_type", flat=True).distinct()
    for type_id in type_ids:
        model = ContentType.objects.get_for_id(type_id).model_class()
        if model is None:  # an app that was removed: nobody but operators
            continue
        ids = visible_to(user, model._default_manager.all()).annotate(
            _pk_text=Cast("pk", output_field=CharField())).values("_pk_text")
        condition |= Q(target_type_id=type_id, target_id__in=ids)
    return queryset.filter(condition)


def alert_may_act(user, alert: Alert) -> bool:
    """May `user` acknowledge or resolve this alert? Operators: any. Others: alerts about
    objects they may operate (owner, or shared with change), or addressed to them; never with a
    read-only role."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if not user.has_perm("alerts.change_alert"):
        return False
    if sees_everything(user):
        return True
    if alert.owner_id == user.pk and alert.target_type_id is None:
        return True
    target = alert.target
    return target is not None and can(user, "operate", target)


def unread_count(user) -> int:
    """Open (not yet acknowledged) alerts the user may see: the number in the top bar."""
    return alerts_visible_to(user, Alert.objects.filter(state=AlertState.OPEN)).count()


def open_counts_by_severity() -> dict[str, int]:
    """Unresolved alerts per severity, for every severity (zeros included): the metrics gauge."""
    from .models import Severity

    rows = (Alert.objects.exclude(state=AlertState.RESOLVED).values("severity").annotate(n=Count("id")))
    counts = {s: 0 for s in Severity.values}
    counts.update({r["severity"]: r["n"] for r in rows})
    return counts
