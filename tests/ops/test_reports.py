"""Exports and the FIFO tax report on hand-computed cases; times in the user's zone; only one's own."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from apps.ops.reports import fifo_report
from apps.trading.models import Fill, Order, PortfolioSnapshot
from tests.owned_factories import deployment as make_deployment

LONDON = ZoneInfo("Europe/London")


def _fill(dep, n, side, amount, price, when, fee="0", fee_currency="USD", symbol="SYN/USD"):
    order = Order.objects.create(deployment=dep, account=dep.account, symbol=symbol, client_order_id=f"c{dep.pk}-{n}",
                                 side=side, type="market", amount=D(amount), status="filled", filled=D(amount),
                                 average=D(price), signal_bar_time=0)
    return Fill.objects.create(order=order, account=dep.account, exchange_trade_id=f"t{dep.pk}-{n}", amount=D(amount),
                               price=D(price), fee=D(fee), fee_currency=fee_currency, time=when)


@pytest.fixture
def trades(alice):
    dep = make_deployment(alice)
    _fill(dep, 1, "buy", "1", "100", datetime(2025, 1, 10, tzinfo=UTC), fee="1")       # lot 1: cost 101
    _fill(dep, 2, "buy", "1", "200", datetime(2025, 2, 10, tzinfo=UTC))                 # lot 2: cost 200
    _fill(dep, 3, "sell", "1.5", "300", datetime(2025, 3, 10, tzinfo=UTC), fee="3")    # 450 - 3 = 447
    # 31 March 23:30 UTC is 1 April 00:30 in London (BST): March in UTC, April in London
    _fill(dep, 4, "sell", "0.5", "50", datetime(2025, 3, 31, 23, 30, tzinfo=UTC))      # lot 2 rest: cost 100
    return dep


def test_fifo_gains_on_a_hand_computed_case(alice, trades):
    report = fifo_report(user=alice, year=2025, first_month=1, zone=ZoneInfo("UTC"))
    rows = [(d["acquired"][:10], d["amount"], d["cost"], d["proceeds"], d["gain"]) for d in report["disposals"]]
    # the 1.5 sold takes lot 1 (1.0 at 101) and half of lot 2 (0.5 at 100); proceeds 447 split 2:1
    assert rows == [("2025-01-10", D("1"), D("101"), D("298"), D("197")),
                    ("2025-02-10", D("0.5"), D("100"), D("149"), D("49")),
                    ("2025-02-10", D("0.5"), D("100"), D("25"), D("-75"))]
    assert report["totals"]["USD"] == {"proceeds": D("472"), "cost": D("301"), "gain": D("171"), "disposals": 3}
    assert report["unmatched"] == []


def test_the_financial_year_starts_in_the_chosen_month_and_zone(alice, trades):
    # April-to-March years in London: the last sell (00:30 BST on 1 April) belongs to 2025/26
    fy2024 = fifo_report(user=alice, year=2024, first_month=4, zone=LONDON)
    fy2025 = fifo_report(user=alice, year=2025, first_month=4, zone=LONDON)
    assert fy2024["totals"]["USD"]["gain"] == D("246") and fy2024["totals"]["USD"]["disposals"] == 2
    assert fy2025["totals"]["USD"]["gain"] == D("-75")
    assert fy2025["disposals"][0]["sold"] == "2025-04-01 00:30:00"  # shown in the chosen zone
    assert fy2024["period"] == {"start": "2024-04-01T00:00:00+01:00", "end": "2025-04-01T00:00:00+01:00"}
    # in UTC the same sell is still in March: calendar-year 2025 has all three disposals
    assert fifo_report(user=alice, year=2025, first_month=1, zone=ZoneInfo("UTC"))["totals"]["USD"]["disposals"] == 3


def test_a_sell_without_recorded_holdings_is_unmatched_not_invented(alice):
    dep = make_deployment(alice)
    _fill(dep, 1, "buy", "1", "100", datetime(2025, 5, 1, tzinfo=UTC))
    _fill(dep, 2, "sell", "3", "120", datetime(2025, 6, 1, tzinfo=UTC))
    report = fifo_report(user=alice, year=2025, zone=ZoneInfo("UTC"))
    assert [(d["amount"], d["cost"], d["proceeds"], d["gain"]) for d in report["disposals"]] == [
        (D("1"), D("100"), D("120"), D("20"))]
    assert report["unmatched"][0]["amount"] == D("2") and "no cost basis" in report["unmatched"][0]["note"]


def test_a_fee_in_the_base_currency_lowers_the_amount_received(alice):
    dep = make_deployment(alice)
    _fill(dep, 1, "buy", "1", "100", datetime(2025, 5, 1, tzinfo=UTC), fee="0.01", fee_currency="SYN")
    _fill(dep, 2, "sell", "0.99", "110", datetime(2025, 6, 1, tzinfo=UTC), fee="0.5", fee_currency="BNB")
    report = fifo_report(user=alice, year=2025, zone=ZoneInfo("UTC"))
    (d,) = report["disposals"]
    assert d["amount"] == D("0.99") and d["cost"] == D("100") and d["proceeds"] == D("108.9")
    assert report["other_fees"] == [{"time": "2025-06-01 00:00:00", "symbol": "SYN/USD", "fee": D("0.5"),
                                     "currency": "BNB"}]


def test_tax_and_exports_through_the_api_in_the_users_zone(api, alice, charlie, trades):
    alice.timezone = "Europe/London"
    alice.save(update_fields=["timezone"])
    PortfolioSnapshot.objects.create(account=trades.account, deployment=trades, time=datetime(2025, 7, 1, 12, tzinfo=UTC),
                                     equity=D("10500"), cash=D("10000"), positions_value=D("500"))
    client = api(alice)
    body = client.get("/api/v1/exports/tax/?year=2024&first_month=4").json()
    assert body["timezone"] == "Europe/London" and body["totals"]["USD"]["gain"] == "246.00000000"
    csv_response = client.get("/api/v1/exports/tax/?year=2024&first_month=4&output=csv")
    rows = list(csv.reader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    assert rows[0][:5] == ["sold", "acquired", "account", "symbol", "amount"] and len(rows) == 3
    trades_csv = b"".join(client.get("/api/v1/exports/trades/").streaming_content).decode()
    lines = trades_csv.strip().splitlines()
    assert len(lines) == 5 and lines[1].startswith("2025-01-10 00:00:00,")  # GMT in January
    assert lines[4].startswith("2025-04-01 00:30:00,")  # BST after the clocks change
    utc_csv = b"".join(client.get("/api/v1/exports/trades/?timezone=UTC").streaming_content).decode()
    assert utc_csv.strip().splitlines()[4].startswith("2025-03-31 23:30:00,")
    portfolio = b"".join(client.get("/api/v1/exports/portfolio/").streaming_content).decode()
    assert "2025-07-01 13:00:00" in portfolio and "10500" in portfolio
    orders = b"".join(client.get("/api/v1/exports/orders/").streaming_content).decode()
    assert orders.count("\n") == 5
    # another user's records are not theirs to export
    assert b"".join(api(charlie).get("/api/v1/exports/trades/").streaming_content).decode().count("\n") == 1
    assert api(charlie).get("/api/v1/exports/tax/?year=2024&first_month=4").json()["disposals"] == []
    bad = client.get("/api/v1/exports/tax/?year=2024&first_month=13&timezone=Mars/Base")
    assert bad.status_code == 400 and "first_month" in bad.json()["error"]["detail"]
    assert "timezone" in bad.json()["error"]["detail"]
