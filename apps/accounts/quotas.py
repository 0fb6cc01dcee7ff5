"""Quotas on expensive work: per-role and per-user limits, checked by the create services.

`download_start`, `backtest_create` and `training_create` (which the API, the dashboard and
the commands all call) ask `quota_check` / `quota_check_concurrent` before they store anything,
so every door refuses the same way. A refusal is a ValidationError that names the limit, its
value and where it comes from (a role, or the user's own limit), e.g.

    n_trials: Trials per study of a training run is limited to 2,000 (role Trader); you asked for 100,000.

Which limit applies (`limit_for`): the user's own row if there is one (it beats the roles',
higher or lower); else the most generous of the user's roles' rows; else none (no limit of
this kind: a user with no role cannot start work anyway). The defaults per role come from the
data migration `accounts.0004_quota_defaults`; operators change them in the admin, with a
reason (`apps.accounts.services.quota_set`, audited).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from tradepulse.core.jobs import ACTIVE_STATES

from .models import Quota, QuotaKey

# Job models whose queued or running rows count against a concurrency limit.
CONCURRENT_MODELS = {
    QuotaKey.DOWNLOADS_CONCURRENT: "marketdata.DownloadJob",
    QuotaKey.BACKTESTS_CONCURRENT: "backtests.BacktestRun",
    QuotaKey.TRAINING_CONCURRENT: "training.TrainingRun",
}
# The request field each per-request limit bounds (the API names it in its 400).
FIELDS = {
    QuotaKey.DOWNLOAD_CANDLES: "end",
    QuotaKey.TRAINING_TRIALS: "n_trials",
    QuotaKey.TRAINING_WORKERS: "n_workers",
    QuotaKey.TRAINING_FOLDS: "folds",
}


@dataclass(frozen=True)
class Limit:
    """The limit of one kind that applies to a user: `value` None means no limit; `source` says
    where it comes from ("role Trader", "your own limit")."""

    key: str
    value: int | None
    source: str

    @property
    def label(self) -> str:
        return QuotaKey(self.key).label


def limit_for(user, key: str) -> Limit:
    """The limit of kind `key` for `user` (module docstring for the rule)."""
    key = QuotaKey(key)
    own = Quota.objects.filter(key=key, user_id=user.pk).first()
    if own is not None:
        return Limit(key, own.value, "your own limit")
    best = (Quota.objects.filter(key=key, role__in=user.groups.all()).select_related("role")
            .order_by("-value", "role__name").first())
    if best is not None:
        return Limit(key, best.value, f"role {best.role.name}")
    return Limit(key, None, "no limit set for your roles")


def usage(user, key: str) -> int | None:
    """How much of a concurrency limit `user` is using now (jobs queued or running); None for
    per-request limits."""
    label = CONCURRENT_MODELS.get(key)
    if label is None:
        return None
    return apps.get_model(label).objects.filter(owner_id=user.pk, state__in=ACTIVE_STATES).count()


def limits_for(user) -> list[dict]:
    """Every limit for `user`, with current usage: what the quotas page and the API show."""
    rows = []
    for key in QuotaKey:
        limit = limit_for(user, key)
        rows.append({"key": key.value, "label": key.label, "value": limit.value, "source": limit.source,
                     "used": usage(user, key), "concurrent": key in CONCURRENT_MODELS})
    return rows


def _refusal(limit: Limit, asked: str) -> str:
    return f"{limit.label} is limited to {limit.value:,} ({limit.source}); {asked}."


def quota_check(*, user, key: str, requested: int) -> None:
    """Refuse a request asking for more than `user`'s limit of kind `key` (a ValidationError on
    the request field the limit bounds, naming the limit, its value and its source)."""
    limit = limit_for(user, key)
    if limit.value is not None and requested > limit.value:
        raise ValidationError({FIELDS[key]: _refusal(limit, f"you asked for {requested:,}")})


def concurrent_room(user, key: str) -> int | None:
    """How many more jobs of a kind `user` may start now (None: no limit)."""
    limit = limit_for(user, key)
    return None if limit.value is None else max(limit.value - usage(user, key), 0)


def quota_check_concurrent(*, user, key: str, adding: int = 1) -> None:
    """Refuse starting `adding` more jobs of a kind when `user` would then have more queued or
    running than their limit. Call inside the create service's transaction: the user's row is
    locked, so two requests at once cannot both take the last place."""
    limit = limit_for(user, key)
    if limit.value is None:
        return
    get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
    used = usage(user, key)
    if used + adding > limit.value:
        raise ValidationError(_refusal(limit, f"you have {used:,} queued or running"
                                              + (f" and asked for {adding:,} more" if adding > 1 else "")
                                              + "; wait for one to finish or cancel one"))
