"""The one rule for who sees and touches what; admin, API, dashboard and WebSocket all use it.

Actions on an object: "view", "change", "delete", and "operate" (stop or restart work the
platform is doing: cancel a job, retry it, resolve a data-quality issue, later the kill switch).

- The owner may do everything with their objects; a user an object was shared with
  (django-guardian object permission) may do what was shared ("operate" goes with "change").
- Operators and admins (`accounts.view_all_objects`) may "view" and "operate" everything: they
  run the platform. They may NOT change or delete another user's research (configs, runs,
  parameters): that needs an explicit object permission, shared by the owner (or granted by a
  superuser in the admin). Decided in issue 9: an operator keeping the platform running must not
  be able to alter the evidence a trader's decisions rest on, unseen.
- Django superusers (break-glass accounts) may do everything.
- Shared reference data (exchanges, markets, candles) has no owner: the role's model permission
  decides. A model owned through a parent (`OWNED_THROUGH = "job"`) follows its parent; rows
  with no parent are reference data to view, and only operators may change them.

Another user's object is absent from every queryset, so it answers 404, not 403.
"""
from __future__ import annotations

from django.db.models import Model, Q, QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user

OWNER_ACTIONS = ("view", "change", "delete")
OPERATOR_ACTIONS = ("view", "operate")  # what seeing everything lets an operator do to anyone's object
# API actions (viewset action names) that operate the platform (stop, restart, acknowledge)
# rather than change research.
OPERATIONAL_API_ACTIONS = frozenset({"cancel", "retry", "resolve", "pause", "stop", "reconcile", "close", "flatten"})


def sees_everything(user) -> bool:
    return bool(user and user.is_active and (user.is_superuser or user.has_perm("accounts.view_all_objects")))


def acts_on_everything(user, action: str) -> bool:
    """Operators view and operate everything; only superusers change or delete anything."""
    if not (user and user.is_active):
        return False
    return user.is_superuser or (action in OPERATOR_ACTIONS and sees_everything(user))


def is_owned(model) -> bool:
    return any(f.name == "owner" for f in model._meta.get_fields())


def perm_name(model, action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def visible_to(user, queryset: QuerySet, action: str = "view") -> QuerySet:
    """Narrow `queryset` to the objects `user` may `action` (view/change/delete/operate)."""
    if action not in (*OWNER_ACTIONS, "operate"):
        raise ValueError(f"unknown action {action!r}")
    if user is None or not user.is_authenticated or not user.is_active:
        return queryset.none()
    model = queryset.model
    if acts_on_everything(user, action):
        return queryset
    perm_action = "change" if action == "operate" else action
    through = getattr(model, "OWNED_THROUGH", None)
    if through:
        parents = visible_to(user, model._meta.get_field(through).related_model.objects.all(), action)
        orphans = Q(**{f"{through}__isnull": True})
        if action != "view" or not user.has_perm(perm_name(model, "view")):
            orphans = Q(pk__in=[])
        return queryset.filter(orphans | Q(**{f"{through}__in": parents.values("pk")}))
    if not is_owned(model):
        # Shared reference data (exchanges, markets, candles): the model permission decides.
        return queryset if user.has_perm(perm_name(model, perm_action)) else queryset.none()
    shared = get_objects_for_user(
        user, perm_name(model, perm_action), klass=model.objects.all(),
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
