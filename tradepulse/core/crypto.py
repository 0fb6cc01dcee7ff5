"""Secrets at rest: Fernet encryption with keys from the environment, and a model field using it.

Keys come from `settings.ENCRYPTION_KEYS` (env `TRADEPULSE_ENCRYPTION_KEYS`, comma-separated,
newest first). The newest key encrypts; every key decrypts (cryptography's MultiFernet), so a
new key can be put in front of the old ones and `manage.py rotate_encryption_key` re-encrypts
every stored value with it, after which the old key can be dropped. In development (no keys
set, DEBUG on) one stable key is derived from SECRET_KEY, so an embedded install keeps working
across restarts; production refuses to start without keys (tradepulse/settings.py).

`EncryptedTextField` stores the Fernet token and hands Python code the plain text. Every
decrypted value is remembered by the log redaction filter, so it is masked in any log line,
however it got there (a ccxt error echoing a request, an f-string).
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Cast

from tradepulse.core.logging import remember_secret

_DERIVATION_LABEL = b"tradepulse:encryption-key:v1:"


class DecryptionError(ValueError):
    """A stored value none of the configured keys can open (the key it was made with is gone)."""


class Ciphertext(str):
    """A value that is already a Fernet token: saved as it is, never encrypted twice."""


def derived_key(secret_key: str) -> bytes:
    """The development key: sha256 of a label + SECRET_KEY, as a Fernet key."""
    return base64.urlsafe_b64encode(hashlib.sha256(_DERIVATION_LABEL + secret_key.encode()).digest())


def configured_keys() -> tuple[bytes, ...]:
    """The keys in use, newest first (derived from SECRET_KEY when none are configured)."""
    keys = tuple(k.encode() for k in getattr(settings, "ENCRYPTION_KEYS", None) or ())
    return keys or (derived_key(settings.SECRET_KEY),)


def keys_are_derived() -> bool:
    return not getattr(settings, "ENCRYPTION_KEYS", None)


@lru_cache(maxsize=4)
def _fernets(keys: tuple[bytes, ...]) -> tuple[MultiFernet, Fernet]:
    fernets = [Fernet(k) for k in keys]
    return MultiFernet(fernets), fernets[0]


def encrypt(plain: str) -> str:
    """A Fernet token (str) for `plain`, made with the newest key."""
    return _fernets(configured_keys())[0].encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """The plain text of a token made with any configured key; DecryptionError otherwise."""
    try:
        plain = _fernets(configured_keys())[0].decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise DecryptionError("A stored secret cannot be decrypted with the configured TRADEPULSE_ENCRYPTION_KEYS "
                              "(the key it was encrypted with is missing).") from None
    remember_secret(plain)
    return plain


def made_with_newest_key(token: str) -> bool:
    try:
        _fernets(configured_keys())[1].decrypt(token.encode())
        return True
    except InvalidToken:
        return False


def rotate(token: str) -> str:
    """The same secret encrypted with the newest key (DecryptionError if no key opens it)."""
    try:
        return _fernets(configured_keys())[0].rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("A stored secret cannot be decrypted with the configured TRADEPULSE_ENCRYPTION_KEYS "
                              "(the key it was encrypted with is missing).") from None


def mask(plain: str | None, *, show: int = 4) -> str:
    """'…WXYZ' (the last `show` characters) for telling keys apart; '' when there is none."""
    if not plain:
        return ""
    return "…" + plain[-show:] if len(plain) > 2 * show else "…"


class EncryptedTextField(models.TextField):
    """Text encrypted at rest with the newest key; reads give the plain text ('' stays '').

    Never filter on it (tokens are randomised). Use it for API keys, secrets, webhook URLs.
    """

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, "") or isinstance(value, Ciphertext):
            return value
        return encrypt(value)


def encrypted_fields() -> Iterator[tuple[type[models.Model], EncryptedTextField]]:
    """Every (model, field) that stores an encrypted value, across all installed apps."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


def rotate_all(*, dry_run: bool = False) -> dict:
    """Re-encrypt every stored encrypted value with the newest key.

    Returns {"fields": {"app.Model.field": {"values", "rotated", "already_newest"}}, "values",
    "rotated", "key_derived"}. Each model is rewritten in its own transaction; the raw tokens are
    read without decrypting (a Cast to a plain text field) so nothing is encrypted twice.
    Raises DecryptionError (naming the field) when a value cannot be opened with any key.
    """
    summary: dict = {"fields": {}, "values": 0, "rotated": 0, "key_derived": keys_are_derived(),
                     "keys": len(configured_keys()), "dry_run": dry_run}
    for model, field in encrypted_fields():
        label = f"{model._meta.label}.{field.name}"
        counts = {"values": 0, "rotated": 0, "already_newest": 0}
        with transaction.atomic():
            rows = (model._default_manager.select_for_update()
                    .exclude(**{f"{field.name}__isnull": True}).exclude(**{field.name: ""})
                    .annotate(_raw=Cast(field.name, models.TextField())).values_list("pk", "_raw"))
            for pk, raw in rows:
                counts["values"] += 1
                if made_with_newest_key(raw):
                    counts["already_newest"] += 1
                    continue
                try:
                    fresh = rotate(raw)
                except DecryptionError as exc:
                    raise DecryptionError(f"{label} (id {pk}): {exc}") from None
                if not dry_run:
                    model._default_manager.filter(pk=pk).update(**{field.name: Ciphertext(fresh)})
                counts["rotated"] += 1
        summary["fields"][label] = counts
        summary["values"] += counts["values"]
        summary["rotated"] += counts["rotated"]
    return summary
