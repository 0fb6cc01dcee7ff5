"""Pieces of Binance's wire protocol shared by the public (server.py) and private (account.py)
halves of the simulator: API errors, parameter parsing, number formatting, symbol ids."""
from __future__ import annotations

from decimal import ROUND_DOWN, Decimal


class ApiError(Exception):
    def __init__(self, http_status: int, code: int, msg: str, headers: dict | None = None):
        super().__init__(f"{http_status} {code} {msg}")
        self.http_status = http_status
        self.code = code
        self.msg = msg
        self.headers = headers or {}


def _err_mandatory(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _int_param(params: dict, name: str, default: int | None = None) -> int | None:
    v = params.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except (TypeError, ValueError):
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")


def _dec_param(params: dict, name: str) -> Decimal | None:
    v = params.get(name)
    if v is None or v == "":
        return None
    try:
        d = Decimal(v)
    except Exception:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")
    if not d.is_finite():
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return d


_Q8 = Decimal("0.00000001")


def _s8(d: Decimal | float | int) -> str:
    return format(Decimal(d).quantize(_Q8, rounding=ROUND_DOWN) if not isinstance(d, float)
                  else Decimal(repr(d)).quantize(_Q8), "f")




def _norm_symbol(s: str) -> str:
    """'BTC/USDT' or 'BTCUSDT' -> 'BTCUSDT'."""
    return s.replace("/", "").replace("-", "").upper()


def _strip_signature(s: str) -> str:
    if not s or "signature=" not in s:
        return s
    return "&".join(part for part in s.split("&") if not part.startswith("signature="))
