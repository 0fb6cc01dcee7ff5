"""`manage.py train`: JSON on stdout with the documented keys; configs with --save-as; clear errors."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.strategies.models import Source, StrategyConfig

from .training_fixtures import _optuna_connections_closed, training_market  # noqa: F401

ARGS = ["--strategy", "sma_cross", "--exchange", "test-files", "--symbol", "WAV/USD", "--timeframe", "1m",
        "--trials", "12", "--folds", "3", "--holdout", "0.2", "--objective", "sharpe", "--seed", "7",
        "--min-trades", "3", "--top", "2"]


def run_json(*args) -> dict:
    out = StringIO()
    call_command("train", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_json_has_every_documented_key(training_market):
    data = run_json(*ARGS)
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
    assert data["configs_created"] == [] and not StrategyConfig.objects.exists()


def test_same_seed_gives_the_same_study(training_market):
    a, b = run_json(*ARGS), run_json(*ARGS)
    assert a["study_name"] != b["study_name"]
    assert [t["params"] for t in a["trials"]["items"]] == [t["params"] for t in b["trials"]["items"]]
    assert a["best"] == b["best"]


def test_save_as_creates_the_candidates_configs(training_market, alice):
    data = run_json(*ARGS, "--save-as", alice.username)
    configs = list(StrategyConfig.objects.filter(pk__in=data["configs_created"]))
    assert len(configs) == len(data["candidates"]) >= 1
    assert all(c.owner == alice and c.source == Source.TRAINING and c.provenance["study"] == data["study_name"]
               for c in configs)


@pytest.mark.parametrize("extra,text", [
    (["--holdout", "1.5"], "hold-out share"),
    (["--folds", "0"], "Folds must be"),
    (["--save-as", "nobody"], "no user 'nobody'"),
])
def test_bad_options_fail_with_one_clear_line(training_market, extra, text):
    with pytest.raises(CommandError, match=text):
        call_command("train", *ARGS, *extra, "--json", stdout=StringIO())


def test_two_worker_processes_share_the_study(training_market):
    data = run_json(*ARGS, "--workers", "2")
    assert data["trials"]["count"] == 48 and len(data["workers"]) == 2
    for study in ("fold-0", "fold-1", "fold-2", "final"):
        assert sorted(t["number"] for t in data["trials"]["items"] if t["study"] == study) == list(range(12))
    assert StrategyConfig.objects.count() == 0  # the Django connection still works after the fork
