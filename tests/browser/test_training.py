"""Training in a real browser: start a run from the form, watch the live trial feed fill, read
the verdict, folds and plots, create a config from a trial."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from apps.training import services as training_services, tasks
from apps.training.models import TrainingRun
from apps.marketdata import services as md
from apps.strategies.models import StrategyConfig
from tests.backtests.conftest import wave_candles
from tests.training.training_fixtures import _optuna_connections_closed  # noqa: F401
from tests.browser.conftest import SCREENSHOTS

N_TRIALS = 8  # per study: 3 folds + the final study
TOTAL = 4 * N_TRIALS


@pytest.fixture
def market(live_url):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="WAV/USD", amount_step="0.001")
    md.candles_ingest(market=market, timeframe="1m", rows=wave_candles(4000), source="test")
    return market


@pytest.fixture
def threaded_workers(monkeypatch):
    """Workers run in background threads (like Celery workers on queue `training`), each trial
    slowed a little so the page watches the feed fill rather than finding it full."""
    threads = []
    record = training_services._record_trial

    def slow_record(run, study, frozen):
        time.sleep(0.5)
        record(run, study, frozen)

    def work(run_id, worker_id):
        try:
            training_services.training_execute_worker(run_id, worker_id)
        finally:
            connection.close()

    def delay(run_id, worker_id):
        thread = threading.Thread(target=work, args=(run_id, worker_id), daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(training_services, "_record_trial", slow_record)
    monkeypatch.setattr(tasks.run_training_worker, "delay", delay)
    yield threads
    for thread in threads:
        thread.join(timeout=60)


def shot(page, name):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"training_{name}.png"), full_page=True)


def test_start_a_run_and_watch_the_live_trial_feed(login, page, live_url, alice, market, threaded_workers):
    login(alice)
    page.goto(f"{live_url}/training/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#tr-dataset")).to_contain_text("WAV/USD · 1m (4,000 candles)")
    expect(page.locator("#tr-gaps")).to_contain_text("No gaps")
    page.select_option("#tr-strategy", "sma_cross")
    expect(page.locator("#tr-space tbody")).to_contain_text("fast")
    page.fill("#tr-trials", str(N_TRIALS))
    page.fill("#tr-folds", "3")
    page.fill("#tr-holdout", "20")
    page.fill("#tr-workers", "2")
    page.fill("#tr-min-trades", "3")
    page.fill("#tr-top", "3")
    page.fill("#tr-fee", "0.05")
    shot(page, "form")
    page.click("#tr-submit")

    page.wait_for_url(f"{live_url}/training/*/", timeout=60_000)  # workers share the server process
    run = TrainingRun.objects.get()
    assert page.url.endswith(f"/training/{run.pk}/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    feed = page.locator("#trial-feed tbody tr")
    expect(feed.first).to_be_visible(timeout=30_000)
    shot(page, "live")
    expect(feed).to_have_count(TOTAL, timeout=90_000)
    expect(page.locator("#trial-feed tbody tr.fresh").first).to_be_visible()  # rows that arrived live
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=60_000)
    run.refresh_from_db()
    # Every counter on the page is the same sentence from the server's counters.
    expect(page.locator("#trial-count")).to_have_text(run.trials_message)
    assert run.trials_message.startswith(f"{TOTAL} of {TOTAL} trials (4 studies × {N_TRIALS})")

    expect(page.locator("#verdict")).to_have_text(run.verdict["text"])
    expect(page.locator("#verdict-reasons li")).to_have_count(len(run.verdict["reasons"]))
    folds = page.locator("#fold-table tbody tr")
    expect(folds).to_have_count(3)
    for fold in run.result["folds"]:  # each fold's own chosen parameters, next to its IS and OOS figures
        row = page.locator(f"#fold-table tr[data-fold='{fold['index']}']")
        expect(row).to_contain_text(", ".join(f"{k}={v}" for k, v in fold["params"].items()))
    expect(page.locator("#stats-table [data-stat=wfe]")).to_be_visible()
    for trial in run.trials.exclude(penalty=""):  # a penalty is never shown as a value
        row = page.locator(f"#trial-feed tr[data-study='{trial.study}'][data-number='{trial.number}']")
        expect(row.locator("[data-note]")).to_have_text(trial.penalty)
        expect(row.locator("[data-value]")).to_have_text("—")
    expect(page.locator("#holdout-table [data-holdout=sharpe]")).to_be_visible()
    expect(page.locator("#best-chart .main-svg").first).to_be_visible()
    expect(page.locator("#plot-history .main-svg").first).to_be_visible(timeout=30_000)
    expect(page.locator("#candidates-table tbody tr")).to_have_count(len(run.result["candidates"]))
    shot(page, "results")

    configs_before = StrategyConfig.objects.count()
    button = page.locator("#trial-feed button[data-config][data-study='fold-0']").first
    number = int(button.get_attribute("data-config"))
    button.click()
    expect(button).to_have_text("Config created")
    assert StrategyConfig.objects.count() == configs_before + 1
    assert StrategyConfig.objects.filter(provenance__training_run=run.pk, provenance__training_study="fold-0",
                                         provenance__trial=number).exists()
    saved = run.result["candidates"][0]["number"]
    again = page.locator(f"#trial-feed button[data-config='{saved}'][data-study='final']")
    again.click()  # already saved as a top candidate: the page says so, nothing is duplicated
    expect(again).to_have_text(f"Saved as #{run.result['configs_created'][0]}")
    assert StrategyConfig.objects.count() == configs_before + 1

    page.goto(f"{live_url}/training/")
    row = page.locator(f"#tr-runs tr[data-run='{run.pk}']")
    expect(row.locator("[data-state]")).to_have_text("succeeded")
    expect(row.locator("[data-trials]")).to_have_text(f"{TOTAL} / {TOTAL}")
    shot(page, "list")


def test_train_several_strategies_at_once_from_the_form(login, page, live_url, alice, market, threaded_workers):
    login(alice)
    page.goto(f"{live_url}/training/")
    expect(page.locator("#tr-dataset")).to_contain_text("WAV/USD")
    page.select_option("#tr-strategy", "sma_cross")
    for field, value in (("#tr-trials", "4"), ("#tr-folds", "2"), ("#tr-workers", "1"), ("#tr-min-trades", "3"),
                         ("#tr-top", "2")):
        page.fill(field, value)
    page.click("#tr-more-strategies-box summary")
    # Strategies whose converged warm-up fits the 4000-bar fixture (ema_cross and macd need up to
    # 3954 and 3163 bars over their whole search space).
    page.check("#tr-more-strategies input[value=rsi_reversion]")
    page.check("#tr-more-strategies input[value=bollinger_breakout]")
    page.click("#tr-submit")
    expect(page.locator("#toasts")).to_contain_text("3 training runs queued (3 strategies × 1 data series)")
    expect(page.locator("#tr-runs tbody tr")).to_have_count(3)
    runs = list(TrainingRun.objects.all())
    assert {r.strategy_key for r in runs} == {"sma_cross", "rsi_reversion", "bollinger_breakout"} \
        and len({r.batch for r in runs}) == 1
    for row in page.locator("#tr-runs tbody tr").all():
        expect(row.locator("[data-state]")).to_have_text("succeeded", timeout=60_000)
    shot(page, "batch")


def test_an_interrupted_run_says_so_and_resume_finishes_it(login, page, live_url, alice, market, threaded_workers):
    from apps.training.services import training_create
    from tradepulse.core import jobrunner
    from tests.backtests.conftest import T0, ms_dt

    run = training_create(owner=alice, market=market, timeframe="1m", strategy_key="sma_cross", start=ms_dt(T0),
                          end=ms_dt(T0 + 4000 * 60_000), n_trials=4, folds=2, min_trades=3, top_n=1, seed=3,
                          enqueue=False)
    run.claim(worker="gone:1:MainThread")  # a server that stopped while it ran
    TrainingRun.objects.filter(pk=run.pk).update(message="0 of 12 trials (3 studies × 4): 0 complete, 0 pruned")
    run.refresh_from_db()
    jobrunner.finish_job(training_services.JOB, run, "failed", error_code=jobrunner.INTERRUPTED,
                         error=jobrunner.interrupted_error(run))
    login(alice)
    page.goto(f"{live_url}/training/")
    expect(page.locator(f"#tr-runs tr[data-run='{run.pk}'] [data-state]")).to_have_text("interrupted")
    page.goto(f"{live_url}/training/{run.pk}/")
    expect(page.locator("#run-state")).to_have_text("interrupted")
    expect(page.locator("#run-error")).to_contain_text("Interrupted when the server stopped at ")
    expect(page.locator("#btn-cancel")).to_be_hidden()
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        # The status card with its Retry button fits the screen (the charts further down are not this test's).
        box = page.locator("#run-status").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        retry = page.locator("#btn-retry").bounding_box()
        assert retry["x"] + retry["width"] <= box["x"] + box["width"]
        shot(page, f"interrupted_{width}")
    page.click("#btn-retry")
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=90_000)
    expect(page.locator("#btn-retry")).to_be_hidden()
    run.refresh_from_db()
    assert run.state == "succeeded" and run.trials_done == 12 and run.error == ""
