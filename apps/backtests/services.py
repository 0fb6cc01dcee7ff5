"""Backtests: create a run, execute it (load → signals → engine → metrics → store), cancel,
save as a config. The command, the API, the admin and the task all call these functions.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from tradepulse.core.permissions import grant_owner
from apps.accounts import quotas
from apps.accounts.models import QuotaKey
from apps.audit.services import audit_record
from apps.marketdata.selectors import (candle_count, candles_as_arrays, coverage_for_market, latest_candles,
                                       missing_intervals)
from apps.marketdata.timeframes import ceil_time
from quant.strategies import Bars, ParameterError, UnknownStrategy, get_strategy
from quant.timeframes import check_grid_timeframe, count_bars
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.models import EvidenceSource, Source
from quant.strategies.provenance import bars_fingerprint, code_version
from quant.strategies.warmup import tradable_signals, warmup_bars
from tradepulse.core import events, jobrunner
from tradepulse.core.jobs import JobState

from quant import metrics as metrics_mod
from quant.engine import EngineConfig, run as engine_run, trades_as_records
from .models import BacktestRun, BacktestTrade, EquityCurve
from .serializers import BacktestRunSerializer

log = logging.getLogger(__name__)

ENGINE_FIELDS = EXECUTION_FIELDS  # the one list, from apps/strategies/execution.py


# --- Specification and pure computation ---------------------------------------------------------
@dataclass
class BacktestSpec:
    """Everything that determines a backtest's result, validated."""

    strategy_key: str
    parameters: dict
    timeframe: str
    start_ms: int | None
    end_ms: int | None
    engine: EngineConfig
    allow_gaps: bool = False

    @classmethod
    def build(cls, *, strategy_key: str, parameters: dict | None, timeframe: str, start_ms=None, end_ms=None,
              allow_gaps: bool = False, market=None, **engine_kwargs) -> BacktestSpec:
        """Validate every input; raises django ValidationError naming the field and problem.

        With `market`, settings left out take the market's defaults (`market_engine_defaults`),
        so the same request gives the same trades through every door.
        """
        if market is not None:
            engine_kwargs = market_engine_defaults(market, engine_kwargs)
        errors = {}
        try:
            strategy = get_strategy(strategy_key)
            parameters = strategy.validate_params(parameters or {})
        except UnknownStrategy as exc:
            errors["strategy_key"] = str(exc)
        except ParameterError as exc:
            errors["parameters"] = str(exc)
        try:
            check_grid_timeframe(timeframe)
        except (KeyError, ValueError) as exc:
            errors["timeframe"] = str(exc).strip("'\"")
        if start_ms is not None and end_ms is not None and start_ms >= end_ms:
            errors["end"] = "The end must be after the start."
        engine_kwargs = {k: v for k, v in engine_kwargs.items() if v is not None or k in
                         ("stop_loss", "take_profit", "trailing_stop")}
        engine = None
        try:
            engine = EngineConfig(**engine_kwargs)
        except (TypeError, ValueError) as exc:
            name = str(exc).split(":", 1)[0]
            errors[name if name in ENGINE_FIELDS else "engine"] = str(exc)
        if (engine is not None and engine.sizing == "risk" and engine.stop_loss is None and engine.trailing_stop is None
                and "strategy_key" not in errors and not strategy.provides_stops):
            errors["stop_loss"] = (f"Risk sizing needs a stop: set a stop-loss or trailing stop ({strategy_key} "
                                   "does not set stop prices of its own).")
        if errors:
            raise ValidationError(errors)
        return cls(strategy_key, parameters, timeframe, start_ms, end_ms, engine, allow_gaps)

    @property
    def warmup(self) -> int:
        """Bars of history the strategy reads before the first traded bar (the one warm-up rule,
        quant.strategies.warmup)."""
        return warmup_bars(self.strategy_key, self.parameters, self.timeframe)


def market_engine_defaults(market, engine: dict) -> dict:
    """The one place engine settings a request left out (absent or None) are filled from the
    market: order sizes are rounded to the market's amount step (0 = no rounding when the market
    has none). A value given explicitly, 0 included, is kept."""
    engine = dict(engine)
    if engine.get("amount_step") is None:
        engine["amount_step"] = float(market.amount_step or 0)
    return engine


@dataclass
class Outcome:
    """A computed backtest: what the command prints and what a stored run holds."""

    metrics: dict
    trades: list[dict]
    open_position: dict | None
    final_equity: float
    equity: np.ndarray
    time: np.ndarray
    fingerprint: str
    candle_count: int
    skipped_entries: int
    gaps: list[dict]
    timings: dict = field(default_factory=dict)
    code_version: str = ""
    warmup_bars: int = 0
    warmup_missing: int = 0


def fingerprint(bars: Bars) -> str:
    """SHA-256 of the candles (times and OHLCV) a run read, to reproduce it exactly."""
    return bars_fingerprint(bars)


def range_gaps(market, spec: BacktestSpec) -> list[dict]:
    """Bars missing inside the spec's range, from the candle store's coverage: [{start, end, bars}] (epoch ms).

    Holes count whatever their cause (the exchange had no data, retention removed them): a
    backtest that trades through missing bars would report fills that never could happen.
    """
    coverage = coverage_for_market(market, spec.timeframe)
    start = ceil_time(spec.start_ms if spec.start_ms is not None else (coverage.first_ms or 0), spec.timeframe)
    end = spec.end_ms if spec.end_ms is not None else (coverage.end_ms or start)
    if end <= start:
        return []
    holes = missing_intervals(market, spec.timeframe, start, end, skip_no_data=False)
    return [{"start": a, "end": b, "bars": count_bars(a, b, spec.timeframe)} for a, b in holes]


def describe_gaps(gaps: list[dict], limit: int = 5) -> str:
    shown = ", ".join(f"{_iso(g['start'])} → {_iso(g['end'])} ({g['bars']} bars)" for g in gaps[:limit])
    more = f" and {len(gaps) - limit} more" if len(gaps) > limit else ""
    return f"{len(gaps)} gap(s) in the data: {shown}{more}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def load_bars(market, spec: BacktestSpec, *, warmup: int = 0) -> Bars:
    """The stored candles of the spec's range, preceded by up to ``warmup`` stored candles before
    its start (fewer when the store has fewer: ``backtest_compute`` then says so)."""
    start_ms = spec.start_ms
    if warmup > 0 and start_ms is not None:
        before = latest_candles(market, spec.timeframe, warmup, end_ms=start_ms)
        if len(before.time):
            start_ms = int(before.time[0])
    arrays = candles_as_arrays(market, spec.timeframe, start_ms=start_ms, end_ms=spec.end_ms)
    return Bars(arrays.time, arrays.open, arrays.high, arrays.low, arrays.close, arrays.volume, spec.timeframe)


def first_traded_index(bars: Bars, spec: BacktestSpec) -> int:
    """Index of the range's first bar in bars loaded with their warm-up (0 without a start)."""
    return int(np.searchsorted(bars.time, spec.start_ms)) if spec.start_ms is not None else 0


def check_data(spec: BacktestSpec, candle_total: int, gaps: list[dict]) -> None:
    """Refuse an empty range, and a range with gaps unless the spec allows them (naming the gaps)."""
    if candle_total == 0:
        raise ValidationError({"range": "No candles stored for this market, timeframe and range; download them first."})
    if gaps and not spec.allow_gaps:
        raise ValidationError({"range": describe_gaps(gaps) + ". Fill the gaps, pick another range, or allow gaps."})


def backtest_compute(spec: BacktestSpec, bars: Bars, *, gaps: list[dict], on_step=None) -> Outcome:
    """Signals → engine → metrics on already-loaded bars. Pure: writes nothing.

    `bars` may start before `spec.start_ms` (`load_bars(..., warmup=spec.warmup)`): those bars are
    the warm-up. Signals are computed on every bar, but only bars with `spec.warmup` bars of
    history before them may trade (quant.strategies.warmup), and the engine simulates the range
    alone (equity, trades and metrics start at the first bar of the range). When the store holds
    fewer warm-up bars before the start (data begins there), the first bars of the range complete
    the warm-up and do not trade: `warmup_missing` on the outcome counts them and the run carries
    a `short_warmup` warning, rather than trading on indicators that have not converged.
    `gaps` (from `range_gaps`) are checked against `spec.allow_gaps` and recorded in the outcome.
    `on_step(name)` is called before each stage (for progress reporting).
    """
    timings = {}
    first = first_traded_index(bars, spec)
    check_data(spec, len(bars) - first, gaps)
    on_step and on_step("signals")
    t0 = time.perf_counter()
    traded, signals, warmup, missing = tradable_signals(spec.strategy_key, bars, spec.parameters, first=first)
    timings["signals_s"] = time.perf_counter() - t0
    on_step and on_step("engine")
    t0 = time.perf_counter()
    try:
        result = engine_run(traded, signals, spec.engine)
    except ValueError as exc:  # e.g. risk sizing while this parameter set emits no stops
        raise ValidationError({"engine": str(exc)}) from None
    timings["engine_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics = metrics_mod.compute_all(result)
    timings["metrics_s"] = time.perf_counter() - t0
    return Outcome(
        metrics=metrics, trades=trades_as_records(result), open_position=result.open_position,
        final_equity=float(result.final_equity), equity=result.equity, time=traded.time,
        fingerprint=fingerprint(bars), candle_count=len(traded), skipped_entries=int(result.skipped_entries),
        gaps=gaps, timings=timings, code_version=code_version(spec.strategy_key),
        warmup_bars=warmup, warmup_missing=missing,
    )


# --- Runs ----------------------------------------------------------------------------------------
def _ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


def spec_for_run(run: BacktestRun) -> BacktestSpec:
    return BacktestSpec.build(
        strategy_key=run.strategy_key, parameters=run.parameters, timeframe=run.timeframe,
        start_ms=_ms(run.start), end_ms=_ms(run.end), allow_gaps=run.allow_gaps,
        **{f: getattr(run, f) for f in ENGINE_FIELDS},
    )


@transaction.atomic
def backtest_create(*, owner, market, timeframe: str, start: datetime, end: datetime, strategy_key: str | None = None,
                    parameters: dict | None = None, config=None, name: str = "", allow_gaps: bool = False,
                    enqueue: bool = True, **engine) -> BacktestRun:
    """Validate and store a run, then queue it. From a config, the strategy, parameters and
    execution settings default to the config's (settings given here override them one by one).

    Refuses (ValidationError) unknown strategies, bad parameters or costs, an empty range, a
    range with gaps (naming them) unless `allow_gaps`, and a run beyond the owner's limit of
    backtests queued or running at once (apps/accounts/quotas.py).
    """
    if config is not None:
        strategy_key = strategy_key or config.strategy_key
        parameters = parameters if parameters is not None else config.parameters
        engine = {**config.execution_settings(), **engine}
    if strategy_key is None:
        raise ValidationError({"strategy_key": "Choose a strategy (or a strategy config)."})
    if start is None or end is None:
        raise ValidationError({"start": "A backtest needs a start and an end."})
    spec = BacktestSpec.build(strategy_key=strategy_key, parameters=parameters, timeframe=timeframe,
                              start_ms=_ms(start), end_ms=_ms(end), allow_gaps=allow_gaps, market=market, **engine)
    _check_range(market, spec)
    quotas.quota_check_concurrent(user=owner, key=QuotaKey.BACKTESTS_CONCURRENT)
    run = BacktestRun(owner=owner, market=market, timeframe=timeframe, start=start, end=end, config=config,
                      strategy_key=spec.strategy_key, parameters=spec.parameters, allow_gaps=allow_gaps,
                      name=name or f"{spec.strategy_key} {market.symbol} {timeframe}",
                      code_version=code_version(spec.strategy_key),
                      **{f: getattr(spec.engine, f) for f in ENGINE_FIELDS})
    run.full_clean()
    run.save()
    grant_owner(run)
    audit_record("backtests.run.created", target=run,
                 metadata={"strategy": run.strategy_key, "parameters": run.parameters, "market": market.symbol,
                           "timeframe": timeframe, "start": start, "end": end})
    if enqueue:
        transaction.on_commit(lambda: jobrunner.enqueue(JOB, run.pk))
    _publish(run, "backtests.run.created")
    return run


def _check_range(market, spec: BacktestSpec) -> None:
    """Refuse at creation what would fail in the worker: no candles, or gaps not allowed."""
    check_data(spec, candle_count(market, spec.timeframe, spec.start_ms, spec.end_ms), range_gaps(market, spec))


def backtest_execute(run_id: int) -> BacktestRun | None:
    """The task body (and the command's, inline): run the backtest through the job runner, which
    claims it, records the outcome, audits and publishes. Idempotent.

    Returns None when the run was already taken or finished by someone else.
    """
    return jobrunner.run_job(JOB.name, run_id)


def _work(job: jobrunner.JobRun) -> jobrunner.Done:
    """Load → signals → engine → metrics → store, with a stage-based progress bar."""
    run: BacktestRun = job.job
    started = time.perf_counter()
    spec = spec_for_run(run)
    progress = job.progress(100)
    stages = {"load": (5, "Loading candles"), "signals": (30, "Computing signals"),
              "engine": (55, "Simulating trades"), "store": (85, "Storing results")}

    def step(name):
        pct, text = stages[name]
        progress.set(pct, message=text, force=True)

    step("load")
    t0 = time.perf_counter()
    bars = load_bars(run.market, spec, warmup=spec.warmup)
    load_s = time.perf_counter() - t0
    outcome = backtest_compute(spec, bars, gaps=range_gaps(run.market, spec), on_step=step)
    step("store")
    t0 = time.perf_counter()
    _store(run, outcome)
    outcome.timings.update(load_s=load_s, store_s=time.perf_counter() - t0, total_s=time.perf_counter() - started)
    return jobrunner.Done(
        message=f"{len(outcome.trades)} trades",
        fields=dict(metrics=outcome.metrics, timings=_round(outcome.timings), final_equity=outcome.final_equity,
                    open_position=outcome.open_position, candle_count=outcome.candle_count,
                    fingerprint=outcome.fingerprint, skipped_entries=outcome.skipped_entries, gaps=outcome.gaps,
                    code_version=outcome.code_version, warmup_bars=outcome.warmup_bars,
                    warmup_missing=outcome.warmup_missing),
        audit={"trades": len(outcome.trades), "final_equity": outcome.final_equity,
               "fingerprint": outcome.fingerprint})


def _serialize(run: BacktestRun) -> dict:
    return BacktestRunSerializer(run).data


JOB = jobrunner.register(jobrunner.JobType(
    name="backtests.run", model=BacktestRun, work=_work, serialize=_serialize, audit=audit_record,
    task="backtests.run", select_related=("market__exchange", "owner"),
    errors={ValidationError: ("invalid", lambda exc: "; ".join(exc.messages))},
    # Safe to run again from the start: storing a result replaces what a dead run left behind.
    requeue_when_lost=True,
))


def _round(timings: dict) -> dict:
    return {k: round(v, 4) for k, v in timings.items()}


@transaction.atomic
def _store(run: BacktestRun, outcome: Outcome) -> None:
    BacktestTrade.objects.filter(run=run).delete()  # a re-run after a crash starts clean
    EquityCurve.objects.filter(run=run).delete()
    to_dt = lambda ms: datetime.fromtimestamp(ms / 1000, tz=UTC)  # noqa: E731
    BacktestTrade.objects.bulk_create(
        [BacktestTrade(run=run, number=i + 1, side=t["side"], entry_time=to_dt(t["entry_time"]),
                       exit_time=to_dt(t["exit_time"]), entry_price=t["entry_price"], exit_price=t["exit_price"],
                       size=t["size"], fees=t["fees"], pnl=t["pnl"], return_pct=t["return"],
                       exit_reason=t["exit_reason"]) for i, t in enumerate(outcome.trades)],
        batch_size=2000,
    )
    EquityCurve.pack(run, outcome.time, outcome.equity).save()


@transaction.atomic
def backtest_cancel(*, run: BacktestRun, reason: str = "") -> BacktestRun:
    """Ask a queued or running backtest to stop; a queued one is cancelled at once."""
    run.request_cancel("backtest")
    audit_record("backtests.run.cancel_requested", target=run, reason=reason)
    _publish(run, "backtests.run.cancelled" if run.state == JobState.CANCELLED else "backtests.run.progress")
    return run


def backtest_save_as_config(*, run: BacktestRun, owner, name: str = "", notes: str = ""):
    """A finished run becomes a StrategyConfig: strategy, parameters, market, timeframe, the
    FULL execution settings (costs, sizing, stops, shorts) and the run's code version, so the
    config trades the way the run's results were measured; the run's result is its first
    evidence row."""
    from apps.strategies.services import config_create

    if run.state != JobState.SUCCEEDED:
        raise ValidationError("Only a finished backtest can be saved as a configuration.")
    return config_create(owner=owner, strategy_key=run.strategy_key, market=run.market, timeframe=run.timeframe,
                         parameters=run.parameters, name=name or f"{run.name} (from backtest {run.pk})",
                         notes=notes, source=Source.BACKTEST, provenance={"backtest_run": run.pk},
                         metrics={"backtest": run.metrics}, reason=f"saved from backtest {run.pk}",
                         execution=run.execution_settings(), code_version=run.code_version,
                         evidence=[backtest_evidence(run)])


def backtest_evidence(run: BacktestRun) -> dict:
    """A finished run as a config's typed evidence row (config_evidence_record's arguments)."""
    m = run.metrics or {}
    return dict(source=EvidenceSource.BACKTEST, period_start=run.start, period_end=run.end,
                fingerprint=run.fingerprint, code_version=run.code_version, trades=m.get("trade_count") or 0,
                sharpe=m.get("sharpe"), max_drawdown=m.get("max_drawdown"), total_return=m.get("total_return"),
                metrics=m, run=run, reason=f"measured by backtest {run.pk}")


def _publish(run: BacktestRun, event_type: str) -> None:
    events.publish_for(run, event_type, _serialize(run))
