"""`manage.py graduate`: move a config with a reason, approve live, evaluate all (--json)."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.strategies.models import StrategyConfig

from .conftest import research


def _run(*args):
    out = StringIO()
    call_command("graduate", *args, stdout=out)
    return out.getvalue()


def test_promote_with_a_reason_prints_the_decision_json(alice, make_config):
    config = make_config(alice)
    research(config)
    body = json.loads(_run("--config", str(config.pk), "--to", "validation", "--reason", "strong OOS", "--as",
                           "alice", "--json"))
    decision = body["decision"]
    assert decision["outcome"] == "promote" and decision["actor"] == "alice" and decision["reason"] == "strong OOS"
    assert StrategyConfig.objects.get(pk=config.pk).stage == "validation"
    assert {c["name"] for c in decision["criteria"]} == {"min_trades", "min_oos_sharpe", "max_drawdown", "max_pbo",
                                                          "min_dsr"}


def test_evaluate_all_json_lists_each_decision_with_its_criteria(alice, make_config):
    good, weak = make_config(alice, name="good"), make_config(alice, name="weak")
    research(good)
    research(weak, dsr=0.1)
    body = json.loads(_run("--evaluate-all", "--json"))
    assert body["count"] == 2
    by_config = {d["config"]: d for d in body["decisions"]}
    assert by_config[good.pk]["outcome"] == "promote" and by_config[weak.pk]["outcome"] == "hold"
    [dsr] = [c for c in by_config[weak.pk]["criteria"] if c["name"] == "min_dsr"]
    assert dsr["value"] == 0.1 and dsr["passed"] is False and dsr["threshold"] > 0.1
    again = json.loads(_run("--evaluate-all", "--json"))  # good is now held in validation: one new hold
    assert [(d["config"], d["outcome"], d["from_stage"]) for d in again["decisions"]] == [(good.pk, "hold",
                                                                                          "validation")]
    assert json.loads(_run("--evaluate-all", "--json"))["count"] == 0  # nothing changed


@pytest.mark.parametrize("args, message", [
    (["--config", "999999", "--to", "paper", "--reason", "x", "--as", "alice"], "No strategy config 999999."),
    (["--config", "{pk}", "--to", "validation", "--as", "alice"], "Say why"),
    (["--config", "{pk}", "--to", "live", "--reason", "x", "--as", "alice"], "one stage at a time"),
    (["--config", "{pk}", "--to", "validation", "--reason", "x", "--as", "nobody"], "No active user 'nobody'."),
    (["--approve-live", "1", "--reason", "x"], "--as USERNAME"),
    (["--config", "{pk}", "--to", "moon", "--reason", "x", "--as", "alice"], "Unknown stage 'moon'"),
])
def test_errors_are_one_clear_line(alice, make_config, args, message):
    config = make_config(alice)
    research(config)
    with pytest.raises(CommandError) as exc:
        _run(*[a.replace("{pk}", str(config.pk)) for a in args])
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert StrategyConfig.objects.get(pk=config.pk).stage == "discovery"


def test_command_errors_exit_non_zero_with_one_line_on_stderr():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "manage.py", "graduate", "--approve-live", "1", "--reason", "x"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip() == "CommandError: Say who decides (the second person): --as USERNAME."


def test_without_as_the_config_owner_answers_and_live_goes_through_a_second_person(olivia, make_config):
    from apps.accounts.roles import OPERATOR
    from tests.conftest import make_user

    otto = make_user("otto", OPERATOR, is_staff=True)  # holds approve_live, but not for his own request
    config = make_config(otto, stage="testnet")
    filed = json.loads(_run("--config", str(config.pk), "--to", "live", "--reason", "30 days clean", "--json"))
    request = filed["live_request"]
    assert request["requested_by"] == "otto" and request["status"] == "pending"
    with pytest.raises(CommandError, match="Four eyes"):
        _run("--approve-live", str(request["id"]), "--reason", "mine", "--as", "otto")
    approved = json.loads(_run("--approve-live", str(request["id"]), "--reason", "checked", "--as", "olivia",
                               "--json"))
    assert approved["decision"]["to_stage"] == "live" and approved["decision"]["actor"] == "olivia"
    assert StrategyConfig.objects.get(pk=config.pk).stage == "live"
