"""Trading pages as a user reads them: the overview (equity, deployments with their state, open
positions with live PnL, recent fills), a deployment (orders with signal bar, decision and
verdict, notices), an account (mode, health, key permissions, balances; never a key). Another
user's deployment or account is a 404; empty states say what to do next."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.marketdata import services as md
from apps.risk.models import RiskProfile
from apps.strategies.models import ConfigEvidence
from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.models import ExchangeAccount, OrderStatus
from tradepulse.core.permissions import grant_owner  # noqa: F401

from .surfaces import T0, book_trade, clear_risk_limits, engine_tick, make_deployment, traded  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def text(response) -> str:
    """The page's visible text, whitespace collapsed."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def get(client, user, url):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response


# --- overview --------------------------------------------------------------------------------------
def test_overview_shows_equity_deployments_positions_and_fills(client, alice, traded):
    response = get(client, alice, "/trading/")
    page = text(response)
    assert "1,023.08 USD" in page                      # equity of the latest snapshot
    assert "+8.70" in page and "1 open position" in page  # unrealised PnL of the open long
    assert "SMA on SYN" in page and "Active" in page and "1,000.00" in page
    assert "buy SYN/USD 3 101 0.3 USD" in page           # the latest fill
    html = response.content.decode()
    assert f'href="/trading/deployments/{traded.pk}/"' in html
    assert 'data-action="state" data-verb="pause"' in html  # an active one can be paused...
    assert 'data-verb="activate"' not in html               # ...not activated again
    assert 'class="active">Trading</a>' in html             # the navigation entry lights up


def test_overview_empty_state_says_what_to_do(client, alice):
    page = text(get(client, alice, "/trading/"))
    assert "No deployments yet. Create a paper account and deploy a strategy config" in page
    assert "No open position." in page and "No exchange accounts yet." in page
    assert "No strategy config to deploy yet" in page
    assert "1,0" not in page  # no number is made up


def test_overview_shows_only_what_the_user_may_see(client, charlie, traded):
    page = text(get(client, charlie, "/trading/"))
    assert "SMA on SYN" not in page and "No deployments yet" in page


def test_a_deployment_without_a_tick_has_no_equity_rather_than_a_guess(client, alice):
    make_deployment(alice, name="fresh", activate=False)
    page = text(get(client, alice, "/trading/"))
    assert "No deployment has had a tick yet." in page
    assert "Paused" in page and "not yet" in page


# --- deployment page -------------------------------------------------------------------------------
def test_deployment_page_traces_each_order_to_its_signal_decision_and_verdict(client, alice, traded):
    response = get(client, alice, f"/trading/deployments/{traded.pk}/")
    page = text(response)
    assert "SMA on SYN" in page and "SYN/USD · 1m" in page
    assert "check: approved" in page and "No limit bound this order." in page
    assert "Signal bar 2023-11-14 21:59" in page          # the bar whose close decided the first order
    assert "fast sma 101.2" in page and "signal entry_long" in page   # decision inputs
    # figures: equity, PnL, closed trades with win rate
    assert "1,023.08 USD" in page and "+2.31 %" not in page and "2.31 % on 1,000.00 capital" in page
    assert "+14.38 realised" in page and "+8.70 unrealised" in page
    assert "2 win rate 50 %" in page


def test_deployment_page_says_when_no_risk_limit_is_configured(client, alice, traded):
    clear_risk_limits()
    response = get(client, alice, f"/trading/deployments/{traded.pk}/")
    assert 'data-code="no_risk_limits"' in response.content.decode()
    assert ("No risk limits configured at any scope (global, user, account, deployment): the pre-trade check "
            "approves every entry without limiting it." in text(response))


def test_a_configured_limit_removes_that_notice(client, alice, traded):
    clear_risk_limits()
    RiskProfile.objects.update_or_create(target_key="global", defaults={"scope": "global",
                                                                        "position_notional_max": Decimal("50000")})
    html = get(client, alice, f"/trading/deployments/{traded.pk}/").content.decode()
    assert 'data-code="no_risk_limits"' not in html


def test_a_resized_order_names_the_limit_value_and_scope(client, alice, traded):
    book_trade(traded, side="buy", amount="1", price="103", at=T0 + timedelta(hours=3), verdict={
        "outcome": "resized", "amount": "1", "approved": True, "reason": "",
        "reasons": [{"limit": "position_notional_max", "value": "150", "scope": "account",
                     "message": "Position notional 150 quote at Account alice paper: resized from 3 to 1."}]})
    page = text(get(client, alice, f"/trading/deployments/{traded.pk}/"))
    assert "check: resized" in page
    assert "position_notional_max 150 (account): Position notional 150 quote at Account alice paper: resized from 3 to 1." in page


def test_deployment_page_shows_the_engines_stale_data_notice(client, alice):
    d = make_deployment(alice, name="stale one")
    result = engine_tick(d)  # at the real now, the file market's candles (2023) are years late
    assert result["stale"]
    response = get(client, alice, f"/trading/deployments/{d.pk}/")
    assert 'data-code="stale_data"' in response.content.decode()
    page = text(response)
    assert re.search(r"Stale market data since \d{4}-\d\d-\d\d \d\d:\d\d UTC: The latest stored 1m candle of SYN/USD "
                     r"closed at 2023-11-15 04:40 UTC", page), page[:3000]
    assert "no new entries" in page


def test_a_market_without_candles_says_to_download_data(client, alice):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="EMPTY/USD", amount_step="0.001")
    config = config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1m",
                           parameters={"fast": 10, "slow": 30})
    account = services.account_create(owner=alice, name="p", exchange=exchange, mode="paper",
                                      paper_balance=Decimal("1000"), paper_currency="USD")
    d = services.deployment_create(owner=alice, config=config, account=account, capital=Decimal("100"))
    page = text(get(client, alice, f"/trading/deployments/{d.pk}/"))
    assert "No 1m candles of EMPTY/USD are stored" in page and "Download market data first" in page


def test_deployment_page_empty_states(client, alice):
    d = make_deployment(alice, name="new one", activate=False)
    page = text(get(client, alice, f"/trading/deployments/{d.pk}/"))
    assert "No orders yet. Activate the deployment: it trades from the next closed bar." in page
    assert "No position yet" in page and "No tick yet." in page
    assert "This config has no backtest evidence to compare with." in page
    assert "Tracking error Not computed yet" in page


def test_deployment_page_puts_backtest_evidence_beside_live(client, alice, traded):
    ConfigEvidence.objects.create(config=traded.config, source="backtest", period_start=T0 - timedelta(days=30),
                                  period_end=T0, trades=41, total_return=0.12, sharpe=1.4, max_drawdown=0.08,
                                  metrics={"win_rate": 0.55})
    page = text(get(client, alice, f"/trading/deployments/{traded.pk}/"))
    assert "Live (paper) 2 50 % 2.31 %" in page
    assert "Backtest 41 55 % 12.00 %" in page


def test_open_order_offers_cancel_and_refusal_shows_its_reason(client, alice, traded):
    book_trade(traded, side="sell", amount="3", price="103", status=OrderStatus.OPEN, at=T0 + timedelta(hours=1))
    refused = book_trade(traded, side="buy", amount="50", price="103", status=OrderStatus.FAILED,
                         at=T0 + timedelta(hours=2))
    refused.reason, refused.reason_code = "Insufficient balance: 5,150 USD needed, 711.08 USD free.", "insufficient_balance"
    refused.save()
    response = get(client, alice, f"/trading/deployments/{traded.pk}/")
    assert response.content.decode().count('data-action="cancel-order"') == 1
    page = text(response)
    assert "Insufficient balance: 5,150 USD needed, 711.08 USD free. insufficient_balance" in page


def test_deployment_parts_render_alone_for_live_updates(client, alice, traded):
    client.force_login(alice)
    part = client.get(f"/trading/deployments/{traded.pk}/?part=position")
    assert part.status_code == 200 and "<html" not in part.content.decode()
    assert "+8.70" in text(part)
    assert client.get(f"/trading/deployments/{traded.pk}/?part=nope").status_code == 404


def test_someone_elses_deployment_and_its_parts_are_404(client, charlie, bob, traded):
    client.force_login(charlie)
    assert client.get(f"/trading/deployments/{traded.pk}/").status_code == 404
    assert client.get(f"/trading/deployments/{traded.pk}/?part=orders").status_code == 404
    assert client.get(f"/trading/accounts/{traded.account_id}/").status_code == 404
    assert "SMA on SYN" not in client.get(f"/trading/deployments/{traded.pk}/").content.decode()


def test_a_view_share_sees_but_cannot_operate(client, alice, bob, traded):
    from guardian.shortcuts import assign_perm
    assign_perm("trading.view_deployment", bob, traded)
    response = get(client, bob, f"/trading/deployments/{traded.pk}/")
    html = response.content.decode()
    assert "SMA on SYN" in html and "You may look at this deployment but not operate it." in text(response)
    assert 'data-action="state"' not in html and 'data-action="close-position"' not in html


def test_an_operator_may_operate_anyones_deployment_but_not_activate_it(client, olivia, traded):
    html = get(client, olivia, f"/trading/deployments/{traded.pk}/").content.decode()
    assert 'data-verb="pause"' in html and 'data-verb="stop"' in html
    assert 'data-action="close-position"' in html
    services.deployment_pause(deployment=traded, reason="t")
    html = get(client, olivia, f"/trading/deployments/{traded.pk}/").content.decode()
    assert 'data-verb="activate"' not in html  # starting to trade is the owner's decision


def test_anonymous_is_sent_to_login(client, traded):
    assert client.get("/trading/").status_code == 302
    assert client.get(f"/trading/deployments/{traded.pk}/").status_code == 302


# --- account page ----------------------------------------------------------------------------------
def test_paper_account_page_shows_starting_balance_and_allocation(client, alice, traded):
    page = text(get(client, alice, f"/trading/accounts/{traded.account_id}/"))
    assert "Paper (simulated fills on stored market data)" in page
    assert "Starting balance 100,000.00 USD" in page
    assert "Allocated to deployments 1,000.00 USD" in page and "Free to allocate 99,000.00 USD" in page
    assert "A paper account has no key" in page
    assert "SMA on SYN" in page  # its deployment


def test_exchange_account_page_warns_when_the_key_may_withdraw_and_never_shows_it(client, alice):
    exchange = md.exchange_get_or_create(name="binance")
    account = ExchangeAccount.objects.create(
        owner=alice, name="Live key", exchange=exchange, mode="live", api_key="AKIA-very-secret-key-1234",
        api_secret="s3cr3t-value-xyz", health="warning", last_checked_at=timezone.now(),
        last_error="This API key may WITHDRAW funds.", permissions={"read": True, "trade": True, "withdraw": True},
        balances={"USDT": {"free": "1500.5", "used": "0", "total": "1500.5"},
                  "BTC": {"free": "0.01", "used": "0.002", "total": "0.012"}})
    grant_owner(account)
    response = get(client, alice, f"/trading/accounts/{account.pk}/")
    html = response.content.decode()
    assert "AKIA-very-secret-key-1234" not in html and "s3cr3t-value-xyz" not in html
    page = text(response)
    assert "This API key may WITHDRAW funds. Trading needs no withdrawal permission" in page
    assert "Live (real money)" in page and "Works, with a warning" in page
    assert "Withdraw yes" in page and "Trade yes" in page
    assert "USDT 1,500.5 0 1,500.5" in page and "BTC 0.01 0.002 0.012" in page
    assert "set (stored encrypted; never shown)" in page
    assert 'data-action="test-connection"' in html


def test_untested_account_says_to_test_the_connection(client, alice):
    exchange = md.exchange_get_or_create(name="binance")
    account = ExchangeAccount.objects.create(owner=alice, name="New key", exchange=exchange, mode="live",
                                             api_key="k" * 20, api_secret="s" * 20)
    grant_owner(account)
    page = text(get(client, alice, f"/trading/accounts/{account.pk}/"))
    assert "never — test the connection" in page and "Unknown until the connection is tested." in page
    assert "No balances fetched yet: test the connection." in page
    assert "WITHDRAW" not in page


def test_account_with_failed_authentication_shows_it_on_its_deployments_page(client, alice, traded):
    ExchangeAccount.objects.filter(pk=traded.account_id).update(health="auth_failed",
                                                                last_error="Invalid API-key, IP, or permissions.")
    page = text(get(client, alice, f"/trading/deployments/{traded.pk}/"))
    assert "Account alice paper" in page and "Authentication failed. Invalid API-key, IP, or permissions." in page


def test_capital_and_state_change_show_after_a_service_call(client, alice, traded):
    services.deployment_pause(deployment=traded, reason="holiday, no new entries")
    page = text(get(client, alice, f"/trading/deployments/{traded.pk}/"))
    assert "Paused since" in page and "holiday, no new entries" in page
    html = get(client, alice, f"/trading/deployments/{traded.pk}/").content.decode()
    assert 'data-verb="activate"' in html and 'data-verb="pause"' not in html
    assert Decimal(traded.capital) == Decimal("1000")


def test_deployment_page_shows_tracking_error_against_the_replay(client, alice):
    from apps.trading.services.tracking import live_trades

    from .surfaces import EngineRun

    run = EngineRun(alice)
    run.first_tick()
    run.until_open_position()
    while not live_trades(run.deployment):
        run.step()
    page = text(get(client, alice, f"/trading/deployments/{run.deployment.pk}/"))
    assert "Trades live / replay 1 / 1" in page and "Matched (same bar, same side) 1" in page
    assert "Missed (replay only) 0" in page and "Extra (live only) 0" in page
    assert "Difference (USDT) 0.00 " in page


def test_pages_keep_a_query_budget_whatever_the_number_of_rows(client, alice, django_assert_max_num_queries):
    from .surfaces import snapshot

    deployments = [make_deployment(alice, name=f"d{i}") for i in range(8)]
    for i in range(40):
        d = deployments[i % 8]
        book_trade(d, side="buy", amount="1", price=str(100 + i), at=T0 + timedelta(minutes=i))
        snapshot(d, price=str(101 + i), at=T0 + timedelta(minutes=i, seconds=30))
    client.force_login(alice)
    client.get("/trading/")  # warm the session and permission caches
    with django_assert_max_num_queries(25):
        page = text(client.get("/trading/"))
    assert page.count("SYN/USD · 1m") == 8 and "8 open positions" in page
    with django_assert_max_num_queries(40):  # a fixed number: its risk context and tracking replay included
        page = text(client.get(f"/trading/deployments/{deployments[0].pk}/"))
    assert page.count("check: approved") == 5
    with django_assert_max_num_queries(20):
        client.get(f"/trading/accounts/{deployments[0].account_id}/")


def test_deployment_page_shows_active_overrides_and_a_tripped_kill_switch(client, alice, olivia, traded):
    """Overrides and kill switches change what the pre-trade check does: the page where the orders are
    read says which are in force, at which scope, why and until when."""
    from apps.risk.services import killswitch_release, killswitch_trip, override_create

    override_create(scope="deployment", target=traded, limit="open_positions_max", value=1,
                    reason="one position while the venue is thin", actor=alice)
    page = text(get(client, alice, f"/trading/deployments/{traded.pk}/"))
    assert "Risk override at" in page and "one position while the venue is thin" in page and "= 1 until" in page
    assert "Kill switch tripped" not in page

    switch = killswitch_trip(scope="user", target=alice, reason="exchange incident", actor=olivia)
    page = text(get(client, alice, f"/trading/deployments/{traded.pk}/"))
    assert "Kill switch tripped by a person at" in page and "exchange incident" in page
    assert "No new entries until it is released" in page

    killswitch_release(switch=switch, reason="incident over", actor=olivia)
    assert "Kill switch tripped" not in text(get(client, alice, f"/trading/deployments/{traded.pk}/"))
