"""Risk on a monthly (1M) deployment: calendar months have no fixed length, and the check (its
correlation limit reads the deployment's timeframe) and the overview work on them all the same."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from apps.risk.check import risk_check
from apps.risk.selectors import context_for, overview
from quant.timeframes import bar_opens

from .conftest import hold, intent, market, set_limits

pytestmark = pytest.mark.usefixtures("no_limits")


def _monthly(m, close):
    times = bar_opens(int(datetime(2019, 1, 1, tzinfo=UTC).timestamp() * 1000),
                      int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000), "1M")[:len(close)]
    md.candles_ingest(market=m, timeframe="1M", source="test", rows=CandleArrays(
        times, close, close * 1.01, close * 0.99, close, np.ones(len(close)), timeframe="1M"))


def test_a_monthly_deployment_is_checked_against_the_correlation_limit(alice, exchange, make_deployment):
    set_limits(correlation_max="0.8", correlation_bars=40)
    rng = np.random.default_rng(11)
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, 60)))
    _monthly(market(exchange, "BTC/USD"), walk)
    _monthly(market(exchange, "ETH/USD"), walk * 0.05 * np.exp(rng.normal(0, 0.001, 60)))  # the same bet
    _monthly(market(exchange, "XRP/USD"), 100 * np.exp(np.cumsum(rng.normal(0, 0.05, 60))))  # independent
    dep = make_deployment(alice, symbol="BTC/USD", timeframe="1M")
    eth = make_deployment(alice, symbol="ETH/USD", timeframe="1M")
    xrp = make_deployment(alice, symbol="XRP/USD", timeframe="1M")
    hold(xrp, amount="1", price="100")
    assert risk_check(intent=intent(dep)).outcome == "approved"
    hold(eth, amount="1", price="5")
    v = risk_check(intent=intent(dep))
    assert v.outcome == "rejected" and v.reasons[0]["limit"] == "correlation_max"
    assert "ETH/USD" in v.reasons[0]["message"] and float(v.reasons[0]["observed"]) > 0.9

    shown = overview(context_for(deployment=dep))  # what the page, the API and the command show
    rho = next(row for row in shown["scopes"][0]["limits"] if row["limit"] == "correlation_max")
    assert shown["scopes"][0]["scope"] == "global" and rho["value"] == 0.8 and rho["used"] > 0.9
