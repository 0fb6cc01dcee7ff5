"""The ccxt factory: override merge, rate limiting, retries with backoff, clear errors."""
from __future__ import annotations

import ccxt
import pytest

from apps.marketdata import exchanges
from apps.marketdata.exchanges import (AuthenticationFailed, ExchangeUnavailable, UnknownExchange, UnknownSymbol,
                                       UnsupportedTimeframe, build_client, call, check_symbol_and_timeframe)


def test_overrides_are_merged_deeply_and_rate_limiting_is_on_by_default(settings):
    settings.CCXT_OVERRIDES = {"binance": {"urls": {"api": {"public": "http://127.0.0.1:1/api/v3"}},
                                           "options": {"fetchCurrencies": False}}}
    client = build_client("binance")
    assert client.enableRateLimit is True
    assert client.urls["api"]["public"] == "http://127.0.0.1:1/api/v3"
    # keys the override left out keep ccxt's values (deep merge, not replace)
    assert client.urls["api"]["private"].startswith("https://")
    assert client.options["fetchCurrencies"] is False and "defaultType" in client.options
    settings.CCXT_OVERRIDES = {"binance": {"enableRateLimit": False}}
    assert build_client("binance").enableRateLimit is False


def test_credentials_and_extra_options_reach_the_client(settings):
    settings.CCXT_OVERRIDES = {}
    client = build_client("binance", credentials={"apiKey": "k", "secret": "s", "password": None}, timeout=1234)
    assert (client.apiKey, client.secret, client.timeout) == ("k", "s", 1234)


def test_unknown_exchange_and_missing_sandbox_are_clear_errors(settings):
    settings.CCXT_OVERRIDES = {}
    with pytest.raises(UnknownExchange, match="'nosuchex' is not an exchange ccxt knows"):
        build_client("nosuchex")
    with pytest.raises(exchanges.MarketDataError, match="kraken has no sandbox"):
        build_client("kraken", sandbox=True)
    assert "testnet" in build_client("binance", sandbox=True).urls["api"]["public"]


@pytest.mark.parametrize("fault, expected_class", [
    ({"rate_limit_next": 2}, ccxt.DDoSProtection),
    ({"server_error_next": 2}, ccxt.ExchangeNotAvailable),
    ({"internal_error_next": 2}, ccxt.OperationFailed),  # Binance HTTP 500 -1000: not a NetworkError
    ({"timeout_next": 1, "timeout_sleep_s": 1.0}, ccxt.RequestTimeout),
    ({"timeout_next": 1, "timeout_mode": "drop"}, ccxt.NetworkError),
])
def test_transient_faults_are_retried_until_the_call_succeeds(sim, fault, expected_class):
    client = build_client("binance", timeout=300)
    client.load_markets()
    sim.set_faults(**fault)
    seen = []
    rows = call(client, "fetch_ohlcv", "BTC/USDT", "1m", since=1_699_000_020_000, limit=5,
                on_retry=lambda attempt, delay, exc: seen.append(type(exc)))
    assert len(rows) == 5
    assert seen and all(issubclass(c, expected_class) for c in seen)


def test_backoff_doubles_and_gives_up_with_a_clear_message(sim):
    client = build_client("binance")
    client.load_markets()
    sim.set_faults(rate_limit_next=100)
    delays = []
    with pytest.raises(ExchangeUnavailable, match="binance kept refusing requests as too many after 4 attempts"):
        call(client, "fetch_ohlcv", "BTC/USDT", "1m", attempts=4, sleep=delays.append)
    assert len(delays) == 3
    assert delays[1] > delays[0] * 1.2 and delays[2] > delays[1] * 1.2  # exponential, with jitter


def test_binance_internal_error_is_an_operation_failed_not_a_network_error(sim):
    """Why the downloader must retry OperationFailed: ccxt does not call -1000 a network error."""
    client = build_client("binance")
    client.load_markets()
    sim.set_faults(internal_error_next=1)
    with pytest.raises(ccxt.OperationFailed) as caught:
        client.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert not isinstance(caught.value, ccxt.NetworkError)
    assert "-1000" in str(caught.value)


def test_a_refusal_is_not_retried(sim):
    client = build_client("binance")
    call(client, "load_markets")
    sim.clear_requests()
    with pytest.raises(UnknownSymbol):
        call(client, "fetch_ohlcv", "BTC/USDT", "1m", params={"symbol": "NOPEUSDT"}, symbol="NOPE/USDT",
             sleep=lambda s: pytest.fail("a refusal was retried"))
    assert len(sim.requests_to("klines")) == 1


def test_unknown_symbol_and_unsupported_timeframe_are_named(sim):
    client = build_client("binance")
    call(client, "load_markets")
    with pytest.raises(UnknownSymbol, match="Unknown symbol 'DOGE/EUR' on binance"):
        check_symbol_and_timeframe(client, "DOGE/EUR", "1m")
    with pytest.raises(UnsupportedTimeframe, match="Timeframe '7m' is not supported by TradePulse"):
        check_symbol_and_timeframe(client, "BTC/USDT", "7m")
    with pytest.raises(UnknownSymbol, match="Unknown symbol 'XXX/USDT' on binance"):
        call(client, "fetch_ohlcv", "XXX/USDT", "1m", symbol="XXX/USDT")


def test_authentication_failure_is_explained_without_the_secret(sim):
    client = build_client("binance", credentials={"apiKey": "wrong-key-123", "secret": "very-secret-value"})
    with pytest.raises(AuthenticationFailed) as info:
        call(client, "fetch_balance")
    message = str(info.value)
    assert "rejected the API credentials" in message
    assert "very-secret-value" not in message and "wrong-key-123" not in message


def test_describe_needs_no_network():
    facts = exchanges.describe("binance")
    assert facts["name"] == "Binance" and "1m" in facts["timeframes"] and "1s" not in facts["timeframes"]
