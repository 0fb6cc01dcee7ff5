"""Strategy configuration state changes. Stage changes belong to apps.graduation."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from tradepulse.core.permissions import grant_owner
from apps.audit.services import audit_delete, audit_record, diff

from quant.strategies import UnknownStrategy
from quant.strategies.provenance import code_version as current_code_version

from .execution import EXECUTION_FIELDS
from .models import ConfigEvidence, Source, Stage, StrategyConfig


@transaction.atomic
def config_create(
    *,
    owner,
    strategy_key: str,
    market,
    timeframe: str,
    parameters: dict | None = None,
    name: str = "",
    notes: str = "",
    source: str = Source.MANUAL,
    provenance: dict | None = None,
    metrics: dict | None = None,
    stage: str = Stage.DISCOVERY,
    reason: str = "",
    execution: dict | None = None,
    code_version: str | None = None,
    evidence: list[dict] | None = None,
) -> StrategyConfig:
    """Create a configuration; parameters are validated (and defaults filled) by the strategy.

    `execution`: the execution settings (keys of EXECUTION_FIELDS; missing ones take the
    defaults, unknown ones are refused). A config made from a run must pass the run's full
    settings, so it trades the way its results were measured. `code_version`: that of the run
    the config comes from ("" when the run predates code versions); None = the current code.
    `evidence`: results it comes with, each the keyword arguments of `config_evidence_record`.
    """
    execution = dict(execution or {})
    unknown = sorted(set(execution) - set(EXECUTION_FIELDS))
    if unknown:
        raise ValidationError({f: "Not an execution setting." for f in unknown})
    if code_version is None:
        try:
            code_version = current_code_version(strategy_key)
        except UnknownStrategy:
            code_version = ""  # full_clean names the unknown strategy
    config = StrategyConfig(
        owner=owner, strategy_key=strategy_key, market=market, timeframe=timeframe,
        parameters=parameters or {}, notes=notes, source=source, provenance=provenance or {},
        metrics=metrics or {}, stage=stage, code_version=code_version, **execution,
    )
    config.name = name or f"{strategy_key} {market.symbol} {timeframe}"
    config.full_clean()
    config.save()
    grant_owner(config)
    audit_record("strategies.config.created", target=config, reason=reason,
                 metadata={"strategy": strategy_key, "parameters": config.parameters, "source": source,
                           "provenance": config.provenance, "stage": stage,
                           "execution": config.execution_settings(), "code_version": config.code_version})
    for row in evidence or []:
        config_evidence_record(config=config, **row)
    return config


EVIDENCE_FIGURES = ("trades", "sharpe", "max_drawdown", "total_return", "oos_sharpe", "dsr", "pbo")


@transaction.atomic
def config_evidence_record(*, config: StrategyConfig, source: str, period_start, period_end, fingerprint: str = "",
                           code_version: str = "", metrics: dict | None = None, run=None, trial: int | None = None,
                           reason: str = "", **figures) -> ConfigEvidence:
    """Store one typed evidence row for `config` (see ConfigEvidence for units) and audit it.

    `figures`: trades, sharpe, max_drawdown, total_return (over the period), and for training
    oos_sharpe, dsr and pbo; a missing figure is stored as empty (undefined), never as 0.
    `run`: the run or deployment that measured it (linked generically).
    """
    unknown = sorted(set(figures) - set(EVIDENCE_FIGURES))
    if unknown:
        raise ValidationError({f: "Not an evidence figure." for f in unknown})
    row = ConfigEvidence(config=config, source=source, period_start=period_start, period_end=period_end,
                         fingerprint=fingerprint, code_version=code_version, metrics=metrics or {}, run=run,
                         trial=trial, **{**figures, "trades": figures.get("trades") or 0})
    row.full_clean()
    row.save()
    audit_record("strategies.config.evidence_recorded", target=config, reason=reason,
                 metadata={"evidence": row.pk, "source": source, "period_start": period_start,
                           "period_end": period_end, "fingerprint": fingerprint, "code_version": code_version,
                           **{f: getattr(row, f) for f in EVIDENCE_FIGURES},
                           "run": None if run is None else f"{run._meta.label_lower}:{run.pk}", "trial": trial})
    return row


EDITABLE = ("name", "parameters", "notes")


@transaction.atomic
def config_update(*, config: StrategyConfig, reason: str = "", **changes) -> StrategyConfig:
    """Change name, parameters or notes. Parameters are re-validated; the change is audited."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError({f: "This field cannot be changed here." for f in unknown})
    config = StrategyConfig.objects.select_for_update().get(pk=config.pk)
    before = {f: getattr(config, f) for f in EDITABLE}
    for field, value in changes.items():
        setattr(config, field, value)
    config.full_clean()
    config.save()
    audit_record("strategies.config.updated", target=config, reason=reason,
                 changes=diff(before, {f: getattr(config, f) for f in EDITABLE}))
    return config


@transaction.atomic
def config_delete(*, config: StrategyConfig, reason: str = "") -> None:
    """Delete a configuration and its evidence rows; audited with a snapshot of both. Backtests
    run from it keep their results (their link is cleared). Refused, naming them, while
    something that trades it (a deployment) still refers to it."""
    config = StrategyConfig.objects.select_for_update().get(pk=config.pk)
    evidence = [{"source": e.source, "period_start": e.period_start, "period_end": e.period_end, "trades": e.trades,
                 "sharpe": e.sharpe, "total_return": e.total_return, "fingerprint": e.fingerprint,
                 "run": None if e.run_type_id is None else f"{e.run_type.app_label}.{e.run_type.model}:{e.run_id}"}
                for e in config.evidence.select_related("run_type")]
    audit_delete(config, "strategies.config.deleted", reason=reason, metadata={"evidence": evidence})
    try:
        with transaction.atomic():
            config.delete()
    except ProtectedError as exc:
        users = ", ".join(sorted({f"{type(o)._meta.verbose_name} {o}" for o in exc.protected_objects})[:5])
        raise ValidationError(f"{config.name!r} is still used by {users}; stop and delete those first.") from None
