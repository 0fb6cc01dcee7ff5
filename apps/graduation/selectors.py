"""Named reads for graduation: when a config entered its stage, what a criterion measures, the
pipeline board, a config's lineage.

What each measure reads (criteria.py holds them against a policy):
- research evidence: the config's latest training out-of-sample evidence row, else its latest
  hold-out row, else its latest backtest row. trades, max_drawdown, oos_sharpe, dsr and pbo are
  that row's typed columns (a backtest row has no oos_sharpe/dsr/pbo: not measured).
- days_in_stage: since the last decision that moved the config into its stage (else since it
  was created).
- the stage's deployments: the config's deployments on accounts whose mode is the stage
  (paper/testnet/live) created since it entered the stage.
- live_drawdown: deepest fall of any of those deployments' equity (portfolio snapshots) below
  its running high, a fraction.
- tracking_error: for each of those deployments, trading's comparison of its trades with a
  replay of the same bars (apps.trading.services.tracking); the criterion's value is the PnL
  difference between live and replay as a fraction of the deployment's capital (missed and extra
  trades and slippage all land in it), the worst deployment's; not measured before a first bar.
- trades_in_stage: closed round trips of those deployments, from their fills (trading's
  performance selector).
"""
from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from apps.strategies.models import ConfigEvidence, EvidenceSource, Stage, StrategyConfig
from apps.strategies.selectors import latest_evidence
from apps.trading.models import Deployment, Order, PortfolioSnapshot
from apps.trading.selectors import performance
from apps.trading.services.tracking import deployment_tracking_error
from tradepulse.core.permissions import can, visible_to

from .models import TRADING_STAGES, GraduationDecision, LiveRequest, LiveRequestStatus

RESEARCH_SOURCES = (EvidenceSource.TRAINING_OOS, EvidenceSource.HOLDOUT, EvidenceSource.BACKTEST)


def stage_entered_at(config: StrategyConfig) -> datetime:
    """When the config entered its current stage: the last decision that moved it there."""
    moved = (GraduationDecision.objects.filter(config=config, to_stage=config.stage)
             .exclude(from_stage=config.stage).order_by("-created_at").values_list("created_at", flat=True).first())
    return moved or config.created_at


def research_evidence(config: StrategyConfig) -> ConfigEvidence | None:
    for source in RESEARCH_SOURCES:
        row = latest_evidence(config, source)
        if row is not None:
            return row
    return None


def stage_deployments(config: StrategyConfig, *, since: datetime | None = None) -> QuerySet[Deployment]:
    """The config's deployments trading its current stage (none outside paper/testnet/live)."""
    if config.stage not in TRADING_STAGES:
        return Deployment.objects.none()
    since = since or stage_entered_at(config)
    return (Deployment.objects.filter(config=config, account__mode=config.stage, created_at__gte=since)
            .select_related("account").order_by("created_at"))


def equity_drawdown(deployment: Deployment) -> tuple[float | None, dict]:
    """Deepest fall of the deployment's equity below its running high (fraction), from its
    portfolio snapshots in time order; None with fewer than two snapshots."""
    rows = list(PortfolioSnapshot.objects.filter(deployment=deployment).order_by("time")
                .values_list("time", "equity"))
    if len(rows) < 2:
        return None, {"snapshots": len(rows)}
    peak, worst, at = None, 0.0, None
    for time, equity in rows:
        eq = float(equity)
        if peak is None or eq > peak[1]:
            peak = (time, eq)
        if peak[1] > 0:
            dd = (peak[1] - eq) / peak[1]
            if dd > worst:
                worst, at = dd, {"peak_time": peak[0], "peak_equity": peak[1], "trough_time": time,
                                 "trough_equity": eq}
    return worst, {"snapshots": len(rows), **(at or {})}


def config_measures(config: StrategyConfig, *, now: datetime | None = None) -> dict:
    """Every measure a criterion may read, where it came from, and the evidence read.

    Returns {"values": {measure: float|int|None}, "sources": {measure: text}, "notes": {...},
    "evidence": {...json for the decision...}}.
    """
    now = now or timezone.now()
    values, sources, notes = {}, {}, {}
    entered = stage_entered_at(config)
    evidence: dict = {"stage": config.stage, "stage_entered_at": entered}

    row = research_evidence(config)
    if row is not None:
        label = f"{row.get_source_display()} evidence #{row.pk}"
        for measure, column in (("trades", "trades"), ("max_drawdown", "max_drawdown"), ("oos_sharpe", "oos_sharpe"),
                                ("dsr", "dsr"), ("pbo", "pbo")):
            values[measure] = getattr(row, column)
            sources[measure] = label
        evidence["research"] = {"id": row.pk, "source": row.source, "period_start": row.period_start,
                                "period_end": row.period_end, "fingerprint": row.fingerprint,
                                "trades": row.trades, "sharpe": row.sharpe, "max_drawdown": row.max_drawdown,
                                "oos_sharpe": row.oos_sharpe, "dsr": row.dsr, "pbo": row.pbo}
    else:
        for measure in ("trades", "max_drawdown", "oos_sharpe", "dsr", "pbo"):
            values[measure] = None
            notes[measure] = "no training or backtest evidence"

    values["days_in_stage"] = round((now - entered).total_seconds() / 86400, 4)
    sources["days_in_stage"] = f"in {config.stage} since {entered:%Y-%m-%d %H:%M} UTC"

    deployments = list(stage_deployments(config, since=entered))
    evidence["deployments"] = [{"id": d.pk, "mode": d.account.mode, "state": d.state} for d in deployments]
    for measure in ("live_drawdown", "tracking_error", "trades_in_stage"):
        values[measure] = None
    if not deployments:
        why = "no deployment in this stage" if config.stage in TRADING_STAGES else "not a trading stage"
        for measure in ("live_drawdown", "tracking_error", "trades_in_stage"):
            notes[measure] = why
        return {"values": values, "sources": sources, "notes": notes, "evidence": evidence}

    drawdowns = []
    for d in deployments:
        dd, detail = equity_drawdown(d)
        if dd is not None:
            drawdowns.append((dd, d, detail))
    if drawdowns:
        dd, d, detail = max(drawdowns, key=lambda x: x[0])
        values["live_drawdown"] = round(dd, 6)
        sources["live_drawdown"] = f"deployment #{d.pk} equity ({detail['snapshots']} snapshots)"
        evidence["live_drawdown"] = {"deployment": d.pk, **detail}
    else:
        notes["live_drawdown"] = "fewer than two equity snapshots"

    errors = []
    for d in deployments:
        report = deployment_tracking_error(d)
        if report is not None and d.capital:
            errors.append((abs(report["pnl"]["difference"]) / float(d.capital), d, report))
    if errors:
        te, d, report = max(errors, key=lambda x: x[0])
        values["tracking_error"] = round(te, 6)
        sources["tracking_error"] = (f"deployment #{d.pk} against its replay: {report['matched']} of "
                                     f"{report['replay_trades']} trades matched, {len(report['missed'])} missed, "
                                     f"{len(report['extra'])} extra")
        evidence["tracking_error"] = {
            "deployment": d.pk, "value": te, "period": report["period"], "replay_trades": report["replay_trades"],
            "live_trades": report["live_trades"], "matched": report["matched"], "missed": len(report["missed"]),
            "extra": len(report["extra"]), "entry_slippage": report["entry_slippage"],
            "exit_slippage": report["exit_slippage"], "pnl": report["pnl"]}
    else:
        notes["tracking_error"] = "no bar traded yet: nothing to replay"
    perf = performance(Deployment.objects.filter(pk__in=[d.pk for d in deployments]), by="config").get(config.pk)
    values["trades_in_stage"] = perf.trades if perf else 0
    sources["trades_in_stage"] = "closed round trips of " + ", ".join(f"deployment #{d.pk}" for d in deployments)
    return {"values": values, "sources": sources, "notes": notes, "evidence": evidence}


# --- pages and API ---------------------------------------------------------------------------
def board(user, *, owner: str = "", strategy: str = "", market: str = "") -> list[dict]:
    """The pipeline: configs the user may see on the ladder (not retired), with their key evidence
    and time in stage, filtered by owner username, strategy key, market symbol."""
    configs = visible_to(user, StrategyConfig.objects.exclude(stage=Stage.RETIRED)).select_related(
        "market__exchange", "owner")
    if owner:
        configs = configs.filter(owner__username=owner)
    if strategy:
        configs = configs.filter(strategy_key=strategy)
    if market:
        configs = configs.filter(market__symbol=market)
    configs = list(configs.order_by("name")[:500])
    ids = [c.pk for c in configs]
    scoped = StrategyConfig.objects.filter(pk__in=ids)
    may_change = set(visible_to(user, scoped, "change").values_list("pk", flat=True))
    may_operate = set(visible_to(user, scoped, "operate").values_list("pk", flat=True))
    entered = {}
    for config_id, to_stage, from_stage, created in (GraduationDecision.objects.filter(config_id__in=ids)
                                                     .order_by("created_at")
                                                     .values_list("config_id", "to_stage", "from_stage",
                                                                  "created_at")):
        if to_stage != from_stage:
            entered[(config_id, to_stage)] = created
    pending = set(LiveRequest.objects.filter(config_id__in=ids, status=LiveRequestStatus.PENDING)
                  .values_list("config_id", flat=True))
    research = {}
    for row in (ConfigEvidence.objects.filter(config_id__in=ids, source__in=RESEARCH_SOURCES)
                .order_by("config_id", "-period_end", "-created_at")):
        have = research.get(row.config_id)
        if have is None or RESEARCH_SOURCES.index(row.source) < RESEARCH_SOURCES.index(have.source):
            research[row.config_id] = row
    now = timezone.now()
    out = []
    for c in configs:
        since = entered.get((c.pk, c.stage), c.created_at)
        row = research.get(c.pk)
        out.append({"config": c, "stage_entered_at": since, "seconds_in_stage": (now - since).total_seconds(),
                    "evidence": row, "live_request_pending": c.pk in pending,
                    "may_promote": c.pk in may_change, "may_demote": c.pk in may_operate})
    return out


def card(config: StrategyConfig, user=None) -> dict:
    """One config's board card (also for a retired config, which the board leaves out)."""
    since = stage_entered_at(config)
    return {"config": config, "stage_entered_at": since, "seconds_in_stage": (timezone.now() - since).total_seconds(),
            "evidence": research_evidence(config),
            "live_request_pending": LiveRequest.objects.filter(config=config,
                                                               status=LiveRequestStatus.PENDING).exists(),
            "may_promote": bool(user) and can(user, "change", config),
            "may_demote": bool(user) and can(user, "operate", config)}


def decisions_for(config: StrategyConfig) -> QuerySet[GraduationDecision]:
    return GraduationDecision.objects.filter(config=config).select_related("actor", "policy", "deployment")


def lineage(config: StrategyConfig) -> dict:
    """Data fingerprint → training run and trial → backtests → decisions → deployments → trades
    and tracking error.

    Evidence rows carry the candles' fingerprint and the run (and trial) that measured them; each
    deployment comes with its orders, closed trades, equity drawdown and tracking error against a
    replay of the bars it traded (None before its first bar)."""
    evidence = list(ConfigEvidence.objects.filter(config=config).select_related("run_type")
                    .order_by("period_end", "created_at"))
    deployments = list(Deployment.objects.filter(config=config).select_related("account").order_by("created_at"))
    perf = performance(Deployment.objects.filter(config=config), by="deployment")
    rows = []
    for d in deployments:
        report = deployment_tracking_error(d)
        drawdown, _ = equity_drawdown(d)
        rows.append({"deployment": d, "orders": Order.objects.filter(deployment=d).count(),
                     "trades": perf[d.pk].trades if d.pk in perf else 0,
                     "closed_pnl": perf[d.pk].closed_pnl if d.pk in perf else None, "drawdown": drawdown,
                     "tracking": report,
                     "tracking_error": (abs(report["pnl"]["difference"]) / float(d.capital)
                                        if report is not None and d.capital else None)})
    return {"config": config, "evidence": evidence,
            "fingerprints": sorted({e.fingerprint for e in evidence if e.fingerprint}),
            "decisions": list(decisions_for(config)), "deployments": rows}
