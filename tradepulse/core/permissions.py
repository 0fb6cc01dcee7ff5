"""The one rule for who sees and touches what; admin, API, dashboard and WebSocket all use it.

An object is visible to its owner, to users (or groups) it was shared with through a
django-guardian object permission, and to operators/admins (`accounts.view_all_objects`).
Another user's object is simply absent from every queryset, so it answers 404, not 403.
"""
from __future__ import annotations

from django.db.models import Model, Q, QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user

OWNER_ACTIONS = ("view", "change", "delete")


def sees_everything(user) -> bool:
    return bool(user and user.is_active and (user.is_superuser or user.has_perm("accounts.view_all_objects")))


def is_owned(model) -> bool:
    return any(f.name == "owner" for f in model._meta.get_fields())


def perm_name(model, action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def visible_to(user, queryset: QuerySet, action: str = "view") -> QuerySet:
    """Narrow `queryset` to the objects `user` may `action` (view/change/delete)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return queryset.none()
    model = queryset.model
    if sees_everything(user):
        return queryset
    if not is_owned(model):
        # Shared reference data (exchanges, markets, candles): the model permission decides.
        return queryset if user.has_perm(perm_name(model, action)) else queryset.none()
    shared = get_objects_for_user(
        user, perm_name(model, action), klass=model.objects.all(),
        accept_global_perms=False, with_superuser=False,
    ).values("pk")
    return queryset.filter(Q(owner=user) | Q(pk__in=shared))


def can(user, action: str, obj: Model) -> bool:
    """May `user` do `action` on this one object?"""
    return visible_to(user, type(obj).objects.filter(pk=obj.pk), action).exists()


def grant_owner(obj: Model) -> None:
    """Give an object's owner its object permissions (called by every create service)."""
    for action in OWNER_ACTIONS:
        assign_perm(perm_name(type(obj), action), obj.owner, obj)
