"""Account state changes: API tokens, preferences, sharing, two-factor devices, quotas."""
from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit.services import audit_record, diff

from .models import ApiToken, Quota, QuotaKey
from tradepulse.core.permissions import OWNER_ACTIONS, perm_name

User = get_user_model()


def token_max_days() -> int:
    return settings.API_TOKEN_MAX_DAYS


@transaction.atomic
def token_create(*, user, name: str, expires_in_days: int | None, using_token: ApiToken | None = None
                 ) -> tuple[ApiToken, str]:
    """Create an API token; returns (row, plain token). The plain token is never stored or shown again.

    `expires_in_days`: 1 to settings.API_TOKEN_MAX_DAYS; every token expires. `using_token`: the
    token the request was authenticated with, if any. Tokens cannot create tokens: a leaked token
    could otherwise outlive its own revocation through the tokens it made. A person signed in to
    the dashboard (with their second factor, where they use one) creates them.
    """
    if using_token is not None:
        raise PermissionDenied("API tokens cannot create tokens: create one on the API tokens page while signed in.")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name that says what it is for."})
    max_days = token_max_days()
    if expires_in_days is None or not (1 <= int(expires_in_days) <= max_days):
        raise ValidationError({"expires_in_days": f"Every token expires: give between 1 and {max_days} days "
                                                  "(the maximum lifetime, TRADEPULSE_API_TOKEN_MAX_DAYS)."})
    token, plain = ApiToken.objects.create(user=user, expiry=timedelta(days=int(expires_in_days)), name=name)
    audit_record("accounts.token.created", target=user, metadata={"name": name, "token_key": token.token_key,
                                                                  "expiry": token.expiry})
    return token, plain


@transaction.atomic
def token_revoke(*, token: ApiToken) -> None:
    """Revoke (delete) a token; audited with what it was (never its hash)."""
    audit_record("accounts.token.revoked", target=token.user, metadata={
        "name": token.name, "token_key": token.token_key,
        "snapshot": {"name": token.name, "token_key": token.token_key, "created": token.created,
                     "expiry": token.expiry, "last_used_at": token.last_used_at}})
    token.delete()


@transaction.atomic
def user_update_preferences(*, user, timezone_name: str | None = None, language: str | None = None):
    before = {"timezone": user.timezone, "language": user.language}
    if timezone_name is not None:
        user.timezone = timezone_name
    if language is not None:
        user.language = language
    user.full_clean(exclude=["password", "username"])
    user.save(update_fields=["timezone", "language"])
    audit_record("accounts.user.preferences_changed", target=user, changes=diff(before, {"timezone": user.timezone,
                                                                                        "language": user.language}))
    return user


@transaction.atomic
def user_set_roles(*, user, roles: list[str], reason: str = ""):
    from .roles import ROLES

    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValidationError({"roles": f"Unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}."})
    before = sorted(user.groups.values_list("name", flat=True))
    user.groups.set(Group.objects.filter(name__in=roles))
    audit_record("accounts.user.roles_changed", target=user, changes={"roles": [before, sorted(roles)]}, reason=reason)


@transaction.atomic
def object_share(*, obj, with_user=None, with_group=None, actions=("view",), reason: str = "") -> None:
    """Share one object with a user or group (django-guardian object permissions)."""
    if (with_user is None) == (with_group is None):
        raise ValidationError("Share with exactly one user or one group.")
    bad = sorted(set(actions) - set(OWNER_ACTIONS))
    if bad:
        raise ValidationError({"actions": f"Unknown action(s) {', '.join(bad)}; use {', '.join(OWNER_ACTIONS)}."})
    grantee = with_user or with_group
    for action in actions:
        assign_perm(perm_name(type(obj), action), grantee, obj)
    audit_record("accounts.object.shared", target=obj, reason=reason,
                 metadata={"with": str(grantee), "actions": list(actions)})


@transaction.atomic
def object_unshare(*, obj, with_user=None, with_group=None, actions=OWNER_ACTIONS, reason: str = "") -> None:
    grantee = with_user or with_group
    for action in actions:
        remove_perm(perm_name(type(obj), action), grantee, obj)
    audit_record("accounts.object.unshared", target=obj, reason=reason,
                 metadata={"with": str(grantee), "actions": list(actions)})


@transaction.atomic
def totp_begin(*, user) -> TOTPDevice:
    """Start enrolment: an unconfirmed TOTP device (replacing any earlier unconfirmed one)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


@transaction.atomic
def totp_confirm(*, device: TOTPDevice, code: str) -> TOTPDevice:
    if not device.verify_token((code or "").strip()):
        raise ValidationError({"code": "That code does not match; check the time on your phone and try the newest code."})
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit_record("accounts.2fa.enabled", target=device.user)
    return device


@transaction.atomic
def totp_disable(*, user, code: str) -> None:
    devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    if not any(d.verify_token((code or "").strip()) for d in devices):
        raise ValidationError({"code": "A current code from your authenticator is needed to turn two-factor off."})
    audit_record("accounts.2fa.disabled", target=user, metadata={"snapshot": [
        {"id": d.pk, "name": d.name, "confirmed": d.confirmed} for d in TOTPDevice.objects.filter(user=user)]})
    TOTPDevice.objects.filter(user=user).delete()


def ensure_admin(*, username: str = "admin", password: str | None = None, email: str = "") -> tuple[User, bool, str | None]:
    """Make sure a superuser exists. Returns (user, created, generated password or None).

    An existing admin is left as it is unless `password` is given, in which case it is set.
    """
    from .roles import ADMIN

    user = User.objects.filter(username=username).first()
    generated, created = None, user is None
    if created:
        generated = None if password else secrets.token_urlsafe(15)
        user = User.objects.create_superuser(username=username, email=email, password=password or generated)
        audit_record("accounts.user.created", target=user, reason="ensure_admin: no admin existed")
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_record("accounts.user.password_set", target=user, reason="ensure_admin with TRADEPULSE_ADMIN_PASSWORD")
    user.groups.add(Group.objects.get(name=ADMIN))
    return user, created, generated


@transaction.atomic
def quota_set(*, key: str, value: int, reason: str, role=None, user=None) -> Quota:
    """Set a role's or a user's limit of kind `key` to `value` (creating the row if needed),
    with a reason; audited with the old and new values."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the limit changes (it is kept in the audit log)."})
    if (role is None) == (user is None):
        raise ValidationError("A limit is for exactly one role or one user.")
    key = QuotaKey(key)
    quota = Quota.objects.select_for_update().filter(key=key, role=role, user=user).order_by("pk").first()
    before = None if quota is None else quota.value
    if quota is None:
        quota = Quota(key=key, role=role, user=user)
    quota.value, quota.reason = value, reason
    quota.full_clean()
    quota.save()
    audit_record("accounts.quota.set", target=quota, reason=reason, changes={"value": [before, value]},
                 metadata={"key": key.value, "holder": quota.holder})
    return quota


@transaction.atomic
def quota_delete(*, quota: Quota, reason: str) -> None:
    """Remove a limit (a user's override: their roles' limit applies again; a role's: no limit of
    that kind for the role), with a reason; audited with a snapshot of the row."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the limit is removed (it is kept in the audit log)."})
    audit_record("accounts.quota.deleted", target=quota, reason=reason,
                 metadata={"snapshot": {"key": quota.key, "holder": quota.holder, "value": quota.value,
                                        "reason": quota.reason}})
    quota.delete()
