"""A local Binance-SPOT-compatible exchange simulator for tests and benchmarks.

The real ``ccxt.binance`` client (sync or ``ccxt.async_support``) can be pointed
at it with :meth:`ExchangeSimulator.ccxt_overrides`.  Standard library + numpy
only.  See ``README.md`` next to this file for the full contract.
"""
from __future__ import annotations

import hashlib
import json
import math
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields, replace
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from .account import AccountMixin
from .protocol import ApiError, _dec_param, _err_mandatory, _int_param, _norm_symbol, _s8  # noqa: F401 (re-exported)

__all__ = [
    "ApiError",
    "DEFAULT_MARKETS",
    "ExchangeSimulator",
    "Faults",
    "INTERVALS",
    "MALFORMED_KINDS",
    "MarketSpec",
    "RequestRecord",
]

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

#: Binance spot kline intervals -> length in ms (None = calendar month).
INTERVALS: dict[str, int | None] = {
    "1s": SECOND,
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": HOUR,
    "2h": 2 * HOUR,
    "4h": 4 * HOUR,
    "6h": 6 * HOUR,
    "8h": 8 * HOUR,
    "12h": 12 * HOUR,
    "1d": DAY,
    "3d": 3 * DAY,
    "1w": WEEK,
    "1M": None,
}
# Weekly candles open on Monday 00:00 UTC (1970-01-01 was a Thursday).
_GRID_OFFSET = {"1w": 4 * DAY}

#: Kinds of deliberately broken kline rows (see Faults.malformed_rows).
MALFORMED_KINDS = ("high_lt_low", "negative_volume", "misaligned_time", "non_numeric")

MAX_KLINE_LIMIT = 1000
DEFAULT_KLINE_LIMIT = 500

_U64 = np.uint64
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


# --------------------------------------------------------------------------- #
# hashing helpers (deterministic, vectorised)
# --------------------------------------------------------------------------- #
def _mix_scalar(x: int) -> int:
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _str_key(*parts: Any) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


_C_GOLD = _U64(_GOLDEN)
_C_M1 = _U64(0xBF58476D1CE4E5B9)
_C_M2 = _U64(0x94D049BB133111EB)
_C_MUL = _U64(0xD6E8FEB86659FD93)
_S30, _S27, _S31, _S11 = _U64(30), _U64(27), _U64(31), _U64(11)
_INV53 = 1.0 / float(1 << 53)


def _uniform(x: np.ndarray, key: int | np.ndarray) -> np.ndarray:
    """uint64 array -> floats in [0, 1), a pure function of (x, key); key may broadcast."""
    z = x * _C_MUL
    z += key if isinstance(key, np.ndarray) else _U64(key)
    z += _C_GOLD
    z ^= z >> _S30
    z *= _C_M1
    z ^= z >> _S27
    z *= _C_M2
    z ^= z >> _S31
    return (z >> _S11).astype(np.float64) * _INV53


# --------------------------------------------------------------------------- #
# time grids
# --------------------------------------------------------------------------- #
class _Grid:
    """Open times of one interval as integer indexes k -> open_time(k)."""

    def __init__(self, interval: str):
        self.interval = interval
        self.step = INTERVALS[interval]
        self.offset = _GRID_OFFSET.get(interval, 0)
        self.monthly = self.step is None

    # scalar ---------------------------------------------------------------
    def floor_index(self, t: int) -> int:
        if self.monthly:
            return int(np.datetime64(int(t), "ms").astype("datetime64[M]").astype(np.int64))
        return (int(t) - self.offset) // self.step

    def ceil_index(self, t: int) -> int:
        k = self.floor_index(t)
        return k if self.time(k) == t else k + 1

    def time(self, k: int) -> int:
        if self.monthly:
            return int(np.datetime64(int(k), "M").astype("datetime64[ms]").astype(np.int64))
        return self.offset + int(k) * self.step

    # vector ---------------------------------------------------------------
    def times(self, ks: np.ndarray) -> np.ndarray:
        if self.monthly:
            return ks.astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)
        return ks * self.step + self.offset


# --------------------------------------------------------------------------- #
# markets
# --------------------------------------------------------------------------- #
@dataclass
class MarketSpec:
    """One simulated spot market.  Numbers that Binance sends as strings are strings."""

    symbol: str  # unified, e.g. "BTC/USDT"
    tick_size: str = "0.01"
    step_size: str = "0.00001"
    min_qty: str | None = None  # defaults to step_size
    max_qty: str = "9000.00000000"
    min_notional: str = "5.00000000"
    max_notional: str = "9000000.00000000"
    base_price: float = 100.0  # centre of the (log) price path
    daily_volatility: float = 0.03  # std of daily log returns (approx.)
    volume_per_minute: float = 10.0  # mean base-asset volume per minute
    listing_time: int = 1502942400000  # ms; no candles open before this
    status: str = "TRADING"

    def __post_init__(self) -> None:
        if "/" not in self.symbol:
            raise ValueError(f"MarketSpec.symbol must look like 'BASE/QUOTE', got {self.symbol!r}")
        if self.min_qty is None:
            self.min_qty = self.step_size

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def id(self) -> str:
        return self.base + self.quote


DEFAULT_MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec("BTC/USDT", tick_size="0.01", step_size="0.00001", min_qty="0.00001",
               base_price=60000.0, daily_volatility=0.03, volume_per_minute=15.0,
               listing_time=1502942400000),  # 2017-08-17 04:00 UTC
    MarketSpec("ETH/USDT", tick_size="0.01", step_size="0.0001", min_qty="0.0001",
               base_price=3000.0, daily_volatility=0.04, volume_per_minute=300.0,
               listing_time=1502942400000),
    MarketSpec("SOL/USDT", tick_size="0.01", step_size="0.001", min_qty="0.001",
               base_price=150.0, daily_volatility=0.05, volume_per_minute=2000.0,
               listing_time=1597125600000),  # 2020-08-11 06:00 UTC
)


def _as_market(m: MarketSpec | Mapping[str, Any] | str) -> MarketSpec:
    if isinstance(m, MarketSpec):
        return replace(m)  # never share (mutable) specs, e.g. DEFAULT_MARKETS, between simulators
    if isinstance(m, str):
        return MarketSpec(m)
    return MarketSpec(**dict(m))


def _decimals(step: str) -> int:
    d = Decimal(step).normalize()
    return max(0, -d.as_tuple().exponent)


# --------------------------------------------------------------------------- #
# price model
# --------------------------------------------------------------------------- #
# Log-price = log(base_price) + sum of smooth "value noise" octaves with periods
# 1s * 2**j (j = 0..25, i.e. up to ~1 year) and amplitudes ~ sqrt(period), which
# is a cheap fractal approximation of a random walk that can be evaluated at any
# instant independently (no state, no cumulative sums): every candle is a pure
# function of (seed, symbol, interval, open time).
_N_OCTAVES = 26
_PERIODS = [SECOND * (1 << j) for j in range(_N_OCTAVES)]
_AMP_CAL = 0.78  # calibrated so that std(daily log return) ~= daily_volatility


class _PriceModel:
    def __init__(self, spec: MarketSpec, seed: int):
        self.spec = spec
        self.key = _str_key("exchange-sim", seed, spec.id)
        self.log_base = math.log(spec.base_price)
        sig_ms = spec.daily_volatility / math.sqrt(DAY)
        self._periods = np.array(_PERIODS, dtype=np.int64)[:, None]
        self._inv_periods = 1.0 / self._periods.astype(np.float64)
        amps = np.array([_AMP_CAL * sig_ms * math.sqrt(p) for p in _PERIODS])
        self._amps2 = (2.0 * amps)[:, None]  # value noise in [0,1) mapped to [-1, 1): 2*h - 1
        self._amp_sum = float(amps.sum())
        self._okeys = np.array([_mix_scalar(self.key ^ _str_key("oct", j)) for j in range(len(_PERIODS))],
                               dtype=np.uint64)[:, None]
        self.tick = float(spec.tick_size)
        self.price_decimals = _decimals(spec.tick_size)
        self.qty_decimals = _decimals(spec.step_size)

    def log_price(self, t: np.ndarray) -> np.ndarray:
        """log(price) at instants ``t`` (int64 ms); all octaves at once as an (n, octaves) matrix."""
        t = np.asarray(t, dtype=np.int64)
        if t.size == 0:
            return np.empty(0, dtype=np.float64)
        # (octave, n) layout; the octaves are summed element-wise in a fixed order (no BLAS
        # reductions) so a candle's value never depends on which batch computed it.
        tt = t[None, :]
        idx = tt // self._periods
        frac = (tt - idx * self._periods) * self._inv_periods
        s = frac * frac * (3.0 - 2.0 * frac)
        iu = idx.astype(np.uint64)
        h0 = _uniform(iu, self._okeys)
        iu += _U64(1)
        h1 = _uniform(iu, self._okeys)
        h1 -= h0
        h1 *= s
        h1 += h0
        h1 *= self._amps2
        acc = np.full(t.shape, self.log_base - self._amp_sum)
        for row in h1:
            acc += row
        return acc

    def price_at(self, t: int) -> float:
        p = math.exp(float(self.log_price(np.array([t], dtype=np.int64))[0]))
        return round(round(p / self.tick) * self.tick, self.price_decimals)

    def candles(self, grid: _Grid, ks: np.ndarray, now: int | None = None) -> dict[str, np.ndarray]:
        """Vectorised candles for grid indexes ``ks`` (any order, need not be contiguous).

        If ``now`` falls inside the last candle it is returned as a partial candle.
        """
        ks = np.asarray(ks, dtype=np.int64)
        n = ks.size
        if n and int(ks[-1]) - int(ks[0]) == n - 1:  # contiguous: close(k) == open(k+1), n+1 instants
            bounds = grid.times(np.arange(int(ks[0]), int(ks[-1]) + 2, dtype=np.int64))
            opens_t, ends_t = bounds[:-1], bounds[1:]
            lp = self.log_price(bounds)
            lo_, lc_ = lp[:-1], lp[1:]
        else:
            opens_t = grid.times(ks)
            ends_t = grid.times(ks + 1)
            lp = self.log_price(np.concatenate([opens_t, ends_t]))
            lo_, lc_ = lp[:n], lp[n:]
        step = (ends_t - opens_t).astype(np.float64)
        ikey = self.key ^ _str_key("interval", grid.interval)
        tu = opens_t.astype(np.uint64)
        u1 = _uniform(tu, ikey ^ 0x1111)
        u2 = _uniform(tu, ikey ^ 0x2222)
        u3 = _uniform(tu, ikey ^ 0x3333)
        u4 = _uniform(tu, ikey ^ 0x4444)
        sig = self.spec.daily_volatility * np.sqrt(step / DAY)
        hi_l = np.maximum(lo_, lc_) + sig * 0.5 * u1 * u1
        lo_l = np.minimum(lo_, lc_) - sig * 0.5 * u2 * u2
        frac = np.ones(n)
        if now is not None and n:
            partial = (opens_t < now) & (ends_t > now)
            if partial.any():
                frac = np.where(partial, (now - opens_t) / step, 1.0)
                # shrink the candle towards its open: still a valid OHLC
                lc_ = lo_ + (lc_ - lo_) * frac
                hi_l = np.maximum(np.maximum(lo_, lc_), lo_ + (hi_l - lo_) * frac)
                lo_l = np.minimum(np.minimum(lo_, lc_), lo_ + (lo_l - lo_) * frac)
        tick = self.tick
        pd = self.price_decimals
        o = np.round(np.round(np.exp(lo_) / tick) * tick, pd)
        c = np.round(np.round(np.exp(lc_) / tick) * tick, pd)
        h = np.round(np.round(np.exp(hi_l) / tick) * tick, pd)
        lw = np.round(np.round(np.exp(lo_l) / tick) * tick, pd)
        h = np.maximum(h, np.maximum(o, c))
        lw = np.minimum(lw, np.minimum(o, c))
        lw = np.minimum(np.maximum(lw, tick), np.minimum(o, c))  # positive unless the price itself is < tick
        ret = np.abs(lc_ - lo_) / np.maximum(sig, 1e-12)
        vol = self.spec.volume_per_minute * (step / MINUTE) * (0.4 + 1.2 * u3) * (0.6 + 0.4 * np.minimum(ret, 3.0))
        vol = np.round(vol * frac, self.qty_decimals)
        avg_px = (o + h + lw + c) / 4.0
        qvol = np.round(vol * avg_px, 8)
        trades = np.maximum((vol * 40.0 / max(self.spec.volume_per_minute, 1e-9)).astype(np.int64), (vol > 0).astype(np.int64))
        tb = np.round(vol * (0.3 + 0.4 * u4), self.qty_decimals)
        tbq = np.round(tb * avg_px, 8)
        return {
            "open_time": opens_t,
            "close_time": ends_t - 1,
            "open": o, "high": h, "low": lw, "close": c,
            "volume": vol, "quote_volume": qvol, "trades": trades,
            "taker_base": tb, "taker_quote": tbq,
        }


_ROW_FMT = '[%d,"%.8f","%.8f","%.8f","%.8f","%.8f",%d,"%.8f",%d,"%.8f","%.8f","0"]'
_ROW_KEYS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
             "taker_base", "taker_quote")


def _render_rows_slow(c: dict[str, np.ndarray], broken: dict[int, str] | None = None) -> str:
    cols = [c[k].tolist() for k in _ROW_KEYS]
    fmt = _ROW_FMT
    broken = broken or {}
    out = []
    for i, r in enumerate(zip(*cols)):
        kind = broken.get(i)
        out.append(fmt % r if kind is None else _broken_row(r, kind))
    return "[" + ",".join(out) + "]"


# ---- vectorised kline JSON writer -------------------------------------------
# Every row is laid out in a fixed-width byte matrix whose variable parts (groups
# of 4 digits) sit at 4-byte aligned offsets, so they are written as uint32
# columns from a "0000".."9999" lookup table - all decimal fields at once, all
# integer fields at once; a keep-mask then drops leading zeros and padding.
# Byte-identical to '%.8f' formatting (asserted by the tests), ~4x faster.
_TAB4 = np.frombuffer(b"".join(b"%04d" % i for i in range(10000)), dtype=np.uint32)
_POW10 = 10 ** np.arange(0, 19, dtype=np.int64)
_DEC_KEYS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_base", "taker_quote")
_INT_KEYS = ("open_time", "close_time", "trades")
_DG = 3  # digit groups (of 4) for the integer part of decimals: < 1e12
_IG = 4  # digit groups for integers: < 1e16


def _keep_table(groups: int) -> np.ndarray:
    """[word j][nd] -> uint32 keep-bytes of digit group j for a right-aligned nd-digit number."""
    width = 4 * groups
    tab = np.zeros((groups, width + 1), dtype=np.uint32)
    for nd in range(width + 1):
        mask = bytes(1 if i >= width - max(nd, 1) else 0 for i in range(width))
        tab[:, nd] = np.frombuffer(mask, dtype=np.uint32)
    return tab


def _build_layout():
    row, keep = bytearray(), bytearray()
    cols: dict[str, int] = {}

    def lit(b: bytes) -> None:
        pad = (-len(b)) % 4
        row.extend(b + b"\0" * pad)
        keep.extend(b"\1" * len(b) + b"\0" * pad)

    def number(key: str, groups: int, dec: bool) -> None:
        cols[key] = len(row) // 4
        row.extend(b"0" * 4 * groups)
        keep.extend(b"\0" * 4 * groups)  # filled per row
        if dec:
            lit(b".")
            row.extend(b"0" * 8)
            keep.extend(b"\1" * 8)

    lit(b"[")
    number("open_time", _IG, False)
    for k in ("open", "high", "low", "close", "volume"):
        lit(b',"')
        number(k, _DG, True)
        lit(b'"')
    lit(b",")
    number("close_time", _IG, False)
    lit(b',"')
    number("quote_volume", _DG, True)
    lit(b'",')
    number("trades", _IG, False)
    for k in ("taker_base", "taker_quote"):
        lit(b',"')
        number(k, _DG, True)
        lit(b'"')
    lit(b',"0"],')
    return (np.frombuffer(bytes(row), dtype=np.uint32), np.frombuffer(bytes(keep), dtype=np.uint32),
            np.array([cols[k] for k in _DEC_KEYS]), np.array([cols[k] for k in _INT_KEYS]))


_TROW32, _TKEEP32, _DCOLS, _ICOLS = _build_layout()
_DKEEP, _IKEEP = _keep_table(_DG), _keep_table(_IG)


def _render_rows(c: dict[str, np.ndarray], broken: dict[int, str] | None = None) -> str:
    """Binance kline JSON for candle columns ``c`` (see _PriceModel.candles)."""
    n = c["open_time"].shape[0]
    if broken or n == 0:
        return _render_rows_slow(c, broken)
    D = np.stack([c[k] for k in _DEC_KEYS], axis=1)
    ip = np.floor(D)
    fp = np.rint((D - ip) * 1e8).astype(np.int64)
    carry = fp >= 100_000_000
    ip = ip.astype(np.int64) + carry
    fp -= carry * 100_000_000
    iv = np.stack([c[k] for k in _INT_KEYS], axis=1).astype(np.int64)
    if ip.min() < 0 or ip.max() >= _POW10[4 * _DG] or iv.min() < 0 or iv.max() >= _POW10[4 * _IG]:
        return _render_rows_slow(c)  # outside the fast path's range
    M = np.tile(_TROW32, (n, 1))
    K = np.tile(_TKEEP32, (n, 1))
    for x, cols, groups, ktab in ((ip, _DCOLS, _DG, _DKEEP), (iv, _ICOLS, _IG, _IKEEP)):
        nd = np.searchsorted(_POW10, x, side="right")
        for j in range(groups):
            M[:, cols + j] = _TAB4[(x // int(_POW10[4 * (groups - 1 - j)])) % 10000]
            K[:, cols + j] = ktab[j][nd]
    fcols = _DCOLS + _DG + 1  # after the integer groups and the "." word
    M[:, fcols] = _TAB4[fp // 10000]
    M[:, fcols + 1] = _TAB4[fp % 10000]
    out = M.view(np.uint8)[K.view(np.uint8).view(bool)].tobytes()
    return "[" + out[:-1].decode("ascii") + "]"


def _broken_row(r: tuple, kind: str) -> str:
    t, o, h, lw, cl, v, ct, qv, n, tb, tq = r
    if kind == "high_lt_low":
        h, lw = min(o, cl) * 0.99, max(o, cl) * 1.01
    elif kind == "negative_volume":
        v = -v if v > 0 else -1.0
    elif kind == "misaligned_time":
        shift = max(1, (ct + 1 - t) // 2)
        t, ct = t + shift, ct + shift
    elif kind == "non_numeric":
        return json.dumps([t, "invalid", "invalid", "%.8f" % lw, "%.8f" % cl, "%.8f" % v, ct,
                           "%.8f" % qv, n, "%.8f" % tb, "%.8f" % tq, "0"], separators=(",", ":"))
    else:  # pragma: no cover - validated in set_faults
        raise ValueError(kind)
    return _ROW_FMT % (t, o, h, lw, cl, v, ct, qv, n, tb, tq)


# --------------------------------------------------------------------------- #
# faults, request log, errors
# --------------------------------------------------------------------------- #
@dataclass
class Faults:
    """Fault switches.  ``*_next`` switches count down once per matching request.

    ``endpoints`` lists the endpoint names (last path component, e.g. "klines",
    "exchangeInfo", "order") the ``*_next`` switches and latency apply to;
    ``("*",)`` means every endpoint.
    """

    rate_limit_next: int = 0
    retry_after_s: int = 1
    server_error_next: int = 0
    server_error_status: int = 503
    #: next N -> HTTP 500 {"code": -1000, "msg": "An unknown error occurred..."} (Binance's internal
    #: error, which ccxt raises as OperationFailed: not a NetworkError)
    internal_error_next: int = 0
    timeout_next: int = 0
    timeout_mode: str = "sleep"  # "sleep": answer after timeout_sleep_s; "drop": close without answer
    timeout_sleep_s: float = 2.0
    #: {symbol: [open_time_ms, ...]} / {symbol: {open_time_ms: kind}} / {symbol: fraction} / fraction
    malformed_rows: Any = field(default_factory=dict)
    malformed_kinds: tuple = MALFORMED_KINDS
    #: {symbol: [(start_ms, end_ms), ...]}: no candle whose open time is in [start, end)
    missing: dict = field(default_factory=dict)
    latency_ms: float = 0.0
    endpoints: tuple = ("klines", "uiKlines")
    # order faults (POST /api/v3/order and /api/v3/orderList/oco), whatever ``endpoints`` says
    reject_next: int = 0  # -2010 "Order rejected" (ccxt InvalidOrder)
    insufficient_balance_next: int = 0  # -2010 "Account has insufficient balance..." (InsufficientFunds)
    timeout_after_accept_next: int = 0  # the order is accepted, the answer comes timeout_sleep_s later
    partial_fill_ratio: float = 0.0  # first fill of an order takes only this fraction (0 = off)
    auth_fail: bool = False  # every signed request -> 401 -2015 (revoked key)


FAULT_NAMES = tuple(f.name for f in fields(Faults))


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    params: dict
    status: int
    time: float  # wall-clock seconds when the request arrived
    fault: str | None = None  # "rate_limit" / "server_error" / "internal_error" / "timeout" / None


# --------------------------------------------------------------------------- #
# HTTP plumbing
# --------------------------------------------------------------------------- #
class _Request:
    __slots__ = ("method", "path", "query", "body", "params", "headers", "endpoint")

    def __init__(self, method, path, query, body, params, headers):
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.params = params
        self.headers = headers
        self.endpoint = path.rsplit("/", 1)[-1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    sim: "ExchangeSimulator"


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "exchange-sim/1"
    timeout = 60  # idle keep-alive connections die eventually

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover
            pass
        self.server.sim._register_conn(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._unregister_conn(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr access log
        pass

    def _handle(self) -> None:
        self.server.sim._dispatch(self)

    do_GET = do_POST = do_DELETE = do_PUT = _handle

    def send_raw(self, status: int, body: bytes, content_type: str = "application/json;charset=UTF-8",
                 headers: dict | None = None) -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
                f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}"]
        if headers:
            head.extend(f"{k}: {v}" for k, v in headers.items())
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


# --------------------------------------------------------------------------- #
# the simulator
# --------------------------------------------------------------------------- #
class ExchangeSimulator(AccountMixin):
    """Binance-spot-compatible HTTP exchange on 127.0.0.1 (see README.md).

    Parameters (all keyword):
      markets         iterable of MarketSpec / dict / "BASE/QUOTE" (default DEFAULT_MARKETS)
      seed            price-path seed (default 0)
      now             fixed "now" in ms (None = wall clock); see set_now()/advance()
      partial_candles return the still-open candle (shrunk towards its open) like Binance does;
                      default False: only closed candles (open_time + interval <= now)
      faults          Faults or dict of fault switches (same names as set_faults)
      api_key/api_secret  credentials for private endpoints (secret=None: signatures not verified)
      balances        initial {asset: amount}
      fee_rate        commission rate charged on every fill (received asset), default 0.001
      spread          market orders fill at last 1m close * (1 +/- spread), default 0.0005
      api_permissions what GET /sapi/v1/account/apiRestrictions says (enableWithdrawals, ...)
      duplicate_client_order_id  "any" (default: a clientOrderId may be used once per symbol, ever)
                      or "open" (Binance's rule: unique among open orders)
      max_log         max RequestRecords kept (default 100_000)
      port            0 = pick a free port
    """

    def __init__(
        self,
        *,
        markets: Iterable[MarketSpec | Mapping[str, Any] | str] | None = None,
        seed: int = 0,
        now: int | None = None,
        partial_candles: bool = False,
        faults: Faults | Mapping[str, Any] | None = None,
        api_key: str = "sim-api-key",
        api_secret: str | None = "sim-api-secret",
        balances: Mapping[str, Any] | None = None,
        fee_rate: float | str = "0.001",
        spread: float | str = "0.0005",
        duplicate_client_order_id: str = "any",
        api_permissions: Mapping[str, Any] | None = None,
        max_log: int = 100_000,
        host: str = "127.0.0.1",
        port: int = 0,
        **fault_kwargs: Any,
    ):
        self.seed = seed
        self.host = host
        self._port_req = port
        self.partial_candles = partial_candles
        self.api_key = api_key
        self.api_secret = api_secret
        self.fee_rate = Decimal(str(fee_rate))
        self.spread = Decimal(str(spread))
        if duplicate_client_order_id not in ("any", "open"):
            raise ValueError("duplicate_client_order_id must be 'any' or 'open'")
        self.duplicate_client_order_id = duplicate_client_order_id
        self._lock = threading.RLock()
        self._state_lock = threading.RLock()
        self._now: int | None = None if now is None else int(now)
        self._markets: dict[str, MarketSpec] = {}
        self._models: dict[str, _PriceModel] = {}
        self._grids = {iv: _Grid(iv) for iv in INTERVALS}
        for m in (DEFAULT_MARKETS if markets is None else markets):
            self.add_market(m)
        self._faults = Faults()
        self._malformed_exact: dict[str, dict[int, str | None]] = {}
        self._malformed_frac: dict[str, float] = {}
        self._malformed_frac_all: float = 0.0
        self._missing: dict[str, list[tuple[int, int]]] = {}
        init_faults = dict(faults.__dict__) if isinstance(faults, Faults) else dict(faults or {})
        init_faults.update(fault_kwargs)
        self.set_faults(**init_faults)
        self._fault_counts = {"rate_limit": 0, "server_error": 0, "internal_error": 0, "timeout": 0,
                              "malformed_rows": 0, "missing_hits": 0, "unsupported": 0, "reject": 0,
                              "insufficient_balance": 0, "timeout_after_accept": 0, "partial_fill": 0,
                              "auth_fail": 0}
        self._log: deque[RequestRecord] = deque(maxlen=max_log)
        self._n_requests = 0
        self._candles_served = 0
        self._init_account(balances, api_permissions)  # trading state (account.py)
        # server
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set = set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "ExchangeSimulator":
        if self._server is not None:
            return self
        self._stopping.clear()
        srv = _Server((self.host, self._port_req), _Handler)
        srv.sim = self
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"exchange-sim:{srv.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        srv = self._server
        if srv is None:
            return
        self._stopping.set()  # wakes handlers sleeping in timeout/latency faults
        srv.shutdown()
        srv.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:  # close idle keep-alive connections so handler threads end
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "ExchangeSimulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _register_conn(self, c) -> None:
        with self._lock:
            self._conns.add(c)

    def _unregister_conn(self, c) -> None:
        with self._lock:
            self._conns.discard(c)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ ccxt config
    def ccxt_overrides(self, *, credentials: bool = False, enable_rate_limit: bool = False) -> dict:
        """``{"binance": {...ccxt config...}}`` - JSON-able, for TRADEPULSE_CCXT_OVERRIDES."""
        base = self.base_url
        api = {name: base + urlsplit(url).path for name, url in _ccxt_binance_api_urls().items()}
        cfg: dict[str, Any] = {
            # "test" too: set_sandbox_mode (testnet accounts) swaps urls.api for urls.test
            "urls": {"api": api, "test": dict(api)},
            "options": {
                "fetchMarkets": {"types": ["spot"]},  # only /api/v3/exchangeInfo (no fapi/dapi)
                "fetchCurrencies": False,  # no /sapi/v1/capital/config/getall
                "fetchMargins": False,  # no /sapi/v1/margin/allPairs & isolated/allPairs
                "adjustForTimeDifference": False,
                "defaultType": "spot",
            },
            "enableRateLimit": bool(enable_rate_limit),
        }
        if credentials:
            cfg["apiKey"] = self.api_key
            cfg["secret"] = self.api_secret or "unused"
        return {"binance": cfg}

    def ccxt_overrides_json(self, **kwargs: Any) -> str:
        """json.dumps(ccxt_overrides(**kwargs)) - the value for TRADEPULSE_CCXT_OVERRIDES."""
        return json.dumps(self.ccxt_overrides(**kwargs))

    def ccxt_config(self, **extra: Any) -> dict:
        """Flat ccxt.binance(...) config: overrides + credentials + ``extra``."""
        cfg = self.ccxt_overrides(credentials=True)["binance"]
        cfg.update(extra)
        return cfg

    def ccxt_client(self, *, async_: bool = False, **extra: Any):
        """A ready ccxt.binance (or ccxt.async_support.binance) pointed at this simulator."""
        if async_:
            import ccxt.async_support as ccxt_mod
        else:
            import ccxt as ccxt_mod
        return ccxt_mod.binance(self.ccxt_config(**extra))

    # ------------------------------------------------------------------ markets & time
    def add_market(self, m: MarketSpec | Mapping[str, Any] | str) -> MarketSpec:
        spec = _as_market(m)
        with self._lock:
            self._markets[spec.id] = spec
            self._models[spec.id] = _PriceModel(spec, self.seed)
        if hasattr(self, "_balances"):
            with self._state_lock:
                self._balances.setdefault(spec.base, Decimal(0))
                self._balances.setdefault(spec.quote, Decimal(0))
        return spec

    def remove_market(self, symbol: str) -> None:
        with self._lock:
            self._markets.pop(_norm_symbol(symbol), None)
            self._models.pop(_norm_symbol(symbol), None)

    @property
    def markets(self) -> dict[str, MarketSpec]:
        return dict(self._markets)

    def now(self) -> int:
        n = self._now
        return int(time.time() * 1000) if n is None else n

    def set_now(self, ms: int | None) -> None:
        """Fix the simulated clock (None = back to wall clock); open LIMIT orders are matched."""
        self._now = None if ms is None else int(ms)
        self._match_open_orders()

    def advance(self, ms: int) -> int:
        """Move the (now fixed) clock forward by ``ms``; returns the new now."""
        self.set_now(self.now() + int(ms))
        return self.now()

    # ------------------------------------------------------------------ faults
    @property
    def faults(self) -> Faults:
        """The live fault switches (read them; change them with set_faults)."""
        return self._faults

    def set_faults(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(FAULT_NAMES)
        if unknown:
            raise TypeError(f"unknown fault switch(es): {sorted(unknown)}; known: {FAULT_NAMES}")
        with self._lock:
            for k, v in kwargs.items():
                setattr(self._faults, k, v)
            f = self._faults
            if f.timeout_mode not in ("sleep", "drop"):
                raise ValueError("timeout_mode must be 'sleep' or 'drop'")
            bad = set(f.malformed_kinds) - set(MALFORMED_KINDS)
            if bad:
                raise ValueError(f"unknown malformed kinds {bad}; known: {MALFORMED_KINDS}")
            if isinstance(f.endpoints, str):
                f.endpoints = (f.endpoints,)
            if "malformed_rows" in kwargs:
                self._malformed_exact, self._malformed_frac, self._malformed_frac_all = {}, {}, 0.0
                mr = f.malformed_rows
                if isinstance(mr, (int, float)):
                    self._malformed_frac_all = float(mr)
                else:
                    for sym, spec in (mr or {}).items():
                        sid = _norm_symbol(sym)
                        if isinstance(spec, (int, float)):
                            self._malformed_frac[sid] = float(spec)
                        elif isinstance(spec, Mapping):
                            for kind in spec.values():
                                if kind is not None and kind not in MALFORMED_KINDS:
                                    raise ValueError(f"unknown malformed kind {kind!r}")
                            self._malformed_exact[sid] = {int(t): k for t, k in spec.items()}
                        else:
                            self._malformed_exact[sid] = {int(t): None for t in spec}
            if "missing" in kwargs:
                self._missing = {}
                for sym, ranges in (f.missing or {}).items():
                    rs = sorted((int(a), int(b)) for a, b in ranges)
                    self._missing[_norm_symbol(sym)] = rs

    @property
    def fault_counts(self) -> dict[str, int]:
        """How many times each fault fired (malformed_rows counts rows served)."""
        with self._lock:
            return dict(self._fault_counts)

    # ------------------------------------------------------------------ request log
    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def requests_to(self, endpoint: str) -> list[RequestRecord]:
        """Records whose path ends with ``endpoint`` (e.g. "klines", "/api/v3/order")."""
        return [r for r in self.requests if r.path.endswith(endpoint)]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self._n_requests, "candles_served": self._candles_served, **self._fault_counts}

    # ------------------------------------------------------------------ candle API (also usable directly)
    def candles(self, symbol: str, interval: str, start: int | None = None, end: int | None = None,
                limit: int = DEFAULT_KLINE_LIMIT, *, apply_faults: bool = True) -> list[list]:
        """What GET /api/v3/klines would return, as Python objects (strings for decimals)."""
        body, _ = self._klines_body(_norm_symbol(symbol), interval, start, end, limit, apply_faults, count=False)
        return json.loads(body)

    def expected_candle(self, symbol: str, interval: str, open_time: int) -> list:
        """The clean candle opening at ``open_time`` (ignores listing/now/faults)."""
        grid = self._grids[interval]
        k = grid.floor_index(open_time)
        c = self._models[_norm_symbol(symbol)].candles(grid, np.array([k], dtype=np.int64))
        return json.loads(_render_rows(c))[0]

    # ================================================================== internals
    def _dispatch(self, h: _Handler) -> None:
        t0 = time.time()
        split = urlsplit(h.path)
        path = split.path
        query = split.query
        body = b""
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            body = h.rfile.read(length)
        body_s = body.decode("utf-8", "replace")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if body_s and "application/json" not in (h.headers.get("Content-Type") or ""):
            params.update(parse_qsl(body_s, keep_blank_values=True))
        req = _Request(h.command, path, query, body_s, params, h.headers)
        fault = self._pre_faults(req)
        ctype, headers = "application/json;charset=UTF-8", None
        crash = None
        try:
            if fault == "timeout" and self._faults.timeout_mode == "drop":
                status, payload = 0, None  # close without answering
            elif fault == "rate_limit":
                raise ApiError(429, -1003, "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per "
                               "minute. Please use the websocket for live updates to avoid polling the API.",
                               {"Retry-After": str(int(self._faults.retry_after_s))})
            elif fault == "internal_error":
                raise ApiError(500, -1000, "An unknown error occurred while processing the request.")
            elif fault == "server_error":
                status = int(self._faults.server_error_status)
                payload, ctype = _html_error(status), "text/html"
            else:
                status, payload, headers = self._route(req)
        except ApiError as e:
            status, payload, headers = e.http_status, json.dumps({"code": e.code, "msg": e.msg}).encode(), e.headers
        except Exception as e:  # a bug in the simulator: tell the client loudly, then re-raise
            status, crash = 500, e
            payload = json.dumps({"code": -1000, "msg": f"exchange_sim internal error: {e!r}"}).encode()
        # log before answering, so a client that got its response always finds its record
        rec = RequestRecord(req.method, path, params, status, t0, fault)
        with self._lock:
            self._n_requests += 1
            self._log.append(rec)
        if payload is None:
            h.close_connection = True
        else:
            h.send_raw(status, payload, ctype, headers)
        if crash is not None:
            raise crash

    def _pre_faults(self, req: _Request) -> str | None:
        """Apply latency and consume one pending fault for this request (if it applies)."""
        f = self._faults
        if not ("*" in f.endpoints or req.endpoint in f.endpoints):
            return None
        if f.latency_ms:
            self._stopping.wait(f.latency_ms / 1000.0)
        kind = None
        with self._lock:
            if f.timeout_next > 0:
                f.timeout_next -= 1
                kind = "timeout"
            elif f.rate_limit_next > 0:
                f.rate_limit_next -= 1
                kind = "rate_limit"
            elif f.server_error_next > 0:
                f.server_error_next -= 1
                kind = "server_error"
            elif f.internal_error_next > 0:
                f.internal_error_next -= 1
                kind = "internal_error"
            if kind:
                self._fault_counts[kind] += 1
        if kind == "timeout" and f.timeout_mode == "sleep":
            self._stopping.wait(f.timeout_sleep_s)  # then answer normally - too late for the client
        return kind

    def _route(self, req: _Request) -> tuple[int, bytes, dict | None]:
        m, p = req.method, req.path
        if p == "/api/v3/klines" or p == "/api/v3/uiKlines":
            if m != "GET":
                raise _not_simulated(req)
            return self._ep_klines(req)
        if m == "GET":
            if p == "/api/v3/ping":
                return 200, b"{}", None
            if p == "/api/v3/time":
                return 200, json.dumps({"serverTime": self.now()}).encode(), None
            if p == "/api/v3/exchangeInfo":
                return 200, self._ep_exchange_info(req), None
            if p == "/api/v3/ticker/price":
                return 200, self._ep_ticker_price(req), None
        private = self._private_routes().get((m, p))
        if private is None:
            raise _not_simulated(req)
        self._authenticate(req)
        with self._state_lock:
            self._match_open_orders()
            result = private(req)
        if m == "POST" and self._take("timeout_after_accept_next"):
            self._stopping.wait(self._faults.timeout_sleep_s)  # accepted, but the answer comes too late
        return 200, json.dumps(result).encode(), None

    # ------------------------------------------------------------------ public endpoints
    def _market_or_error(self, sym: str | None) -> MarketSpec:
        if not sym:
            raise _err_mandatory("symbol")
        spec = self._markets.get(sym)
        if spec is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return spec

    def _ep_exchange_info(self, req: _Request) -> bytes:
        p = req.params
        wanted = None
        if p.get("symbol"):
            wanted = [p["symbol"]]
        elif p.get("symbols"):
            try:
                wanted = json.loads(p["symbols"])
            except ValueError:
                raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'.")
        specs = list(self._markets.values())
        if wanted is not None:
            specs = [self._market_or_error(s) for s in wanted]
        info = {
            "timezone": "UTC",
            "serverTime": self.now(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(s) for s in specs],
        }
        return json.dumps(info).encode()

    def _ep_ticker_price(self, req: _Request) -> bytes:
        sym = req.params.get("symbol")
        now = self.now()
        if sym:
            spec = self._market_or_error(sym)
            return json.dumps({"symbol": spec.id, "price": "%.8f" % self._last_price(spec.id, now)}).encode()
        return json.dumps([{"symbol": s, "price": "%.8f" % self._last_price(s, now)} for s in self._markets]).encode()

    def _last_price(self, sid: str, now: int) -> float:
        """Close of the last closed 1m candle."""
        return self._models[sid].price_at((now // MINUTE) * MINUTE)

    def _ep_klines(self, req: _Request) -> tuple[int, bytes, dict | None]:
        p = req.params
        sym = p.get("symbol")
        if not sym:
            raise _err_mandatory("symbol")
        interval = p.get("interval")
        if not interval:
            raise _err_mandatory("interval")
        self._market_or_error(sym)
        if interval not in INTERVALS:
            raise ApiError(400, -1120, "Invalid interval.")
        limit = _int_param(p, "limit", DEFAULT_KLINE_LIMIT)
        start = _int_param(p, "startTime")
        end = _int_param(p, "endTime")
        if limit is not None and limit < 1:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1-1000'.")
        if start is not None and end is not None and start > end:
            raise ApiError(400, -1023, "Start time is greater than end time.")
        body, n = self._klines_body(sym, interval, start, end, limit, True, count=True)
        return 200, body, None

    def _klines_body(self, sid: str, interval: str, start: int | None, end: int | None, limit: int,
                     apply_faults: bool, count: bool) -> tuple[bytes, int]:
        spec = self._markets.get(sid)
        if spec is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        if interval not in INTERVALS:
            raise ApiError(400, -1120, "Invalid interval.")
        model = self._models[sid]
        grid = self._grids[interval]
        limit = min(int(limit), MAX_KLINE_LIMIT)
        now = self.now()
        k_min = grid.ceil_index(spec.listing_time)
        k_max = grid.floor_index(now - 1) if self.partial_candles else grid.floor_index(now) - 1
        lo = k_min if start is None else max(k_min, grid.ceil_index(start))
        hi = k_max if end is None else min(k_max, grid.floor_index(end))
        gaps = []
        if apply_faults and sid in self._missing:
            for a, b in self._missing[sid]:
                ga, gb = grid.ceil_index(a), grid.ceil_index(b) - 1
                if gb >= ga:
                    gaps.append((ga, gb))
        ks, hit_gap = _select(lo, hi, limit, from_end=(start is None), gaps=gaps)
        if ks.size == 0:
            if count and hit_gap:
                with self._lock:
                    self._fault_counts["missing_hits"] += 1
            return b"[]", 0
        c = model.candles(grid, ks, now if self.partial_candles else None)
        broken = self._broken_rows(sid, grid, c["open_time"]) if apply_faults else None
        body = _render_rows(c, broken).encode()
        if count:
            with self._lock:
                self._candles_served += int(ks.size)
                if broken:
                    self._fault_counts["malformed_rows"] += len(broken)
                if hit_gap:
                    self._fault_counts["missing_hits"] += 1
        return body, int(ks.size)

    def _broken_rows(self, sid: str, grid: _Grid, opens: np.ndarray) -> dict[int, str] | None:
        kinds = tuple(self._faults.malformed_kinds) or MALFORMED_KINDS
        out: dict[int, str] = {}
        exact = self._malformed_exact.get(sid)
        if exact:
            pos = np.nonzero(np.isin(opens, np.fromiter(exact.keys(), dtype=np.int64)))[0]
            for i in pos.tolist():
                t = int(opens[i])
                kind = exact[t] or kinds[_mix_scalar(t ^ 0x5A5A) % len(kinds)]
                out[i] = kind
        frac = self._malformed_frac.get(sid, self._malformed_frac_all)
        if frac > 0:
            key = _str_key("malformed", self.seed, sid, grid.interval)
            u = _uniform(opens.astype(np.uint64), key)
            kind_u = _uniform(opens.astype(np.uint64), key ^ 0x77)
            for i in np.nonzero(u < frac)[0].tolist():
                out.setdefault(i, kinds[int(kind_u[i] * len(kinds)) % len(kinds)])
        return out or None

# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _select(lo: int, hi: int, limit: int, from_end: bool, gaps: list[tuple[int, int]]) -> tuple[np.ndarray, bool]:
    """Up to ``limit`` grid indexes in [lo, hi] minus ``gaps`` (inclusive index ranges).

    Takes the first ``limit`` (ascending) or, with ``from_end``, the last ``limit``
    (still returned ascending), as Binance does without / with only endTime.
    """
    empty = np.empty(0, dtype=np.int64)
    if hi < lo or limit <= 0:
        return empty, False
    if not gaps:
        if from_end:
            return np.arange(max(lo, hi - limit + 1), hi + 1, dtype=np.int64), False
        return np.arange(lo, min(hi, lo + limit - 1) + 1, dtype=np.int64), False
    # merge gaps and build the available segments
    merged: list[list[int]] = []
    for a, b in sorted(gaps):
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    segs = []
    cur = lo
    for a, b in merged:
        if b < cur:
            continue
        if a > hi:
            break
        if a > cur:
            segs.append((cur, a - 1))
        cur = b + 1
    if cur <= hi:
        segs.append((cur, hi))
    parts, need = [], limit
    hit = False
    order = reversed(segs) if from_end else segs
    for a, b in order:
        n = b - a + 1
        take = min(n, need)
        parts.append(np.arange(b - take + 1, b + 1) if from_end else np.arange(a, a + take))
        need -= take
        if need == 0:
            break
    # did any gap fall inside the span we actually covered?
    if parts:
        covered_lo = min(int(x[0]) for x in parts if x.size) if any(x.size for x in parts) else lo
        covered_hi = max(int(x[-1]) for x in parts if x.size) if any(x.size for x in parts) else hi
        if from_end:
            covered_hi = hi
        else:
            covered_lo = lo
        hit = any(a <= covered_hi and b >= covered_lo for a, b in merged)
    else:
        hit = any(a <= hi and b >= lo for a, b in merged)
    if not parts:
        return empty, hit
    if from_end:
        parts.reverse()
    return np.concatenate(parts).astype(np.int64), hit


def _html_error(status: int) -> bytes:
    reason = _REASONS.get(status, "Error")
    return (f"<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}"
            f"</h1></center><hr><center>exchange-sim</center></body></html>").encode()


def _not_simulated(req: _Request) -> ApiError:
    return ApiError(404, -1100, f"exchange_sim: endpoint not simulated: {req.method} {req.path}")


def _symbol_info(s: MarketSpec) -> dict:
    return {
        "symbol": s.id,
        "status": s.status,
        "baseAsset": s.base,
        "baseAssetPrecision": 8,
        "quoteAsset": s.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                       "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _s8(Decimal(s.tick_size)), "maxPrice": "1000000.00000000",
             "tickSize": _s8(Decimal(s.tick_size))},
            {"filterType": "LOT_SIZE", "minQty": _s8(Decimal(s.min_qty)), "maxQty": _s8(Decimal(s.max_qty)),
             "stepSize": _s8(Decimal(s.step_size))},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": _s8(Decimal(s.max_qty)),
             "stepSize": "0.00000000"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
             "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
             "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": _s8(Decimal(s.min_notional)), "applyMinToMarket": True,
             "maxNotional": _s8(Decimal(s.max_notional)), "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


# Every api key ccxt.binance knows, with its real URL (only the path is kept).
_FALLBACK_API_URLS = {
    "public": "https://api.binance.com/api/v3",
    "private": "https://api.binance.com/api/v3",
    "v1": "https://api.binance.com/api/v1",
    "sapi": "https://api.binance.com/sapi/v1",
    "sapiV2": "https://api.binance.com/sapi/v2",
    "sapiV3": "https://api.binance.com/sapi/v3",
    "sapiV4": "https://api.binance.com/sapi/v4",
    "dapiPublic": "https://dapi.binance.com/dapi/v1",
    "dapiPrivate": "https://dapi.binance.com/dapi/v1",
    "dapiPrivateV2": "https://dapi.binance.com/dapi/v2",
    "dapiData": "https://dapi.binance.com/futures/data",
    "eapiPublic": "https://eapi.binance.com/eapi/v1",
    "eapiPrivate": "https://eapi.binance.com/eapi/v1",
    "fapiPublic": "https://fapi.binance.com/fapi/v1",
    "fapiPublicV2": "https://fapi.binance.com/fapi/v2",
    "fapiPublicV3": "https://fapi.binance.com/fapi/v3",
    "fapiPrivate": "https://fapi.binance.com/fapi/v1",
    "fapiPrivateV2": "https://fapi.binance.com/fapi/v2",
    "fapiPrivateV3": "https://fapi.binance.com/fapi/v3",
    "fapiData": "https://fapi.binance.com/futures/data",
    "papi": "https://papi.binance.com/papi/v1",
    "papiV2": "https://papi.binance.com/papi/v2",
}
_API_URLS_CACHE: dict[str, str] | None = None


def _ccxt_binance_api_urls() -> dict[str, str]:
    """Fallback list + whatever the installed ccxt declares (so no key keeps a real URL)."""
    global _API_URLS_CACHE
    if _API_URLS_CACHE is None:
        urls = dict(_FALLBACK_API_URLS)
        try:
            import ccxt  # noqa: WPS433

            declared = ccxt.binance().describe()["urls"]["api"]
            urls.update({k: v for k, v in declared.items() if isinstance(v, str)})
        except Exception:  # ccxt missing/changed: the fallback list is still complete for 4.5.x
            pass
        _API_URLS_CACHE = urls
    return dict(_API_URLS_CACHE)
