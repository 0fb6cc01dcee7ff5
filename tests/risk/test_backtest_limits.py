"""What the limits would have done to a backtest (off by default; the run never changes): with no
limit the replay gives the stored run's trades exactly; a notional limit resizes the entries,
named in the result; through the API and the command as well."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from apps.backtests.models import BacktestRun
from apps.risk.backtest import backtest_with_limits
from tests.owned_factories import MIN, T0, _dt, _file_market, backtest_run

from .conftest import set_limits

pytestmark = pytest.mark.usefixtures("no_limits")


@pytest.fixture
def run(alice):
    from apps.backtests.services import backtest_execute

    r = backtest_run(alice)
    backtest_execute(r.pk)
    r.refresh_from_db()
    assert r.state == "succeeded" and r.metrics["trade_count"] > 0
    return r


def test_with_no_limit_the_replay_is_the_backtest(run):
    data = backtest_with_limits(run)
    assert data["with_limits"]["trades"] == data["without_limits"]["trades"] == run.metrics["trade_count"]
    assert data["with_limits"]["final_equity"] == pytest.approx(run.final_equity, rel=1e-9)
    assert data["entries"]["resized"] == data["entries"]["rejected"] == 0


def test_a_run_with_history_before_its_start_replays_with_its_warmup(alice):
    """The run read `warmup_bars` stored candles before its start (its first bars could trade);
    the replay reads the same ones and starts flat at the same bar, so it trades as the run did."""
    from apps.backtests.services import backtest_create, backtest_execute

    r = backtest_create(owner=alice, market=_file_market(), timeframe="1m", start=_dt(T0 + 150 * MIN),
                        end=_dt(T0 + 400 * MIN), strategy_key="sma_cross", enqueue=False)
    backtest_execute(r.pk)
    r.refresh_from_db()
    assert r.state == "succeeded" and r.warmup_bars > 0 and r.warmup_missing == 0
    first = r.trades.order_by("number").first()
    assert first.entry_time < _dt(T0 + (150 + r.warmup_bars) * MIN)  # a trade the warm-up made possible
    data = backtest_with_limits(r)
    assert data["with_limits"]["trades"] == r.trades.count() == r.metrics["trade_count"]
    assert data["with_limits"]["final_equity"] == pytest.approx(r.final_equity, rel=1e-9)
    assert data["with_limits"]["open_position"] == (pytest.approx(r.open_position) if r.open_position else None)
    assert data["entries"]["resized"] == data["entries"]["rejected"] == 0


def test_a_notional_limit_resizes_every_entry_and_the_result_says_so(run):
    set_limits("user", run.owner, position_notional_max="1000")
    data = backtest_with_limits(run)
    assert data["entries"]["resized"] == data["entries"]["approved"] + data["entries"]["resized"] > 0
    assert data["by_limit"] == {"position_notional_max": data["entries"]["resized"]}
    assert "Position notional limit 1000 at User alice" in data["examples"][0]["reasons"][0]
    assert data["with_limits"]["final_equity"] != pytest.approx(run.final_equity)
    assert BacktestRun.objects.get(pk=run.pk).final_equity == run.final_equity  # the run itself is untouched


def test_api_and_command_give_the_same_answer(api, alice, bob, run):
    set_limits(total_exposure_pct="10")
    body = api(alice).get(f"/api/v1/risk/backtest/{run.pk}/").json()
    assert body["by_limit"] == {"total_exposure_pct": body["entries"]["resized"]}
    assert api(bob).get(f"/api/v1/risk/backtest/{run.pk}/").status_code == 404
    out = StringIO()
    call_command("risk", "backtest", "--run", str(run.pk), "--json", stdout=out)
    assert json.loads(out.getvalue())["with_limits"] == body["with_limits"]
