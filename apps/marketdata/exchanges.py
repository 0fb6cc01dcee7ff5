"""The one ccxt factory: every ccxt client in TradePulse is built here.

`build_client()` merges `settings.CCXT_OVERRIDES[exchange_id]` (env TRADEPULSE_CCXT_OVERRIDES)
deeply into the config, so a real ccxt client can be pointed at a local simulator; rate
limiting is on unless an override turns it off. `call()` runs one exchange call with retries
and exponential backoff on recoverable failures (ccxt `OperationFailed`: network, 429, 5xx,
timeouts, exchange internal errors such as Binance -1000) and turns every
ccxt error into a `MarketDataError` whose message names the problem (unknown symbol,
unsupported timeframe, rejected credentials...) and never contains a secret.

Retries are per call, chosen by the caller: reads are safe to retry; an order placement is only
safe with an idempotent client order id.
"""
from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import ccxt
from django.conf import settings

from .timeframes import ALL_TIMEFRAMES

log = logging.getLogger(__name__)

# Failures worth another try on a READ. ccxt splits its errors in two families:
# `OperationFailed` means the request did not get a definite answer and may succeed if sent again
# (every NetworkError: timeouts, HTTP 429 (DDoSProtection / RateLimitExceeded), 5xx pages
# (ExchangeNotAvailable, OnMaintenance), InvalidNonce; and the rest: BadResponse, NullResponse,
# and exchange codes mapped to it, e.g. Binance's HTTP 500 code -1000 "unknown error").
# `ExchangeError` means the exchange understood and refused (bad symbol, bad interval, rejected
# key, not supported): the same request is refused again, so it fails at once. freqtrade's
# exchange wrapper treats OperationFailed as temporary the same way (it also retries plain
# ExchangeErrors; we do not, so a typo in a symbol is not retried for a minute).
# Writes (orders) are only retried by a caller that has an idempotent client order id.
RETRYABLE = (ccxt.OperationFailed,)
RETRY_ATTEMPTS = 6  # first try + 5 retries
RETRY_BASE_DELAY = 0.5  # seconds; doubles each retry, with jitter
RETRY_MAX_DELAY = 30.0
DEFAULT_TIMEOUT_MS = 30_000
CREDENTIAL_KEYS = ("apiKey", "secret", "password", "uid", "privateKey", "walletAddress", "token")


class MarketDataError(ValueError):
    """An exchange problem explained for a person; safe to store and show (no secrets)."""

    code = "exchange_error"

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class UnknownExchange(MarketDataError):
    code = "unknown_exchange"


class UnknownSymbol(MarketDataError):
    code = "unknown_symbol"


class UnsupportedTimeframe(MarketDataError):
    code = "unsupported_timeframe"


class AuthenticationFailed(MarketDataError):
    code = "authentication_failed"


class ExchangeUnavailable(MarketDataError):
    code = "exchange_unavailable"


def deep_merge(base: dict, extra: Mapping) -> dict:
    """Merge `extra` into a copy of `base`; nested dicts are merged key by key."""
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def exchange_ids() -> list[str]:
    return list(ccxt.exchanges)


def describe(exchange_id: str) -> dict:
    """Static facts about a ccxt exchange (no network): name, TradePulse timeframes, sandbox."""
    client = _client_class(exchange_id)()
    return {
        "name": client.name or exchange_id,
        "timeframes": [tf for tf in ALL_TIMEFRAMES if tf in (client.timeframes or {})],
        "supports_sandbox": bool(client.urls.get("test")),
    }


def _client_class(exchange_id: str):
    if exchange_id not in ccxt.exchanges:
        raise UnknownExchange(f"{exchange_id!r} is not an exchange ccxt knows (e.g. binance, kraken, okx).")
    return getattr(ccxt, exchange_id)


def build_client(exchange_id: str, *, credentials: Mapping[str, Any] | None = None, sandbox: bool = False,
                 **extra) -> ccxt.Exchange:
    """A configured sync ccxt client for `exchange_id`.

    Config, later wins: TradePulse defaults (rate limiting on, 30 s timeout) ← the exchange's
    CCXT_OVERRIDES entry (deep merge; may point `urls` at a simulator or turn rate limiting
    off) ← `credentials` (apiKey, secret, password, ...) ← `extra` ccxt options.
    `sandbox=True` switches to the exchange's testnet; an exchange without one is an error.
    """
    cls = _client_class(exchange_id)
    config: dict = {"enableRateLimit": True, "timeout": DEFAULT_TIMEOUT_MS}
    config = deep_merge(config, settings.CCXT_OVERRIDES.get(exchange_id) or {})
    config = deep_merge(config, {k: v for k, v in (credentials or {}).items() if v not in (None, "")})
    config = deep_merge(config, extra)
    client = cls(config)
    if sandbox:
        if not client.urls.get("test"):
            raise MarketDataError(f"{exchange_id} has no sandbox/testnet in ccxt.")
        client.set_sandbox_mode(True)
    return client


def call(client: ccxt.Exchange, method: str, *args, attempts: int | None = None,
         on_retry: Callable[[int, float, Exception], None] | None = None,
         symbol: str | None = None, timeframe: str | None = None, sleep: Callable[[float], None] = time.sleep,
         **kwargs):
    """`client.<method>(*args, **kwargs)` with retries on transient errors; ccxt errors become
    MarketDataError. `on_retry(attempt, delay_s, exc)` is told about each retry (for progress
    messages). `symbol`/`timeframe` only make error messages precise."""
    attempts = attempts or RETRY_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return getattr(client, method)(*args, **kwargs)
        except RETRYABLE as exc:
            if attempt == attempts:
                raise translate_error(exc, client, symbol=symbol, timeframe=timeframe, attempts=attempts) from None
            delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2 ** (attempt - 1)) * random.uniform(0.75, 1.25)
            log.warning("%s %s failed (%s), retry %d/%d in %.2f s", client.id, method, type(exc).__name__,
                        attempt, attempts - 1, delay)
            if on_retry:
                on_retry(attempt, delay, exc)
            sleep(delay)
        except ccxt.BaseError as exc:
            raise translate_error(exc, client, symbol=symbol, timeframe=timeframe) from None


def translate_error(exc: Exception, client: ccxt.Exchange, *, symbol: str | None = None,
                    timeframe: str | None = None, attempts: int | None = None) -> MarketDataError:
    """A person-readable MarketDataError for a ccxt exception, with secrets scrubbed."""
    ex = client.id
    raw = _scrub(str(exc), client)
    short = raw[:200] + ("…" if len(raw) > 200 else "")
    if isinstance(exc, ccxt.BadSymbol):
        return UnknownSymbol(f"Unknown symbol {symbol!r} on {ex}." if symbol else f"{ex}: unknown symbol ({short}).")
    if isinstance(exc, ccxt.AuthenticationError):
        # The exchange's text can echo request details; say what happened, not what was sent.
        return AuthenticationFailed(f"{ex} rejected the API credentials (authentication failed): check the API key, "
                                    "secret and the key's permissions.")
    if isinstance(exc, ccxt.BadRequest) and timeframe and "interval" in raw.lower():
        return UnsupportedTimeframe(f"Timeframe {timeframe!r} is not supported by {ex}.")
    tries = f" after {attempts} attempts" if attempts else ""
    if isinstance(exc, ccxt.RequestTimeout):
        return ExchangeUnavailable(f"{ex} did not answer in time{tries} (request timeout).", retryable=True)
    if isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        return ExchangeUnavailable(f"{ex} kept refusing requests as too many{tries} (rate limited, HTTP 429).",
                                   retryable=True)
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return ExchangeUnavailable(f"{ex} is not available{tries} (server error or maintenance): {short}",
                                   retryable=True)
    if isinstance(exc, ccxt.NetworkError):
        return ExchangeUnavailable(f"Could not reach {ex}{tries} (network error: {type(exc).__name__}).",
                                   retryable=True)
    if isinstance(exc, ccxt.OperationFailed):
        return ExchangeUnavailable(f"{ex} kept failing{tries} (exchange-side error, {type(exc).__name__}): {short}",
                                   retryable=True)
    if isinstance(exc, ccxt.NotSupported):
        return MarketDataError(f"{ex} does not support this through ccxt: {short}")
    return MarketDataError(f"{ex} refused the request: {short}")


def check_symbol_and_timeframe(client: ccxt.Exchange, symbol: str, timeframe: str) -> None:
    """Raise UnknownSymbol / UnsupportedTimeframe before any candle is requested (markets loaded)."""
    if symbol not in (client.markets or {}):
        raise UnknownSymbol(f"Unknown symbol {symbol!r} on {client.id}.")
    if timeframe not in ALL_TIMEFRAMES:
        raise UnsupportedTimeframe(f"Timeframe {timeframe!r} is not supported by TradePulse; supported: "
                                   f"{', '.join(ALL_TIMEFRAMES)}.")
    if client.timeframes and timeframe not in client.timeframes:
        supported = [tf for tf in ALL_TIMEFRAMES if tf in client.timeframes]
        raise UnsupportedTimeframe(f"Timeframe {timeframe!r} is not supported by {client.id}; supported: "
                                   f"{', '.join(supported)}.")
    if not client.has.get("fetchOHLCV"):
        raise MarketDataError(f"{client.id} does not offer candles (fetchOHLCV) through ccxt.")


def _scrub(text: str, client: ccxt.Exchange) -> str:
    for key in CREDENTIAL_KEYS:
        value = getattr(client, key, None)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "[REDACTED]")
    return " ".join(text.split())
