"""Training API: create, list, detail, trials (paginated, by state), cancel, create-config, plots."""
from __future__ import annotations

import pytest

from apps.training.models import TrainingRun
from tests.permission_suite import check_private_to_owner

from .conftest import MIN, T0, ms_dt
from apps.training import services as training_services

from .training_fixtures import END, _optuna_connections_closed, training_kwargs, training_market  # noqa: F401

BODY = {"strategy_key": "sma_cross", "timeframe": "1m", "start": ms_dt(T0).isoformat(), "end": ms_dt(END).isoformat(),
        "objective": "sharpe", "min_trades": 3, "n_trials": 12, "folds": 3, "holdout_share": 0.2, "seed": 7,
        "n_workers": 2, "top_n": 2, "fee": 0.0005}


@pytest.fixture
def post(api, training_market, django_capture_on_commit_callbacks):
    def do(user, **overrides):
        with django_capture_on_commit_callbacks(execute=True):
            return api(user).post("/api/v1/training-runs/", {**BODY, "market": training_market.pk, **overrides},
                                  format="json")

    return do


def test_create_runs_and_returns_results(post, api, alice):
    response = post(alice)
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    detail = api(alice).get(f"/api/v1/training-runs/{run_id}/").json()
    assert detail["state"] == "succeeded" and detail["trials_done"] == 12 and detail["progress"] == 100
    assert {"folds", "holdout", "dsr", "pbo", "verdict", "configs_created"} <= set(detail["result"])
    assert detail["verdict"]["text"] and detail["best_params"]
    listed = api(alice).get("/api/v1/training-runs/").json()
    assert listed["count"] == 1 and "result" not in listed["results"][0]


def test_trials_are_paginated_and_filtered_by_state(post, api, alice):
    run_id = post(alice).json()["id"]
    page = api(alice).get(f"/api/v1/training-runs/{run_id}/trials/?page_size=5").json()
    assert page["count"] == 12 and len(page["results"]) == 5 and page["next"]
    assert [t["number"] for t in page["results"]] == [0, 1, 2, 3, 4]
    assert {"params", "value", "state", "folds", "bar_ranges"} <= set(page["results"][0])
    complete = api(alice).get(f"/api/v1/training-runs/{run_id}/trials/?state=complete&page_size=50").json()
    assert complete["count"] == TrainingRun.objects.get(pk=run_id).trials_complete
    assert {t["state"] for t in complete["results"]} == {"complete"}
    bad = api(alice).get(f"/api/v1/training-runs/{run_id}/trials/?state=lucky")
    assert bad.status_code == 400 and "state" in bad.json()["error"]["message"]


@pytest.mark.parametrize("overrides,text", [
    ({"holdout_share": 0.95}, "holdout_share: The hold-out share must be"),
    ({"objective": "luck"}, "objective"),
    ({"end": ms_dt(T0 + 520 * MIN).isoformat()}, "folds:"),
    ({"n_trials": 0}, "n_trials"),
])
def test_bad_inputs_answer_400_with_clear_messages(post, alice, overrides, text):
    response = post(alice, **overrides)
    assert response.status_code == 400
    assert text in response.json()["error"]["message"]
    assert not TrainingRun.objects.exists()


def test_create_config_from_a_trial(post, api, alice):
    run_id = post(alice).json()["id"]
    run = TrainingRun.objects.get(pk=run_id)
    trial = run.trials.filter(state="complete").first()
    response = api(alice).post(f"/api/v1/training-runs/{run_id}/create-config/", {"trial": trial.number}, format="json")
    assert response.status_code == 201, response.json()
    config = response.json()
    assert config["parameters"] == trial.params and config["stage"] == "discovery"
    assert config["provenance"] == {"training_run": run_id, "trial": trial.number}
    missing = api(alice).post(f"/api/v1/training-runs/{run_id}/create-config/", {"trial": 99}, format="json")
    assert missing.status_code == 400 and "no finished trial 99" in missing.json()["error"]["message"]


def test_plots_return_optuna_figures(post, api, alice):
    run_id = post(alice).json()["id"]
    plots = api(alice).get(f"/api/v1/training-runs/{run_id}/plots/").json()
    assert set(plots) == {"history", "importances", "slice", "contour"}
    assert plots["history"]["figure"]["data"] and "layout" in plots["history"]["figure"]
    for name in ("importances", "slice", "contour"):
        assert "figure" in plots[name] or plots[name]["message"]


def test_plots_say_when_there_are_not_enough_trials(api, alice, training_market):
    run = training_services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    plots = api(alice).get(f"/api/v1/training-runs/{run.pk}/plots/").json()
    assert "Not enough completed trials" in plots["history"]["message"]


def test_cancel_a_queued_run(api, alice, training_market):
    run = training_services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    response = api(alice).post(f"/api/v1/training-runs/{run.pk}/cancel/", {}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    again = api(alice).post(f"/api/v1/training-runs/{run.pk}/cancel/", {}, format="json")
    assert again.status_code == 400 and "nothing to cancel" in again.json()["error"]["message"]


def test_runs_are_private_to_their_owner(post, api, alice, bob, charlie, olivia):
    run = TrainingRun.objects.get(pk=post(alice).json()["id"])
    check_private_to_owner(api, list_url="/api/v1/training-runs/", obj=run, owner=alice, colleague=bob,
                           outsider=charlie, operator=olivia)
    assert api(charlie).get(f"/api/v1/training-runs/{run.pk}/trials/").status_code == 404
    assert api(charlie).get(f"/api/v1/training-runs/{run.pk}/plots/").status_code == 404
    assert api(charlie).post(f"/api/v1/training-runs/{run.pk}/create-config/", {"trial": 0},
                             format="json").status_code == 404


def test_admin_lists_runs_with_their_trials_and_cancels(post, admin_client, alice, training_market):
    run_id = post(alice).json()["id"]
    assert admin_client.get("/admin/training/trainingrun/").status_code == 200
    page = admin_client.get(f"/admin/training/trainingrun/{run_id}/change/")
    assert page.status_code == 200 and b"fast" in page.content  # the trials inline shows parameters
    queued = training_services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    admin_client.post("/admin/training/trainingrun/", {"action": "cancel_runs", "_selected_action": [queued.pk]})
    queued.refresh_from_db()
    assert queued.state == "cancelled"


def test_list_query_budget(post, api, alice, django_assert_max_num_queries):
    for _ in range(2):
        post(alice, n_workers=1)
    client = api(alice)
    with django_assert_max_num_queries(10):
        assert client.get("/api/v1/training-runs/").json()["count"] == 2
    run_id = TrainingRun.objects.first().pk
    with django_assert_max_num_queries(10):
        assert client.get(f"/api/v1/training-runs/{run_id}/trials/").json()["count"] == 12
