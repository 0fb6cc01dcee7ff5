"""One set of training defaults (apps/training/options.py): what the API stores for omitted options,
what the dashboard form starts from, what the service and the model default to."""
from __future__ import annotations

import re

from apps.training import services
from apps.training.models import TrainingRun
from apps.training.options import DEFAULTS

from .training_fixtures import BODY_TIMES, _optuna_connections_closed, training_market  # noqa: F401

FIELDS = ("objective", "min_trades", "sampler", "n_trials", "timeout_s", "folds", "scheme", "holdout_share", "seed",
          "n_workers", "top_n")


def test_the_api_stores_the_defaults_for_omitted_options(api, alice, training_market):
    body = {"strategy_key": "sma_cross", "market": training_market.pk, "timeframe": "1m", **BODY_TIMES}
    answer = api(alice).post("/api/v1/training-runs/", body, format="json")
    assert answer.status_code == 201, answer.content
    run = TrainingRun.objects.get(pk=answer.json()["id"])
    assert {f: getattr(run, f) for f in FIELDS} == {f: getattr(DEFAULTS, f) for f in FIELDS}
    assert {f: answer.json()[f] for f in FIELDS} == {f: getattr(DEFAULTS, f) for f in FIELDS}


def test_the_model_and_the_service_default_to_the_same_options():
    import inspect

    signature = inspect.signature(services.training_create).parameters
    for name in FIELDS:
        assert signature[name].default == getattr(DEFAULTS, name), name
        field = TrainingRun._meta.get_field(name)
        if field.has_default():
            assert field.default == getattr(DEFAULTS, name), name


def test_the_form_starts_from_the_defaults(client, alice):
    client.force_login(alice)
    html = client.get("/training/").content.decode()

    def value(element_id):
        return re.search(rf'id="{element_id}" value="([^"]*)"', html).group(1)

    def selected(element_id):
        block = re.search(rf'id="{element_id}">(.*?)</select>', html, re.S).group(1)
        return re.search(r'<option value="([^"]+)" selected>', block).group(1)

    assert int(value("tr-min-trades")) == DEFAULTS.min_trades and int(value("tr-trials")) == DEFAULTS.n_trials
    assert int(value("tr-workers")) == DEFAULTS.n_workers and int(value("tr-folds")) == DEFAULTS.folds
    assert int(value("tr-top")) == DEFAULTS.top_n and float(value("tr-holdout")) == DEFAULTS.holdout_share * 100
    assert value("tr-seed") == ("" if DEFAULTS.seed is None else str(DEFAULTS.seed))
    assert (selected("tr-objective"), selected("tr-sampler"), selected("tr-scheme")) == (
        DEFAULTS.objective, DEFAULTS.sampler, DEFAULTS.scheme)
