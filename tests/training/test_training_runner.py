"""Training studies end to end: objective, samplers, workers, crashes, cancellation, train().

All bars here are SYNTHETIC (seeded random walks with trend regimes so that sma_cross has
something to find); storage is a journal file per test (the platform's embedded storage),
plus SQLite/PostgreSQL RDB and Redis journal tests when those servers answer on 127.0.0.1.
"""

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import psycopg
import pytest
from optuna.trial import TrialState

from quant.engine import EngineConfig
from quant.optimisation import objective as objective_module
from quant.optimisation.objective import (PENALTY, VALUE_CAP, WindowRun, make_objective, max_warmup,
                                               objective_value, prune_check_steps)
from quant.optimisation.pipeline import train
from quant.optimisation.runner import (create_study, grid_space, load_study, run_trials,
                                            storage_url_from_database_url, study_progress)
from quant.optimisation.storage import make_storage
from quant.optimisation.validate import chain_runs
from quant.optimisation.walkforward import folds
from quant.strategies import Bars, CategoricalParam, FloatParam, IntParam, Strategy

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
CONFIG = EngineConfig(fee=0.0005)


def synthetic_bars(n: int = 2400, seed: int = 11) -> Bars:
    """SYNTHETIC hourly bars: a random walk whose drift switches sign every 100-400 bars."""
    rng = np.random.default_rng(seed)
    drift = np.zeros(n)
    i = 0
    while i < n:
        length = int(rng.integers(100, 400))
        drift[i:i + length] = rng.choice([-1.0, 1.0]) * rng.uniform(0.0004, 0.0012)
        i += length
    close = 100 * np.exp(np.cumsum(drift + rng.normal(0, 0.006, n)))
    opens = np.r_[close[0], close[:-1]]
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.002, n))
    return Bars(1_700_000_000_000 + np.arange(n, dtype=np.int64) * HOUR, opens, high, low, close,
                rng.lognormal(0, 1, n), "1h")


@pytest.fixture(scope="module")
def bars():
    return synthetic_bars()


@pytest.fixture
def url(tmp_path):
    return f"journal+file://{tmp_path}/optuna.log"


def _fold_list(bars, k=3):
    return folds(bars, k=k, warmup_bars=max_warmup("sma_cross", bars.timeframe))


class _Factory:
    """Objective factory over in-memory bars (what a Celery worker's factory does after loading candles)."""

    def __init__(self, bars, k=3, min_trades=3):
        self.bars, self.k, self.min_trades = bars, k, min_trades
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return make_objective(self.bars, "sma_cross", CONFIG, objective="sharpe", min_trades=self.min_trades,
                              windows=[f.in_sample for f in _fold_list(self.bars, self.k)])


def _trials(url, name):
    return load_study(url, name).get_trials(deepcopy=False)


# --------------------------------------------------------------------------- objective values

def test_objective_values_penalties_and_composite():
    metrics = {"trade_count": 20, "sharpe": 1.5, "sortino": 2.0, "calmar": 3.0, "profit_factor": math.e,
               "total_return": 0.1, "max_drawdown": 0.05}
    assert objective_value(metrics, "sharpe") == (1.5, None)
    assert objective_value(metrics, "composite")[0] == pytest.approx(0.4 * 1.5 + 0.2 * 2 + 0.2 * 3 + 0.2 * 1)
    few = objective_value({**metrics, "trade_count": 4}, "sharpe", min_trades=10)
    assert few == (PENALTY + 0.4, "penalised: 4 trades < min 10")
    assert objective_value({**metrics, "sharpe": None}, "sharpe") == (PENALTY, "penalised: sharpe undefined")
    assert objective_value({**metrics, "sharpe": -250.0}, "sharpe")[0] == objective_module.VALUE_FLOOR
    no_loss = {**metrics, "profit_factor": None}
    assert objective_value(no_loss, "profit_factor") == (VALUE_CAP, None)
    with pytest.raises(ValueError, match="unknown objective 'sharp'"):
        objective_value(metrics, "sharp")


def test_max_warmup_covers_the_whole_search_space():
    assert max_warmup("sma_cross", "1h") == 501  # slow up to 500, plus the previous bar for the cross
    assert prune_check_steps(5) == {1, 3} and prune_check_steps(3) == {1} and prune_check_steps(1) == set()


def test_objective_records_its_ranges_and_prunes_invalid_parameters(bars):
    fold_list = _fold_list(bars)
    objective = make_objective(bars, "sma_cross", CONFIG, objective="sharpe", min_trades=3,
                               windows=[f.in_sample for f in fold_list])
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    study.enqueue_trial({"fast": 50, "slow": 20})
    study.enqueue_trial({"fast": 5, "slow": 40})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=2)
    invalid, valid = study.trials
    assert invalid.state == TrialState.PRUNED
    assert invalid.user_attrs["pruned_reason"] == "invalid parameters: fast: 50 must be below slow (20)"
    assert valid.state == TrialState.COMPLETE
    assert valid.user_attrs["bar_ranges"] == [
        {"window": f.index, "read_start": f.in_sample.read_start, "start": f.in_sample.start, "end": f.in_sample.end}
        for f in fold_list]
    records = valid.user_attrs["window_metrics"]
    assert [r["value"] for r in records] == [r["metrics"]["sharpe"] for r in records]
    assert valid.value == pytest.approx(np.mean([r["value"] for r in records]))
    assert valid.intermediate_values == pytest.approx(
        {i: np.mean([r["value"] for r in records[:i + 1]]) for i in range(3)})
    # The Evaluator built once per objective serves every trial (indicator arrays are reused).
    assert objective.evaluator.bars is bars


# --------------------------------------------------------------------------- reproducibility

def _sequence(url, name):
    return [(t.number, t.state, t.params, t.value) for t in _trials(url, name)]


@pytest.mark.slow
def test_same_seed_gives_the_same_study(tmp_path, bars):
    runs = []
    for i in range(2):
        url = f"sqlite:///{tmp_path}/run{i}.db"
        create_study(url, "same", sampler="tpe", seed=42, pruner="median")
        report = run_trials(url, "same", _Factory(bars), n_trials_total=16, worker_id=f"w{i}")
        assert report.stop_reason == "budget_reached" and report.complete + report.pruned == 16
        runs.append(_sequence(url, "same"))
    assert runs[0] == runs[1]
    assert len({tuple(sorted(p.items())) for _, _, p, _ in runs[0]}) > 10  # the sampler did explore
    url = f"sqlite:///{tmp_path}/other.db"
    create_study(url, "same", sampler="tpe", seed=43)
    run_trials(url, "same", _Factory(bars), n_trials_total=16)
    assert _sequence(url, "same") != runs[0]


def test_a_restarted_worker_does_not_replay_the_random_sequence(url, bars):
    create_study(url, "restart", sampler="random", seed=5, pruner="none")
    factory = _Factory(bars)
    run_trials(url, "restart", factory, n_trials_total=6)
    run_trials(url, "restart", factory, n_trials_total=12)  # a new process would rebuild the sampler
    params = [tuple(sorted(t.params.items())) for t in _trials(url, "restart")]
    assert len(params) == 12 and len(set(params)) == 12
    assert factory.calls == 2  # the factory (candles, caches) is built once per run_trials call


# --------------------------------------------------------------------------- hold-out isolation

def test_each_study_reads_only_its_own_window_and_the_holdout_never(tmp_path, bars):
    kwargs = dict(strategy_key="sma_cross", engine_config=CONFIG, min_trades=3, sampler="random", n_trials=8,
                  seed=3, folds=3, holdout_share=0.2, top_n=2, pruner="none")
    url = f"journal+file://{tmp_path}/a.log"
    result = train(bars, storage_url=url, study_name="iso", **kwargs).to_dict()
    optimise_end = result["optimisation"]["end_index"]
    assert result["holdout"]["start_index"] == optimise_end == 1920
    assert result["holdout"]["end_index"] == len(bars)
    assert result["studies"] == {"fold-0": "iso.fold-0", "fold-1": "iso.fold-1", "fold-2": "iso.fold-2",
                                 "final": "iso.final"}
    for fold in result["folds"]:
        is_, oos = fold["in_sample"], fold["out_of_sample"]
        trials = _trials(url, f"iso.fold-{fold['index']}")
        assert len(trials) == 8
        for trial in trials:
            # A fold's study never reads a bar of its own out-of-sample window, nor anything later.
            assert [(r["start"], r["end"]) for r in trial.user_attrs["bar_ranges"]] == \
                [(is_["start_index"], is_["end_index"])]
            assert trial.user_attrs["bar_ranges"][0]["end"] <= oos["start_index"]
    final = result["final_window"]
    assert (final["start_index"], final["end_index"]) == (501, optimise_end)
    for trial in _trials(url, "iso.final"):
        assert [(r["start"], r["end"]) for r in trial.user_attrs["bar_ranges"]] == [(501, optimise_end)]

    # Structural proof: wreck the hold-out prices and the optimiser sees exactly the same studies.
    wrecked = {k: getattr(bars, k).copy() for k in ("open", "high", "low", "close")}
    for arr in wrecked.values():
        arr[optimise_end:] *= np.linspace(1, 3, len(bars) - optimise_end)
    poisoned = Bars(bars.time, wrecked["open"], wrecked["high"], wrecked["low"], wrecked["close"],
                    bars.volume, "1h")
    again = train(poisoned, storage_url=f"journal+file://{tmp_path}/b.log", study_name="iso", **kwargs).to_dict()

    def strip(r):
        return [(t["study"], t["number"], t["params"], t["value"], t["windows"]) for t in r["trials"]["items"]]

    assert strip(result) == strip(again)
    assert [f["params"] for f in result["folds"]] == [f["params"] for f in again["folds"]]
    assert again["holdout"]["metrics"] != result["holdout"]["metrics"]


# --------------------------------------------------------------------------- worker death

_DOOMED_WORKER = """
import sys, time
sys.path.insert(0, {root!r})
from quant.optimisation.runner import run_trials
from tests.training.test_training_runner import SlowToyFactory
run_trials({url!r}, "crash", SlowToyFactory(), n_trials_total=12, worker_id="doomed",
           heartbeat_interval=1, grace_period=2)
"""


class SlowToyFactory:
    """A toy objective slow enough to be killed mid-trial (the worker logic does not care
    what the objective computes)."""

    def __call__(self):
        def objective(trial):
            x = trial.suggest_int("x", 0, 10_000)
            time.sleep(0.3)
            return float(x % 97)
        return objective


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_and_duplicates_nothing(tmp_path, url):
    create_study(url, "crash", sampler="random", seed=9, pruner="none", heartbeat_interval=1, grace_period=2)
    script = tmp_path / "doomed.py"
    script.write_text(_DOOMED_WORKER.format(root=str(ROOT), url=url))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=str(ROOT))
    victim = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and victim is None:
            time.sleep(0.05)
            try:
                trials = _trials(url, "crash")
            except Exception:  # the worker may be creating tables
                continue
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            running = [t for t in trials if t.state == TrialState.RUNNING and t.params]
            if len(done) >= 3 and running:
                victim = running[0]
                os.kill(proc.pid, signal.SIGKILL)
        assert victim is not None, "the doomed worker never got going"
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stuck = [t for t in _trials(url, "crash") if t.state == TrialState.RUNNING]
    assert [t.number for t in stuck] == [victim.number], "the dead worker left its trial RUNNING"

    report = run_trials(url, "crash", SlowToyFactory(), n_trials_total=12, worker_id="survivor",
                        heartbeat_interval=1, grace_period=2)
    assert report.stop_reason == "budget_reached"
    trials = _trials(url, "crash")
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 12
    assert states.count(TrialState.FAIL) == 1 and states.count(TrialState.RUNNING) == 0
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    assert failed.number == victim.number and "discarded" not in failed.user_attrs
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1, "the dead worker's trial is re-run exactly once"
    assert retries[0].state == TrialState.COMPLETE and retries[0].params == victim.params
    assert retries[0].user_attrs["worker_id"] == "survivor"
    assert study_progress(url, "crash")["complete"] == 12


class ToyFactory:
    def __call__(self):
        return lambda trial: float(trial.suggest_int("x", 0, 100))


def test_a_trial_started_after_the_budget_was_claimed_is_discarded_and_the_worker_waits(url):
    """Exact budget under a race: other workers claim the remaining 39 slots between this
    worker's look and its next trial. That trial is discarded before any work, the worker
    waits for the others' trials to finish, and the study ends with exactly 40."""
    create_study(url, "race", sampler="random", seed=1, pruner="none")
    other = optuna.load_study(study_name="race", storage=make_storage(url))  # a second worker
    foreign = []

    def claim_everything_left(frozen):
        if not foreign:
            foreign.extend(other.ask() for _ in range(39))
            threading.Timer(1.0, lambda: [other.tell(t, 1.0) for t in foreign]).start()

    report = run_trials(url, "race", ToyFactory(), n_trials_total=40, on_trial_finished=claim_everything_left,
                        poll_interval_s=0.1)
    assert (report.complete, report.discarded, report.stop_reason) == (1, 1, "budget_reached")
    trials = _trials(url, "race")
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 40
    discarded = [t for t in trials if "discarded" in t.user_attrs]
    assert [(t.number, t.state, t.params) for t in discarded] == [(40, TrialState.FAIL, {})]
    assert study_progress(url, "race")["complete"] == 40 and study_progress(url, "race")["discarded"] == 1


# --------------------------------------------------------------------------- samplers

def test_grid_sampler_walks_a_small_grid_once(url, bars):
    create_study(url, "grid", sampler="grid", seed=1, strategy_key="sma_cross", pruner="none",
                 grid={"fast": [5, 10], "slow": [20, 30, 60]})
    report = run_trials(url, "grid", _Factory(bars), n_trials_total=50)
    params = sorted((t.params["fast"], t.params["slow"]) for t in _trials(url, "grid"))
    assert params == [(5, 20), (5, 30), (5, 60), (10, 20), (10, 30), (10, 60)]
    assert report.complete == 6 and report.stop_reason == "budget_reached"


class _FloatNoStep(Strategy):
    key = "float_no_step_test"
    params = (IntParam("n", 5, 1, 10), FloatParam("x", 0.5, 0.0, 1.0))


class _Categorical(Strategy):
    key = "categorical_test"
    params = (IntParam("n", 5, 1, 10), CategoricalParam("mode", "a", ("a", "b")))


def test_grid_is_built_from_bounds_and_steps_with_clear_errors():
    space = grid_space("bollinger_breakout", {"period": [10, 20]})
    assert space["period"] == [10, 20] and space["k"][:3] == [0.5, 0.6, 0.7] and len(space["k"]) == 36
    with pytest.raises(ValueError, match=r"has 99,102 points \(fast 199 × slow 498\), above the cap of 10,000"):
        grid_space("sma_cross")
    with pytest.raises(ValueError, match="needs a step for float parameter x"):
        grid_space(_FloatNoStep)
    with pytest.raises(ValueError, match="fast: 1 is below the minimum 2"):
        grid_space("sma_cross", {"fast": [1, 5], "slow": [20]})


def test_cmaes_refuses_non_numeric_spaces(url):
    with pytest.raises(ValueError, match="CMA-ES works on numeric parameters only; categorical_test has "
                                         "non-numeric mode"):
        create_study(url, "cma", sampler="cmaes", strategy_key=_Categorical)


def test_cmaes_runs_on_numeric_spaces_or_says_what_is_missing(url, bars):
    if importlib.util.find_spec("cmaes") is None:
        with pytest.raises(ValueError, match="needs the 'cmaes' package"):
            create_study(url, "cma", sampler="cmaes", seed=1, strategy_key="sma_cross")
        pytest.skip("cmaes is not installed; the clear error was checked instead")
    create_study(url, "cma", sampler="cmaes", seed=1, strategy_key="sma_cross", pruner="none")
    report = run_trials(url, "cma", _Factory(bars), n_trials_total=12)
    assert report.complete + report.pruned == 12
    first = _sequence(url, "cma")
    url2 = url.replace("optuna.db", "again.db")
    create_study(url2, "cma", sampler="cmaes", seed=1, strategy_key="sma_cross", pruner="none")
    run_trials(url2, "cma", _Factory(bars), n_trials_total=12)
    assert _sequence(url2, "cma") == first


def test_random_sampler_and_unknown_names(url, bars):
    create_study(url, "rnd", sampler="random", seed=2, pruner="none")
    assert run_trials(url, "rnd", _Factory(bars), n_trials_total=5).trials_run == 5
    with pytest.raises(ValueError, match="unknown sampler 'annealing'"):
        create_study(url, "x", sampler="annealing")
    with pytest.raises(ValueError, match="unknown pruner 'hyperband'"):
        create_study(url, "y", pruner="hyperband")


def test_hopeless_trials_are_pruned_between_folds(url, bars):
    create_study(url, "prune", sampler="random", seed=4, pruner="median")
    report = run_trials(url, "prune", _Factory(bars, k=4), n_trials_total=30)
    pruned = [t for t in _trials(url, "prune") if t.state == TrialState.PRUNED
              and t.user_attrs["pruned_reason"].startswith("pruned after window")]
    assert pruned, "the median pruner never fired"
    assert report.complete + report.pruned == 30
    for t in pruned:
        step = int(t.user_attrs["pruned_reason"].split()[3].rstrip(":"))
        assert len(t.user_attrs["window_metrics"]) == step + 1 < 4  # the remaining windows were never run


# --------------------------------------------------------------------------- stopping

def test_should_stop_cancels_between_trials(url, bars):
    create_study(url, "cancel", sampler="random", seed=1, pruner="none")
    finished = []
    report = run_trials(url, "cancel", _Factory(bars), n_trials_total=50,
                        should_stop=lambda: len(finished) >= 3, on_trial_finished=finished.append)
    assert report.stop_reason == "cancelled"
    assert [t.number for t in finished] == [0, 1, 2]
    assert [t.state for t in _trials(url, "cancel")] == [TrialState.COMPLETE] * 3  # nothing left RUNNING


def test_time_budget_stops_the_worker(url, bars):
    create_study(url, "timeout", sampler="random", seed=1)
    assert run_trials(url, "timeout", _Factory(bars), n_trials_total=50, timeout_s=0).stop_reason == "timeout"
    assert _trials(url, "timeout") == []


def test_study_configuration_is_stored_and_checked(url):
    create_study(url, "conf", sampler="random", seed=1)
    assert load_study(url, "conf").user_attrs["tradepulse"]["sampler"] == "random"
    create_study(url, "conf", sampler="random", seed=1)  # reopening with the same settings is fine
    with pytest.raises(ValueError, match="already exists with another configuration"):
        create_study(url, "conf", sampler="tpe", seed=1)
    with pytest.raises(ValueError, match="no study named 'missing'"):
        run_trials(url, "missing", lambda: None, n_trials_total=1)


def test_storage_url_from_database_url():
    assert storage_url_from_database_url("postgres://u:p@db:5432/tp") == "postgresql+psycopg://u:p@db:5432/tp"
    assert storage_url_from_database_url("postgresql://u@h/tp", schema="optuna") == \
        "postgresql+psycopg://u@h/tp?options=-csearch_path%3Doptuna"
    assert storage_url_from_database_url("sqlite:////var/tp.db") == "sqlite:////var/tp.db"


# --------------------------------------------------------------------------- train()

def test_train_returns_the_documented_json(url, bars):
    result = train(bars, strategy_key="sma_cross", engine_config=CONFIG, objective="composite", min_trades=3,
                   sampler="tpe", n_trials=14, seed=8, folds=3, holdout_share=0.2, storage_url=url,
                   study_name="json", top_n=3).to_dict()
    text = json.dumps(result, allow_nan=False)  # strict JSON: no NaN or Infinity anywhere
    assert json.loads(text)["trials"]["count"] == 14 * 4  # 3 fold studies + the final one
    assert result["status"] == "complete"
    assert {k: v["complete"] + v["pruned"] for k, v in result["trials"]["per_study"].items()} == \
        {"fold-0": 14, "fold-1": 14, "fold-2": 14, "final": 14}
    item = result["trials"]["items"][0]
    assert {"number", "study", "fold", "params", "value", "penalty", "state", "windows"} <= set(item)
    final_items = [t for t in result["trials"]["items"] if t["study"] == "final" and t["value"] is not None
                   and not t["penalty"]]
    assert result["best"]["study"] == "final"
    assert result["best"]["value"] == max(t["value"] for t in final_items)
    assert len(result["folds"]) == 3
    for fold in result["folds"]:
        own = [t for t in result["trials"]["items"] if t["study"] == f"fold-{fold['index']}"
               and t["state"] == "complete"]
        # Each fold's parameters are the best of its own study, on its own in-sample window.
        best_own = max(own, key=lambda t: (t["penalty"] is None, t["value"]))
        assert fold["params"] == best_own["params"] and fold["trial"] == best_own["number"]
        for side in ("in_sample", "out_of_sample"):
            assert {"start", "end", "metrics", "annualised_return"} <= set(fold[side])
            assert fold[side]["start"] == int(bars.time[fold[side]["start_index"]])
        assert fold["out_of_sample"]["start"] == fold["in_sample"]["end"]
        wfe, is_ann = fold["walkforward_efficiency"], fold["in_sample"]["annualised_return"]
        assert wfe == (pytest.approx(fold["out_of_sample"]["annualised_return"] / is_ann) if is_ann > 0 else None)
    oos = result["out_of_sample"]
    assert oos["n_folds"] == 3 and oos["metrics"]["trade_count"] == sum(
        f["out_of_sample"]["metrics"]["trade_count"] for f in result["folds"])
    assert result["walkforward"]["efficiency"] == oos["walkforward_efficiency"]
    assert result["holdout"]["start"] == int(bars.time[1920]) and result["holdout"]["end"] == int(bars.time[-1]) + HOUR
    assert result["holdout"]["metrics"]["trade_count"] >= 0
    assert 0.0 <= result["dsr"] <= 1.0 and 0.0 <= result["pbo"] <= 1.0
    # DSR counts every trial tried in every study; PBO's matrix is the final study's configurations.
    assert result["dsr_detail"]["n_trials"] == result["trials"]["tried"] > result["trials"]["per_study"]["final"]["tried"]
    assert result["pbo_detail"]["n_configs"] == len({tuple(sorted(t["params"].items()))
                                                     for t in result["trials"]["items"]
                                                     if t["study"] == "final" and t["state"] == "complete"})
    assert result["verdict"]["text"] in ("likely robust", "promising but fragile", "likely overfit",
                                         "insufficient evidence")
    assert result["verdict"]["reasons"] and all(isinstance(r, str) for r in result["verdict"]["reasons"])
    assert [c["rank"] for c in result["candidates"]] == [1, 2, 3]
    assert result["candidates"][0]["params"] == result["best"]["params"]
    assert result["stability"]["n_evaluated"] > 0


def test_combined_out_of_sample_chains_fold_returns():
    first = WindowRun({}, np.array([100.0, 110.0]), np.array([10.0]), np.array([0.1]), exposure=1.0)
    second = WindowRun({}, np.array([100.0, 90.0, 99.0]), np.array([-10.0, 9.0]), np.array([-0.1, 0.1]),
                       exposure=0.5)
    metrics = chain_runs([first, second], 1000.0, bars_per_year=8760, bar_ms=HOUR)
    # Returns +10 %, -10 %, +10 % chained from 1000: 1000 → 1100 → 990 → 1089.
    assert metrics["total_return"] == pytest.approx(0.089)
    assert metrics["final_equity"] == pytest.approx(1089.0)
    assert metrics["trade_count"] == 3
    # The second fold's P&L is rescaled by the 1.1 its start equity grew: wins 10 + 9.9, loss 11.
    assert metrics["profit_factor"] == pytest.approx((10 + 9.9) / 11)
    assert metrics["exposure"] == pytest.approx((2 * 1.0 + 3 * 0.5) / 5)


def test_train_with_no_completed_trial_says_there_is_nothing_to_validate(url, bars):
    result = train(bars, strategy_key="sma_cross", sampler="grid", grid={"fast": [50], "slow": [20, 30]},
                   n_trials=10, folds=3, storage_url=url, study_name="none").to_dict()
    json.dumps(result, allow_nan=False)
    assert result["trials"]["count"] == 8 and result["trials"]["invalid"] == 8  # 2 grid points × 4 studies
    assert result["best"] is None and result["dsr"] is None and result["pbo"] is None
    assert [f["params"] for f in result["folds"]] == [None, None, None]
    assert result["out_of_sample"]["metrics"] is None
    assert result["verdict"]["text"] == "insufficient evidence"
    assert result["verdict"]["reasons"] == [
        "No trial of the final study completed (2 pruned, 0 failed): nothing to validate."]


def test_train_refuses_impossible_configurations(url, bars):
    with pytest.raises(ValueError, match="too few bars for 1000 folds"):
        train(bars, strategy_key="sma_cross", storage_url=url, study_name="x", folds=1000)
    with pytest.raises(ValueError, match="unknown objective"):
        train(bars, strategy_key="sma_cross", storage_url=url, study_name="x", objective="alpha")


# --------------------------------------------------------------------------- PostgreSQL, 2 workers

# Throwaway database; the pid suffix keeps two test runs on one server (several engineers,
# one PostgreSQL) from dropping each other's database mid-test.
PG_DB = f"tradepulse_optuna_test_{os.getpid()}"


@pytest.fixture
def postgres_url():
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DB}")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not available on 127.0.0.1:5432: {exc}")
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={PG_DB}", autocommit=True) as conn:
        conn.execute("CREATE SCHEMA optuna")
    yield storage_url_from_database_url(f"postgres://postgres@127.0.0.1:5432/{PG_DB}", schema="optuna")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


@pytest.mark.slow
def test_two_worker_processes_share_a_postgres_study_exactly(postgres_url, bars):
    seen = []
    result = train(bars, strategy_key="sma_cross", engine_config=CONFIG, min_trades=3, sampler="tpe", n_trials=12,
                   seed=1, folds=3, storage_url=postgres_url, study_name="pg", n_workers=2, top_n=2,
                   on_trial_finished=lambda study, t: seen.append((study, t.number))).to_dict()
    assert result["status"] == "complete"
    assert result["trials"]["complete"] + result["trials"]["pruned"] == 12 * 4
    assert len(result["workers"]) == 2 and all(w["stop_reason"] == "budget_reached" for w in result["workers"])
    assert sum(w["complete"] + w["pruned"] for w in result["workers"]) == 12 * 4
    assert sorted(seen) == sorted((t["study"], t["number"]) for t in result["trials"]["items"])
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={PG_DB}") as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'optuna'")}
    assert {"studies", "trials", "trial_heartbeats"} <= tables  # optuna's tables stay in their schema
