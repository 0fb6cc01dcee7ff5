"""`manage.py backtest`: JSON on stdout with the documented keys; one clear error line otherwise."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.backtests.models import BacktestRun

from .conftest import MIN, T0


def run_json(*args) -> dict:
    out = StringIO()
    call_command("backtest", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


ARGS = ["--strategy", "sma_cross", "--params", '{"fast": 10, "slow": 30}', "--exchange", "test-files",
        "--symbol", "SYN/USD", "--timeframe", "1m", "--stop-loss", "0.02", "--take-profit", "0.04"]


def test_json_summary_has_every_documented_key(market):
    data = run_json(*ARGS)
    assert set(data) >= {"metrics", "trades", "open_position", "final_equity", "max_drawdown", "timings"}
    assert set(data["timings"]) >= {"load_s", "signals_s", "engine_s", "total_s"}
    assert data["candles"] == 1000 and data["metrics"]["trade_count"] == len(data["trades"]) > 0
    trade = data["trades"][0]
    assert set(trade) >= {"entry_time", "exit_time", "entry_price", "exit_price", "size", "fees", "pnl", "return",
                          "exit_reason"}
    # The market's amount step (0.001) is the default size step: sizes are multiples of it.
    assert all(abs(t["size"] / 0.001 - round(t["size"] / 0.001)) < 1e-6 for t in data["trades"])
    assert not BacktestRun.objects.exists()


def test_range_options_and_saving_the_run(market, alice):
    data = run_json(*ARGS, "--start", str(T0 + 100 * MIN), "--end", "2023-11-15T06:00", "--save-as", "alice")
    assert data["candles"] == 380  # from 23:40 (22:00 + 100 min) to 06:00
    run = BacktestRun.objects.get(pk=data["saved_run"])
    assert run.owner == alice and run.state == "succeeded" and run.final_equity == pytest.approx(data["final_equity"])


@pytest.mark.parametrize("args,message", [
    (["--params", "{oops"], "--params is not valid JSON"),
    (["--symbol", "NOPE/USD"], "No stored market NOPE/USD"),
    (["--params", '{"fast": 40, "slow": 20}'], "fast"),
    (["--timeframe", "7m"], "timeframe"),
])
def test_bad_input_is_one_clear_error(market, args, message):
    merged = list(ARGS)
    for flag, value in zip(args[::2], args[1::2], strict=True):
        merged[merged.index(flag) + 1] = value
    with pytest.raises(CommandError, match=message) as err:
        call_command("backtest", *merged)
    assert "\n" not in str(err.value)


def test_gaps_are_refused_unless_allowed(gappy_market):
    args = [a if a != "SYN/USD" else "GAP/USD" for a in ARGS]
    with pytest.raises(CommandError, match=r"1 gap\(s\) in the data"):
        call_command("backtest", *args)
    assert run_json(*args, "--allow-gaps")["gaps"][0]["bars"] == 30


def test_save_as_stores_audits_and_prints_the_job_row(market, alice):
    """--save-as goes through the BacktestRun job row like the dashboard: stored, run by the job
    runner, audited as the user by way of the command, and what is printed is the stored row."""
    from apps.audit.models import AuditEvent

    data = run_json(*ARGS, "--save-as", "alice")
    run = BacktestRun.objects.get(pk=data["saved_run"])
    assert (data["state"], data["owner"]) == ("succeeded", "alice") == (run.state, run.owner.username)
    assert len(data["trades"]) == run.trades.count() == run.metrics["trade_count"] > 0
    assert data["metrics"] == run.metrics and data["fingerprint"] == run.fingerprint
    events = AuditEvent.objects.filter(target_id=str(run.pk), action__startswith="backtests.run.").order_by("id")
    assert [(e.action, e.actor_id, e.via) for e in events] == [
        ("backtests.run.created", alice.pk, "command:backtest"), ("backtests.run.finished", alice.pk, "command:backtest")]
    out = StringIO()
    call_command("backtest", *ARGS, "--save-as", "alice", stdout=out)
    second = BacktestRun.objects.exclude(pk=run.pk).get()
    assert f"trades {second.metrics['trade_count']}" in out.getvalue()
    assert f"final equity {second.final_equity:.2f}" in out.getvalue()
    assert f"stored as backtest #{second.pk} (succeeded), owner alice" in out.getvalue()
