"""Trading pages in a real browser: activate a paper deployment through the reason dialog, then
watch its orders, position and equity change live (WebSocket events, no reload, no polling), on
the deployment page and on the overview; the account page; both at desktop and phone widths with
no horizontal scroll."""
from __future__ import annotations

from decimal import Decimal

from playwright.sync_api import expect

from apps.audit.models import AuditEvent
from apps.trading.models import Deployment, DeploymentState, Order, OrderStatus, PortfolioSnapshot
from apps.trading.templatetags.trading_format import amount, signed_money
from tests.browser.conftest import SCREENSHOTS
from tests.trading.surfaces import EngineRun, make_deployment

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}


def shots(page, name):
    """Screenshots at 1440x900 and 390x844; the page must not scroll sideways at 390 px."""
    SCREENSHOTS.mkdir(exist_ok=True)
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(300)  # charts resize
        page.screenshot(path=str(SCREENSHOTS / f"trading_{name}_{label}.png"), full_page=True)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest('.scroll-x'))
            .slice(0, 5).map((el) => el.tagName + '#' + el.id + '.' + el.className)""")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {w}px: {wide}"
    page.set_viewport_size({"width": 1400, "height": 900})


signed = signed_money


def money(value) -> str:
    return f"{Decimal(value):,.2f}"


def latest_equity(deployment) -> Decimal:
    return PortfolioSnapshot.objects.filter(deployment=deployment).order_by("-time", "-pk").first().equity


def test_activate_a_paper_deployment_and_watch_it_trade_live(login, page, live_url, alice):
    run = EngineRun(alice, activate=False)
    d = run.deployment
    login(alice)
    page.goto(f"{live_url}/trading/deployments/{d.pk}/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#no-orders")).to_contain_text("Activate the deployment")
    expect(page.locator("#equity-empty")).to_be_visible()

    # activate through the reason dialog: an empty reason is refused on the page
    page.click("[data-verb=activate]")
    expect(page.locator("#reason-dialog")).to_be_visible()
    page.click("#reason-submit")
    expect(page.locator("#reason-error")).to_contain_text("Say why")
    page.fill("#reason-text", "paper run of the SMA config")
    page.click("#reason-submit")
    expect(page.locator("#deployment-state")).to_have_text("Active")
    expect(page.locator("#state-reason")).to_contain_text("paper run of the SMA config")
    d.refresh_from_db()
    assert d.state == DeploymentState.ACTIVE
    assert AuditEvent.objects.filter(action="trading.deployment.activated", reason="paper run of the SMA config").exists()
    expect(page.locator("#no-orders")).to_contain_text("The engine places one when the strategy signals")

    # the engine ticks at each bar close; the page follows without a reload
    run.first_tick()
    expect(page.locator("#dep-equity")).to_contain_text("5,000.00")  # the first snapshot: flat, all cash
    expect(page.locator("#equity-chart .main-svg").first).to_be_visible()
    position = run.until_open_position()
    entry = Order.objects.filter(deployment=d, side="buy", status=OrderStatus.FILLED).first()
    expect(page.locator("details.order").first).to_contain_text(f"buy {amount(entry.amount)}")
    expect(page.locator("details.order [data-verdict]").first).to_have_text("check: approved")
    expect(page.locator("#position-table [data-amount]")).to_have_text(amount(position.amount))
    expect(page.locator("#dep-equity")).to_contain_text(money(latest_equity(d)))
    expect(page.locator("[data-code=no_risk_limits]")).to_be_visible()

    run.step()  # the next bar's close marks the position
    position.refresh_from_db()
    expect(page.locator("#position-table [data-upnl]")).to_have_text(signed(position.unrealised_pnl))
    expect(page.locator("#dep-equity")).to_contain_text(money(latest_equity(d)))
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1  # never reloaded

    # open the entry: its signal bar, the decision's inputs and the verdict
    row = page.locator(f"details.order[data-order='{entry.pk}']")
    row.locator("summary").click()
    expect(row).to_contain_text("Signal bar")
    expect(row).to_contain_text("kind")
    expect(row).to_contain_text("No limit bound this order.")
    shots(page, "deployment")

    # close it by hand: a reason, a resting order, filled at the next open by the engine
    orders_before = Order.objects.filter(deployment=d).count()
    page.click("[data-action=close-position]")
    page.fill("#reason-text", "taking profit by hand")
    page.click("#reason-submit")
    expect(page.locator("#reason-dialog")).to_be_hidden()  # the API answered
    expect(page.locator("details.order")).to_have_count(orders_before + 1)
    close = Order.objects.get(deployment=d, decision__by="manual")
    row = page.locator(f"details.order[data-order='{close.pk}']")
    expect(row).to_contain_text("sell")
    expect(row.locator("[data-status-label]")).to_have_text("Open")
    run.step()
    expect(row.locator("[data-status-label]")).to_have_text("Filled")
    expect(page.locator("#position-table [data-amount]")).to_have_text("0")
    expect(page.locator("#dep-trades")).to_have_text("1")
    # equity against the replay of the same bars: three lines once a trade has closed
    expect(page.locator("#equity-chart")).to_have_attribute("data-curves", "yes")
    expect(page.locator("#equity-chart .scatterlayer .trace")).to_have_count(3)
    expect(page.locator("#tracking-error")).to_contain_text("Trades live / replay")
    shots(page, "deployment_after_close")


def test_overview_follows_ticks_and_pauses_with_a_reason(login, page, live_url, alice):
    run = EngineRun(alice, name="First")
    make_deployment(alice, name="Second", activate=False)
    run.first_tick()
    position = run.until_open_position()
    login(alice)
    page.goto(f"{live_url}/trading/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#deployments-table tbody tr")).to_have_count(2)
    expect(page.locator("#total-equity")).to_contain_text(money(latest_equity(run.deployment)))
    expect(page.locator("#positions-table tbody tr")).to_have_count(1)

    run.step()
    position.refresh_from_db()
    expect(page.locator("#positions-table [data-upnl]")).to_have_text(signed(position.unrealised_pnl))
    expect(page.locator("#total-equity")).to_contain_text(money(latest_equity(run.deployment)))

    row = page.locator(f"#deployments-table tr[data-deployment='{run.deployment.pk}']")
    row.locator("[data-verb=pause]").click()
    page.fill("#reason-text", "volatility too high")
    page.click("#reason-submit")
    expect(row.locator("[data-state]")).to_have_text("Paused")
    assert Deployment.objects.get(pk=run.deployment.pk).state_reason == "volatility too high"
    shots(page, "overview")


def test_stop_asks_about_open_positions(login, page, live_url, alice):
    d = make_deployment(alice, name="To stop")
    login(alice)
    page.goto(f"{live_url}/trading/deployments/{d.pk}/")
    page.click("[data-verb=stop]")
    expect(page.locator("#reason-exit-row")).to_be_visible()
    page.select_option("#reason-exit", "close")
    page.fill("#reason-text", "strategy retired")
    page.click("#reason-submit")
    expect(page.locator("#deployment-state")).to_have_text("Stopped")
    d.refresh_from_db()
    assert d.state == DeploymentState.STOPPED and d.exit_policy == "close"
    expect(page.locator("[data-verb]")).to_have_count(0)


def test_account_page_and_test_connection(login, page, live_url, alice):
    d = make_deployment(alice, name="On paper")
    login(alice)
    page.goto(f"{live_url}/trading/accounts/{d.account_id}/")
    expect(page.locator("#account-health")).to_have_text("Not checked yet")
    expect(page.locator("#paper-balance")).to_contain_text("100,000.00 USD")
    page.click("#test-connection")
    expect(page.locator("#test-result")).to_have_text("Connection OK.")
    expect(page.locator("#account-health")).to_have_text("OK")
    shots(page, "account")


def test_create_a_paper_account_and_deploy_from_the_overview(login, page, live_url, alice):
    from tests.owned_factories import strategy_config

    config = strategy_config(alice)
    login(alice)
    page.goto(f"{live_url}/trading/")
    expect(page.locator("#no-deployments")).to_be_visible()
    page.fill("#paper-name", "My paper")
    page.fill("#paper-balance", "5000")
    page.fill("#paper-currency", "USD")
    page.click("#paper-submit")
    page.wait_for_url("**/trading/accounts/*/")
    expect(page.locator("#account-title")).to_contain_text("My paper")
    page.goto(f"{live_url}/trading/")
    page.select_option("#deploy-config", str(config.pk))
    page.fill("#deploy-capital", "9000")  # above the balance: refused, naming why
    page.click("#deploy-submit")
    expect(page.locator("#deploy-error")).to_contain_text("above the account's free balance")
    page.fill("#deploy-capital", "2500")
    page.click("#deploy-submit")
    page.wait_for_url("**/trading/deployments/*/")
    expect(page.locator("#deployment-state")).to_have_text("Paused")
    shots(page, "new_deployment")
