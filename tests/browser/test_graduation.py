"""The graduation board and a config's lineage in a real browser: promote from the board with a
reason and see the decision with its criteria arrive over the WebSocket; the live-approval queue
offers approval to a second person only."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from apps.accounts.roles import OPERATOR
from apps.graduation import services
from apps.graduation.models import GraduationDecision, GraduationPolicy
from apps.strategies.models import StrategyConfig
from apps.strategies.services import config_create, config_evidence_record
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import make_user
from tests.owned_factories import _file_market


@pytest.fixture(autouse=True)
def default_policies(transactional_db):
    """The data migration's policies: a transactional test before this one flushed them."""
    from importlib import import_module

    from django.apps import apps

    if not GraduationPolicy.objects.exists():
        import_module("apps.graduation.migrations.0002_default_policies").create(apps, None)


def _config(owner, name, stage="discovery", strategy_key="sma_cross", parameters=None, **figures):
    config = config_create(owner=owner, strategy_key=strategy_key, market=_file_market(), timeframe="1m",
                           parameters={"fast": 10, "slow": 30} if parameters is None else parameters, name=name,
                           stage=stage)
    row = {"trades": 80, "sharpe": 1.4, "max_drawdown": 0.12, "total_return": 0.3, "oos_sharpe": 1.2, "dsr": 0.97,
           "pbo": 0.1, **figures}
    config_evidence_record(config=config, source="training_oos", period_start=datetime(2024, 1, 1, tzinfo=UTC),
                           period_end=datetime(2024, 6, 1, tzinfo=UTC), fingerprint="cd" * 32, **row)
    return config


WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')].filter((el) => {
  const r = el.getBoundingClientRect(); return r.width > 0 && r.right > window.innerWidth + 1;
}).slice(0, 8).map((el) => `${el.tagName}#${el.id}.${el.className}`)"""


def _no_horizontal_scroll(page):
    wide = page.evaluate(WIDER_THAN_SCREEN)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), f"horizontal scroll: {wide}"


def test_promote_from_the_board_with_a_reason_and_see_the_decision_live(login, page, live_url, alice, charlie):
    mine = _config(alice, "trend A")
    _config(alice, "weak B", oos_sharpe=0.1)
    _config(alice, "momentum M", strategy_key="macd", parameters={})
    _config(charlie, "not yours")
    policy = GraduationPolicy.objects.get(kind="promote", from_stage="discovery")
    login(alice)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_url}/graduation/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    discovery = page.locator('.gr-col[data-stage="discovery"]')
    expect(discovery.locator(".gr-card")).to_have_count(3)
    expect(page.locator("#gr-board")).not_to_contain_text("not yours")
    card = page.locator(f'[data-card="{mine.pk}"]')
    expect(card).to_contain_text("1.20")  # OOS Sharpe on the card
    expect(page.locator("#gr-decisions")).to_contain_text("No decision yet.")
    page.select_option("#gr-strategy", "macd")
    expect(page.locator(".gr-card")).to_have_count(1)
    expect(page.locator("#gr-count")).to_have_text("1 of 3 configs")
    page.select_option("#gr-strategy", "")
    expect(page.locator(".gr-card")).to_have_count(3)
    page.screenshot(path=str(SCREENSHOTS / "graduation_board_1440.png"), full_page=True)

    card.get_by_role("button", name="Promote").click()
    expect(page.locator("#gr-dialog")).to_be_visible()
    page.click("#gr-confirm")  # no reason: refused in the dialog
    expect(page.locator("#gr-dialog-error")).to_contain_text("Say why")
    page.fill("#gr-reason", "strong out-of-sample, low PBO")
    page.click("#gr-confirm")
    expect(page.locator("#gr-dialog")).to_be_hidden()

    decision = page.locator("#gr-decisions .gr-decision").first
    expect(decision).to_contain_text("trend A")
    expect(decision).to_contain_text("Discovery → Validation")
    expect(decision).to_contain_text("by alice")
    expect(decision).to_contain_text("strong out-of-sample, low PBO")
    sharpe = decision.locator('tr[data-criterion="min_oos_sharpe"]')
    expect(sharpe.locator("[data-value]")).to_have_text("1.20")
    expect(sharpe.locator("[data-threshold]")).to_have_text(f">= {policy.min_oos_sharpe:.2f}")
    expect(sharpe).to_contain_text("pass")
    expect(decision.locator("tr[data-criterion]")).to_have_count(5)
    expect(page.locator(f'.gr-col[data-stage="validation"] [data-card="{mine.pk}"]')).to_be_visible()
    assert StrategyConfig.objects.get(pk=mine.pk).stage == "validation"
    stored = GraduationDecision.objects.get(config=mine)
    assert stored.actor == alice and stored.reason == "strong out-of-sample, low PBO"

    # A decision made elsewhere (the policy's evaluation) arrives too.
    weak = StrategyConfig.objects.get(name="weak B")
    services.config_evaluate(config=weak)
    held = page.locator(f'#gr-decisions .gr-decision[data-config="{weak.pk}"]')
    expect(held).to_contain_text("holds in Discovery")
    expect(held.locator('tr[data-criterion="min_oos_sharpe"]')).to_contain_text("fail")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(f'.gr-col[data-stage="validation"] [data-card="{mine.pk}"]')).to_be_visible()
    expect(page.locator("#gr-decisions .gr-decision")).to_have_count(2)
    _no_horizontal_scroll(page)
    page.screenshot(path=str(SCREENSHOTS / "graduation_board_390.png"), full_page=True)


def test_lineage_page_and_the_live_approval_queue_for_a_second_person(login, page, live_url, olivia):
    otto = make_user("otto", OPERATOR, is_staff=True)
    config = _config(otto, "carry C", stage="testnet")
    services.live_request_create(config=config, actor=otto, reason="30 days clean on testnet")
    login(olivia)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_url}/graduation/configs/{config.pk}/")
    expect(page.locator("#gr-stage")).to_have_text("Testnet")
    expect(page.locator("#gr-pending")).to_contain_text("by otto: 30 days clean on testnet")
    expect(page.locator("#gr-pending").get_by_role("button", name="Approve…")).to_be_visible()
    expect(page.locator("#gr-evidence tr[data-source=training_oos]")).to_contain_text("1.20")
    expect(page.locator(".gr-lineage")).to_contain_text("cdcdcdcdcdcdcdcd")
    expect(page.locator("#gr-stage-measures")).to_contain_text("not measured")
    page.screenshot(path=str(SCREENSHOTS / "graduation_config_1440.png"), full_page=True)

    page.goto(f"{live_url}/graduation/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    row = page.locator("#gr-queue-table tr[data-live-request]")
    expect(row).to_contain_text("carry C")
    expect(row).to_contain_text("otto")
    expect(row).to_contain_text("4 criteria not met when requested")  # testnet → live: nothing measured yet
    row.get_by_role("button", name="Approve").click()
    page.fill("#gr-reason", "fills match the replay")
    page.click("#gr-confirm")
    decision = page.locator(f'#gr-decisions .gr-decision[data-config="{config.pk}"]').first
    expect(decision).to_contain_text("Testnet → Live")
    expect(decision).to_contain_text("by olivia")
    expect(page.locator("#gr-queue-table")).to_contain_text("Nothing waiting.")
    assert StrategyConfig.objects.get(pk=config.pk).stage == "live"

    page.goto(f"{live_url}/graduation/configs/{config.pk}/")
    expect(page.locator("#gr-decisions .gr-decision")).to_have_count(1)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#gr-decisions .gr-decision")).to_have_count(1)
    _no_horizontal_scroll(page)
    page.screenshot(path=str(SCREENSHOTS / "graduation_config_390.png"), full_page=True)


def test_the_requester_sees_their_request_waiting_for_someone_else(login, page, live_url):
    otto = make_user("otto", OPERATOR, is_staff=True)
    config = _config(otto, "carry D", stage="testnet")
    services.live_request_create(config=config, actor=otto, reason="ready")
    login(otto)
    page.goto(f"{live_url}/graduation/")
    row = page.locator("#gr-queue-table tr[data-live-request]")
    expect(row).to_contain_text("your request: another person approves")
    expect(row.get_by_role("button", name="Approve")).to_have_count(0)


def test_an_operator_edits_a_policy_with_a_reason_on_the_board(login, page, live_url, olivia):
    from apps.audit.models import AuditEvent

    policy = GraduationPolicy.objects.get(kind="promote", from_stage="discovery")
    login(olivia)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_url}/graduation/")
    row = page.locator('#gr-policies tr[data-policy="promote-discovery"]')
    expect(row.locator('[data-field="min_trades"]')).to_have_text(str(policy.min_trades))
    row.get_by_role("button", name="Edit").click()
    page.fill('#gr-policy-fields input[name="min_trades"]', "45")
    page.fill('#gr-policy-fields input[name="max_pbo"]', "")  # not applied any more
    page.click("#gr-policy-save")
    expect(page.locator("#gr-policy-error")).to_contain_text("Say why")
    page.fill("#gr-policy-reason", "fewer trades in slow markets")
    page.click("#gr-policy-save")
    expect(row.locator('[data-field="min_trades"]')).to_have_text("45")
    expect(row.locator('[data-field="max_pbo"]')).to_have_text("—")
    expect(row).to_contain_text("olivia: fewer trades in slow markets")
    policy.refresh_from_db()
    assert (policy.min_trades, policy.max_pbo) == (45, None)
    event = AuditEvent.objects.get(action="graduation.policy.updated")
    assert event.reason == "fewer trades in slow markets" and event.changes["min_trades"] == [30, 45]


def test_traders_read_policies_but_get_no_edit_button(login, page, live_url, alice):
    login(alice)
    page.goto(f"{live_url}/graduation/")
    expect(page.locator("#gr-policies tbody tr")).to_have_count(8)
    expect(page.locator("#gr-policies button")).to_have_count(0)


def test_promotion_to_paper_on_an_account_chosen_in_the_dialog(login, page, live_url, alice):
    from decimal import Decimal

    from apps.trading.models import Deployment
    from apps.trading.services.accounts import account_create

    config = _config(alice, "trend P", stage="validation")
    for name in ("one", "two"):
        account_create(owner=alice, name=name, exchange=_file_market().exchange, mode="paper",
                       paper_balance=Decimal("10000"), paper_currency="USD")
    login(alice)
    page.goto(f"{live_url}/graduation/")
    page.locator(f'[data-card="{config.pk}"]').get_by_role("button", name="Promote").click()
    expect(page.locator("#gr-account-box")).to_be_visible()
    page.select_option("#gr-account", label="two")
    page.fill("#gr-reason", "paper on the second account")
    page.click("#gr-confirm")
    decision = page.locator(f'#gr-decisions .gr-decision[data-config="{config.pk}"]').first
    expect(decision).to_contain_text("Validation → Paper")
    deployment = Deployment.objects.get(config=config)
    assert deployment.account.name == "two" and deployment.state == "active"
