"""Training API: create, list, detail, trials (paginated, by state), cancel, create-config, plots."""
from __future__ import annotations

import pytest

from apps.accounts.services import quota_set
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
    assert detail["state"] == "succeeded" and detail["progress"] == 100
    # The counters all say the same: 3 fold studies + the final one, 12 trials each.
    assert detail["trials_done"] + detail["trials_failed"] == detail["trials_budget"] == 48
    assert detail["n_studies"] == 4 and detail["message"].startswith("48 of 48 trials")
    result = detail["result"]
    assert result["trials"]["count"] == 48
    assert [f["index"] for f in result["folds"]] == [0, 1, 2]
    for fold in result["folds"]:
        assert fold["params"] and "sharpe" in fold["in_sample"]["metrics"] and "sharpe" in fold["out_of_sample"]["metrics"]
    assert "walkforward_efficiency" in result["out_of_sample"] and "efficiency" in result["walkforward"]
    assert detail["verdict"] == result["verdict"] and detail["best_params"] == result["best"]["params"]
    listed = api(alice).get("/api/v1/training-runs/").json()
    assert listed["count"] == 1 and "result" not in listed["results"][0]


def test_trials_are_paginated_and_filtered_by_state(post, api, alice):
    run_id = post(alice).json()["id"]
    page = api(alice).get(f"/api/v1/training-runs/{run_id}/trials/?page_size=5").json()
    assert page["count"] == 48 and len(page["results"]) == 5 and page["next"]
    # In the order they finished: the first fold's study runs first.
    assert [(t["study"], t["number"]) for t in page["results"]] == [("fold-0", n) for n in range(5)]
    assert {"params", "value", "penalty", "state", "study", "fold", "windows", "bar_ranges"} <= set(page["results"][0])
    complete = api(alice).get(f"/api/v1/training-runs/{run_id}/trials/?state=complete&page_size=100").json()
    assert complete["count"] == TrainingRun.objects.get(pk=run_id).trials_complete
    assert {t["state"] for t in complete["results"]} == {"complete"}
    final = api(alice).get(f"/api/v1/training-runs/{run_id}/trials/?study=final&page_size=100").json()
    assert final["count"] == 12 and {(t["study"], t["fold"]) for t in final["results"]} == {("final", None)}
    bad = api(alice).get(f"/api/v1/training-runs/{run_id}/trials/?state=lucky")
    assert bad.status_code == 400 and "state" in bad.json()["error"]["message"]
    bad = api(alice).get(f"/api/v1/training-runs/{run_id}/trials/?study=fold-9")
    assert bad.status_code == 400 and "fold-0, fold-1, fold-2, final" in bad.json()["error"]["message"]


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


def test_create_config_from_a_trial_once(post, api, alice):
    run_id = post(alice).json()["id"]
    run = TrainingRun.objects.get(pk=run_id)
    saved = {c["number"] for c in run.result["candidates"]}
    trial = run.trials.filter(state="complete", study="final").exclude(number__in=saved).first()
    url = f"/api/v1/training-runs/{run_id}/create-config/"
    response = api(alice).post(url, {"trial": trial.number}, format="json")
    assert response.status_code == 201, response.json()
    config = response.json()
    assert config["parameters"] == trial.params and config["stage"] == "discovery" and config["created"]
    assert config["provenance"] == {"training_run": run_id, "training_study": "final", "trial": trial.number}
    again = api(alice).post(url, {"trial": trial.number}, format="json")
    assert again.status_code == 200 and again.json()["id"] == config["id"] and not again.json()["created"]
    candidate = run.result["candidates"][0]
    existing = api(alice).post(url, {"trial": candidate["number"]}, format="json")
    assert existing.status_code == 200 and existing.json()["id"] == run.result["configs_created"][0]
    missing = api(alice).post(url, {"trial": 99}, format="json")
    assert missing.status_code == 400 and "no finished trial 99" in missing.json()["error"]["message"]


def test_plots_return_optuna_figures(post, api, alice):
    run_id = post(alice).json()["id"]
    plots = api(alice).get(f"/api/v1/training-runs/{run_id}/plots/").json()
    assert set(plots) == {"history", "importances", "slice", "contour"}
    for name in ("history", "importances", "slice", "contour"):
        assert plots[name]["figure"]["data"] and "layout" in plots[name]["figure"], plots[name]
    # The figures draw the final study (whose parameters are offered): 12 trials in the history.
    # Penalised trials (their value is a rule, not a measurement) are not drawn.
    history = plots["history"]["figure"]["data"][0]
    final = TrainingRun.objects.get(pk=run_id).trials.filter(study="final", state="complete")
    assert len(history["x"]) == final.filter(penalty="").count()
    assert plots["history"]["left_out"] == final.exclude(penalty="").count()


def test_plots_say_when_there_are_not_enough_trials(api, alice, training_market):
    run = training_services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    plots = api(alice).get(f"/api/v1/training-runs/{run.pk}/plots/").json()
    assert "Not enough measured trials yet (0)" in plots["history"]["message"]


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


def test_list_query_budget(post, api, alice, training_market, django_assert_max_num_queries):
    quota_set(key="training_concurrent", value=16, user=alice, reason="the test queues 16 runs")
    run_id = post(alice, n_workers=1).json()["id"]
    for _ in range(15):  # enough rows that one query per row would blow the budget
        training_services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    client = api(alice)
    with django_assert_max_num_queries(10):
        assert client.get("/api/v1/training-runs/?page_size=50").json()["count"] == 16
    with django_assert_max_num_queries(10):
        assert client.get(f"/api/v1/training-runs/{run_id}/trials/?page_size=100").json()["count"] == 48
