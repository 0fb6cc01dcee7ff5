"""`manage.py train`: a TrainingRun row of the user's (audited, on the dashboard), run inline through the
job runner; JSON on stdout is the stored row with the documented keys; clear errors."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditEvent
from apps.strategies.models import Source, StrategyConfig
from apps.training.models import TrainingRun
from tradepulse.core.jobs import JobState

from .training_fixtures import _optuna_connections_closed, training_market  # noqa: F401

ARGS = ["--strategy", "sma_cross", "--exchange", "test-files", "--symbol", "WAV/USD", "--timeframe", "1m",
        "--trials", "12", "--folds", "3", "--holdout", "0.2", "--objective", "sharpe", "--seed", "7",
        "--min-trades", "3", "--top", "2"]


def run_json(*args) -> dict:
    out = StringIO()
    call_command("train", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_json_has_every_documented_key(training_market, alice):
    data = run_json(*ARGS, "--user", "alice")
    assert data["trials"]["count"] == 48 and len(data["trials"]["items"]) == 48  # 12 per study, 4 studies
    assert all({"study", "params", "value", "penalty"} <= set(item) for item in data["trials"]["items"])
    assert {"params", "value"} <= set(data["best"])
    assert len(data["folds"]) == 3
    for fold in data["folds"]:
        for part in ("in_sample", "out_of_sample"):
            assert {"start", "end", "metrics"} <= set(fold[part])
        assert fold["in_sample"]["end"] <= fold["out_of_sample"]["start"]
        # The parameters chosen for the fold (by its own study) and their out-of-sample metrics.
        chosen = next(t for t in data["trials"]["items"]
                      if t["study"] == f"fold-{fold['index']}" and t["number"] == fold["trial"])
        assert fold["params"] == chosen["params"] and fold["out_of_sample"]["metrics"]["trade_count"] >= 0
        assert "walkforward_efficiency" in fold
    assert "efficiency" in data["walkforward"] and "walkforward_efficiency" in data["out_of_sample"]
    assert {"start", "end", "metrics"} <= set(data["holdout"])
    assert data["holdout"]["start"] >= data["folds"][-1]["out_of_sample"]["end"]
    assert "dsr" in data and "pbo" in data
    assert data["verdict"]["text"] and isinstance(data["verdict"]["reasons"], list)
    # The printed result is the stored row's.
    run = TrainingRun.objects.get(pk=data["saved_run"])
    assert run.state == JobState.SUCCEEDED == data["state"] and run.owner == alice
    assert {k: v for k, v in data.items() if k not in ("saved_run", "state", "owner", "run")} == run.result
    assert data["run"]["id"] == run.pk and data["run"]["trials_done"] == 48 == run.trials_done
    assert run.trials.count() == 48 and data["study_name"] == run.study_name


def test_the_run_is_stored_audited_and_printed(training_market, alice):
    out = StringIO()
    call_command("train", *ARGS, "--user", "alice", "--name", "from the shell", stdout=out)
    run = TrainingRun.objects.get()
    assert (run.name, run.owner, run.state, run.n_trials, run.folds, run.min_trades) == (
        "from the shell", alice, JobState.SUCCEEDED, 12, 3, 3)
    events = {e.action: e for e in AuditEvent.objects.filter(target_id=str(run.pk), action__startswith="training.run.")}
    assert set(events) == {"training.run.created", "training.run.finished"}
    for event in events.values():  # the person, by way of this command
        assert (event.actor_id, event.actor_label, event.via) == (alice.pk, "alice", "command:train")
    text = out.getvalue()
    assert f"training #{run.pk} sma_cross on test-files WAV/USD 1m" in text
    assert f"stored as training #{run.pk} (succeeded), owner alice" in text
    assert f"verdict: {run.verdict['text']}" in text


def test_omitted_options_take_the_one_set_of_defaults(training_market, alice):
    from apps.training.options import DEFAULTS
    from apps.training.management.commands.train import Command

    parser = Command().create_parser("manage.py", "train")
    options = vars(parser.parse_args(["--user", "alice", "--strategy", "s", "--exchange", "e", "--symbol", "x",
                                      "--timeframe", "1m"]))
    assert (options["trials"], options["folds"], options["scheme"], options["holdout"], options["objective"],
            options["min_trades"], options["sampler"], options["seed"], options["workers"], options["top"],
            options["timeout"]) == (DEFAULTS.n_trials, DEFAULTS.folds, DEFAULTS.scheme, DEFAULTS.holdout_share,
                                    DEFAULTS.objective, DEFAULTS.min_trades, DEFAULTS.sampler, DEFAULTS.seed,
                                    DEFAULTS.n_workers, DEFAULTS.top_n, DEFAULTS.timeout_s)


def test_same_seed_gives_the_same_study(training_market, alice):
    a, b = run_json(*ARGS, "--user", "alice"), run_json(*ARGS, "--user", "alice")
    assert a["study_name"] != b["study_name"]
    assert [t["params"] for t in a["trials"]["items"]] == [t["params"] for t in b["trials"]["items"]]
    assert a["best"] == b["best"]


def test_the_candidates_become_the_users_configs(training_market, alice):
    data = run_json(*ARGS, "--save-as", alice.username)  # --save-as: the older name of --user
    configs = list(StrategyConfig.objects.filter(pk__in=data["configs_created"]))
    assert len(configs) == len(data["candidates"]) >= 1
    assert all(c.owner == alice and c.source == Source.TRAINING and c.provenance["training_run"] == data["saved_run"]
               for c in configs)


@pytest.mark.parametrize("extra,text", [
    (["--holdout", "1.5"], "hold-out share"),
    (["--folds", "0"], "Folds must be"),
    (["--user", "nobody"], "no user 'nobody'"),
])
def test_bad_options_fail_with_one_clear_line(training_market, alice, extra, text):
    with pytest.raises(CommandError, match=text):
        call_command("train", *ARGS, "--user", "alice", *extra, "--json", stdout=StringIO())
    assert not TrainingRun.objects.exists()  # refused before anything is stored


@pytest.mark.django_db(transaction=True)
def test_two_worker_threads_share_the_run(training_market, alice):
    data = run_json(*ARGS, "--user", "alice", "--workers", "2")
    assert data["trials"]["count"] == 48 and len(data["workers"]) == 2
    for study in ("fold-0", "fold-1", "fold-2", "final"):
        assert sorted(t["number"] for t in data["trials"]["items"] if t["study"] == study) == list(range(12))
    run = TrainingRun.objects.get(pk=data["saved_run"])
    assert run.workers_finished == 2 and sorted(r["worker_id"] for r in run.worker_reports) == [
        f"cli-{run.pk}-w0", f"cli-{run.pk}-w1"]
