"""A user's configuration as one versioned JSON document: strategy configs, their own risk
limits (the user scope) and alert channels. Exported, then imported elsewhere (or back) with a
preview of what would change; nothing is written until the import is applied.

Document (version 1):
    {"format": "tradepulse.config", "version": 1, "exported_at": "...", "user": "alice",
     "strategy_configs": [{"name", "strategy_key", "exchange", "symbol", "timeframe", "parameters",
                           "execution": {...}, "notes"}],
     "risk_profile": {"risk_per_trade_pct": "1.0", ...},
     "alert_channels": [{"name", "kind", "enabled", "min_severity", "email", "chat_id",
                         "quiet_start", "quiet_end"}]}

Rules on import, by name: a config that does not exist is created (stage discovery, provenance
"imported"); one that exists with the same settings is unchanged; one that exists with different
settings is skipped (a config's settings are evidence: never rewritten by an import; rename it in
the file to import it as a new one). Risk limits present in the document are set at the user
scope (a limit absent from the document is left alone). Channels: secrets (webhook URLs, bot
tokens) are never exported; a channel that exists keeps its secret and gets the document's other
settings; a new channel that needs a secret is created only if the document carries it (`url` or
`bot_token`), else skipped with a note to add it on the channels page.
"""
from __future__ import annotations

from datetime import time as dtime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

import json

from apps.alerts.models import Channel, ChannelKind
from apps.alerts.services import CHANNEL_FIELDS, channel_create, channel_update, channel_validate
from apps.audit.services import audit_record
from apps.marketdata.models import Market
from apps.risk.models import RiskProfile, Scope, target_key
from apps.risk.services import PROFILE_FIELDS, profile_update
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.models import StrategyConfig
from apps.strategies.services import config_create

FORMAT, VERSION = "tradepulse.config", 1
CHANNEL_EXPORT = ("name", "kind", "enabled", "min_severity", "email", "chat_id", "quiet_start", "quiet_end")


def _jsonable(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def config_export(*, user) -> dict:
    """The user's configuration document (no secrets in it)."""
    configs = [{"name": c.name, "strategy_key": c.strategy_key, "exchange": c.market.exchange.code or c.market.exchange.name,
                "symbol": c.market.symbol, "timeframe": c.timeframe, "parameters": c.parameters,
                "execution": c.execution_settings(), "notes": c.notes}
               for c in StrategyConfig.objects.filter(owner=user).select_related("market__exchange").order_by("name")]
    profile = RiskProfile.objects.filter(target_key=target_key(Scope.USER, user.pk)).first()
    limits = {f: getattr(profile, f) for f in PROFILE_FIELDS if profile is not None and getattr(profile, f) is not None}
    channels = [{f: getattr(c, f) for f in CHANNEL_EXPORT} for c in Channel.objects.filter(owner=user).order_by("name")]
    audit_record("ops.config.exported", reason="configuration export", actor=user,
                 metadata={"configs": len(configs), "channels": len(channels), "limits": len(limits)})
    return _jsonable({"format": FORMAT, "version": VERSION, "exported_at": timezone.now(), "user": user.get_username(),
                      "strategy_configs": configs, "risk_profile": limits, "alert_channels": channels})


def _check_document(document) -> None:
    if not isinstance(document, dict):
        raise ValidationError("The document must be a JSON object.")
    if document.get("format") != FORMAT:
        raise ValidationError(f'Not a TradePulse configuration: "format" must be "{FORMAT}".')
    if document.get("version") != VERSION:
        raise ValidationError(f"Unsupported version {document.get('version')!r}: this TradePulse reads version {VERSION}.")
    unknown = sorted(set(document) - {"format", "version", "exported_at", "user", "strategy_configs", "risk_profile",
                                      "alert_channels"})
    if unknown:
        raise ValidationError(f"Unknown section(s): {', '.join(unknown)}.")
    for section, kind in (("strategy_configs", list), ("risk_profile", dict), ("alert_channels", list)):
        if not isinstance(document.get(section, kind()), kind):
            raise ValidationError(f"{section} must be a JSON {'list' if kind is list else 'object'}.")


def _market(entry: dict) -> Market | None:
    exchange, symbol = str(entry.get("exchange", "")), str(entry.get("symbol", ""))
    markets = Market.objects.filter(symbol=symbol).select_related("exchange")
    return (markets.filter(exchange__code__iexact=exchange).first()
            or markets.filter(exchange__name__iexact=exchange).first())


def _plan_configs(user, entries: list) -> list[dict]:
    plan = []
    existing = {c.name: c for c in StrategyConfig.objects.filter(owner=user).select_related("market__exchange")}
    for i, entry in enumerate(entries):
        where = f"strategy_configs[{i}]"
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("strategy_key"):
            plan.append({"section": "strategy_configs", "name": str(entry)[:60], "action": "error",
                         "note": f"{where}: needs at least a name and a strategy_key."})
            continue
        name = str(entry["name"])[:120]
        unknown = sorted(set(entry.get("execution") or {}) - set(EXECUTION_FIELDS))
        if unknown:
            plan.append({"section": "strategy_configs", "name": name, "action": "error",
                         "note": f"{where}.execution: unknown setting(s) {', '.join(unknown)}."})
            continue
        market = _market(entry)
        if market is None:
            plan.append({"section": "strategy_configs", "name": name, "action": "error",
                         "note": f"{where}: market {entry.get('symbol')} on {entry.get('exchange')} is not known here: "
                                 "load its markets or import its candles first."})
            continue
        current = existing.get(name)
        if current is None:
            probe = StrategyConfig(owner=user, name=name, strategy_key=entry["strategy_key"], market=market,
                                   timeframe=entry.get("timeframe", ""), parameters=entry.get("parameters") or {},
                                   **(entry.get("execution") or {}))
            try:
                probe.full_clean(exclude=["owner", "code_version"])
            except (ValidationError, TypeError, ValueError) as exc:
                text = "; ".join(getattr(exc, "messages", [str(exc)]))
                plan.append({"section": "strategy_configs", "name": name, "action": "error", "note": f"{where}: {text}"})
                continue
            plan.append({"section": "strategy_configs", "name": name, "action": "create", "entry": entry,
                         "market": market})
            continue
        mine = {"strategy_key": current.strategy_key, "market": current.market_id, "timeframe": current.timeframe,
                "parameters": current.parameters}
        theirs = {"strategy_key": entry["strategy_key"], "market": market.pk, "timeframe": entry.get("timeframe"),
                  "parameters": entry.get("parameters") or {}}
        differs = sorted(k for k in mine if _jsonable(mine[k]) != _jsonable(theirs[k]))
        exec_now = _jsonable(current.execution_settings())
        differs += sorted(k for k, v in (entry.get("execution") or {}).items() if exec_now.get(k) != _jsonable(v))
        plan.append({"section": "strategy_configs", "name": name, "action": "skip" if differs else "unchanged",
                     "note": (f"exists with different {', '.join(differs)}: a config's settings are not rewritten by "
                              "an import (rename it in the file to import it as a new config)") if differs else ""})
    return plan


def _plan_risk(user, limits: dict) -> list[dict]:
    if not limits:
        return []
    unknown = sorted(set(limits) - set(PROFILE_FIELDS))
    if unknown:
        return [{"section": "risk_profile", "name": "your limits", "action": "error",
                 "note": f"risk_profile: unknown limit(s) {', '.join(unknown)}."}]
    profile = RiskProfile.objects.filter(target_key=target_key(Scope.USER, user.pk)).first()
    changes = {}
    for field, value in limits.items():
        try:
            new = RiskProfile._meta.get_field(field).to_python(value)
        except ValidationError as exc:
            return [{"section": "risk_profile", "name": "your limits", "action": "error",
                     "note": f"risk_profile.{field}: {'; '.join(exc.messages)}"}]
        old = getattr(profile, field) if profile is not None else None
        if old != new:
            changes[field] = [_jsonable(old), _jsonable(new)]
    return [{"section": "risk_profile", "name": "your limits", "action": "update" if changes else "unchanged",
             "changes": changes, "limits": {f: limits[f] for f in changes}}]


def _plan_channels(user, entries: list) -> list[dict]:
    plan = []
    existing = {c.name: c for c in Channel.objects.filter(owner=user)}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name") or entry.get("kind") not in ChannelKind.values:
            plan.append({"section": "alert_channels", "name": str(entry)[:60], "action": "error",
                         "note": f"alert_channels[{i}]: needs a name and a kind ({', '.join(ChannelKind.values)})."})
            continue
        fields = {k: v for k, v in entry.items() if k in CHANNEL_FIELDS}
        for key in ("quiet_start", "quiet_end"):
            if isinstance(fields.get(key), str):
                try:
                    fields[key] = dtime.fromisoformat(fields[key])
                except ValueError:
                    fields[key] = "invalid"
        current = existing.get(entry["name"])
        secret = any(fields.get(s) for s in Channel.SECRET_FIELDS)
        probe = Channel(owner=user, **{k: v for k, v in fields.items() if v != "invalid"})
        if current is not None:
            probe.pk, probe._state.adding = current.pk, False  # validated as the stored row it would change
            for name in Channel.SECRET_FIELDS:
                if not fields.get(name):
                    setattr(probe, name, getattr(current, name))
        problem = "quiet hours must be HH:MM" if "invalid" in (fields.get("quiet_start"), fields.get("quiet_end")) else ""
        if not problem and (current is not None or entry["kind"] == ChannelKind.EMAIL or secret):
            try:
                channel_validate(probe)
            except ValidationError as exc:
                problem = "; ".join(exc.messages)
        if problem:
            plan.append({"section": "alert_channels", "name": entry["name"], "action": "error",
                         "note": f"alert_channels[{i}]: {problem}"})
            continue
        if current is None:
            needs_secret = entry["kind"] != ChannelKind.EMAIL
            if needs_secret and not secret:
                plan.append({"section": "alert_channels", "name": entry["name"], "action": "skip",
                             "note": "needs its URL or bot token (secrets are never exported): add it on the channels "
                                     "page."})
                continue
            plan.append({"section": "alert_channels", "name": entry["name"], "action": "create", "fields": fields})
            continue
        changes = {k: [_jsonable(getattr(current, k)), _jsonable(v)] for k, v in fields.items()
                   if k not in Channel.SECRET_FIELDS and getattr(current, k) != v}
        if secret:
            changes["secret"] = ["(kept)", "(replaced)"]
        plan.append({"section": "alert_channels", "name": entry["name"], "action": "update" if changes else "unchanged",
                     "changes": changes, "fields": fields, "channel": current})
    return plan


def config_import(*, user, document, apply: bool = False, reason: str = "") -> dict:
    """Plan (and with `apply`, carry out in one transaction) the import of `document` for `user`.

    Returns {"applied": bool, "plan": [{"section", "name", "action": create|update|unchanged|skip|error,
    "note"?, "changes"?}], "counts": {action: n}}. Applying a plan with errors is refused
    (ValidationError listing them); nothing is written then."""
    _check_document(document)
    plan = (_plan_configs(user, document.get("strategy_configs") or [])
            + _plan_risk(user, document.get("risk_profile") or {})
            + _plan_channels(user, document.get("alert_channels") or []))
    errors = [p["note"] for p in plan if p["action"] == "error"]
    if apply:
        if errors:
            raise ValidationError(errors)
        reason = reason.strip() or "configuration import"
        with transaction.atomic():
            for step in plan:
                _apply(user, step, reason)
            audit_record("ops.config.imported", reason=reason, actor=user,
                         metadata={"counts": _counts(plan), "from_user": document.get("user")})
    public = [{k: v for k, v in step.items() if k in ("section", "name", "action", "note", "changes")} for step in plan]
    return {"applied": apply, "plan": public, "counts": _counts(plan)}


def _counts(plan) -> dict:
    counts: dict[str, int] = {}
    for step in plan:
        counts[step["action"]] = counts.get(step["action"], 0) + 1
    return counts


def _apply(user, step: dict, reason: str) -> None:
    if step["action"] not in ("create", "update"):
        return
    if step["section"] == "strategy_configs":
        entry = step["entry"]
        config_create(owner=user, strategy_key=entry["strategy_key"], market=step["market"],
                      timeframe=entry.get("timeframe", ""), parameters=entry.get("parameters") or {},
                      name=step["name"], notes=entry.get("notes", ""), provenance={"imported": True},
                      execution={k: (Decimal(str(v)) if isinstance(v, float) else v)
                                 for k, v in (entry.get("execution") or {}).items()}, reason=reason)
    elif step["section"] == "risk_profile":
        profile_update(scope=Scope.USER, target=user, changes=step["limits"], reason=reason, actor=user)
    elif step["action"] == "create":
        channel_create(owner=user, reason=reason, **step["fields"])
    else:
        channel_update(channel=step["channel"], reason=reason, **step["fields"])
