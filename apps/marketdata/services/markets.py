"""Exchanges and markets: created on first use, filled from ccxt's load_markets."""
from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

import ccxt
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.audit.services import audit_record

from .. import exchanges
from ..models import Exchange, Market

log = logging.getLogger(__name__)


def exchange_get_or_create(*, name: str) -> Exchange:
    """The exchange called `name`: a ccxt id ("binance") gives a ccxt exchange, anything else a
    file source (for imported candles). Created on first use."""
    name = (name or "").strip()
    if not name:
        raise ValueError("Give an exchange name (a ccxt id such as binance, or a name for a file source).")
    code = name.lower() if name.lower() in ccxt.exchanges else slugify(name)
    if not code:
        raise ValueError(f"{name!r} cannot be used as an exchange name; use letters and digits.")
    existing = Exchange.objects.filter(code=code).first()
    if existing:
        return existing
    with transaction.atomic():
        if code in ccxt.exchanges:
            facts = exchanges.describe(code)
            exchange = Exchange(code=code, name=facts["name"], timeframes=facts["timeframes"],
                                supports_sandbox=facts["supports_sandbox"])
        else:
            exchange = Exchange(code=code, name=name, is_file_source=True)
        exchange.full_clean()
        exchange.save()
        audit_record("marketdata.exchange.created", target=exchange,
                     metadata={"code": code, "file_source": exchange.is_file_source})
    return exchange


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).normalize()
    except InvalidOperation:
        return None


def _digits(step: Decimal | None) -> int | None:
    if step is None or step <= 0:
        return None
    return max(0, -step.normalize().as_tuple().exponent)


def _precision(value, mode) -> tuple[int | None, Decimal | None]:
    """(decimal places, step) from a ccxt precision value in the exchange's precision mode."""
    if value is None:
        return None, None
    if mode == ccxt.TICK_SIZE:
        step = _decimal(value)
        return _digits(step), step
    if mode == ccxt.DECIMAL_PLACES:
        places = int(value)
        return places, Decimal(1).scaleb(-places)
    return None, None  # significant digits: no fixed step


def _limits(raw: dict | None) -> dict:
    out = {}
    for what, bounds in (raw or {}).items():
        if isinstance(bounds, dict):
            out[what] = {k: (format(_decimal(v), "f") if _decimal(v) is not None else None) for k, v in bounds.items()}
    return out


def exchange_load_markets(*, exchange: Exchange) -> dict:
    """Fetch the exchange's markets through ccxt and create/update Market rows; markets the
    exchange no longer lists become inactive. Returns counts {created, updated, deactivated}."""
    if exchange.is_file_source:
        raise ValidationError(f"{exchange.name} is a file source: its markets come from imported files.")
    client = exchanges.build_client(exchange.code)
    exchanges.call(client, "load_markets")
    mode = client.precisionMode
    seen, created, updated = set(), 0, 0
    with transaction.atomic():
        current = {m.symbol: m for m in Market.objects.filter(exchange=exchange)}
        new_rows = []
        for symbol, info in client.markets.items():
            price_places, price_step = _precision((info.get("precision") or {}).get("price"), mode)
            amount_places, amount_step = _precision((info.get("precision") or {}).get("amount"), mode)
            values = {
                "exchange_symbol": str(info.get("id") or "")[:64], "base": str(info.get("base") or "")[:32],
                "quote": str(info.get("quote") or "")[:32], "type": str(info.get("type") or "spot")[:16],
                "active": info.get("active") is not False, "price_precision": price_places,
                "amount_precision": amount_places, "price_step": price_step, "amount_step": amount_step,
                "limits": _limits(info.get("limits")),
            }
            seen.add(symbol)
            market = current.get(symbol)
            if market is None:
                new_rows.append(Market(exchange=exchange, symbol=symbol[:64], **values))
                continue
            changed = [k for k, v in values.items() if getattr(market, k) != v]
            if changed:
                for k in changed:
                    setattr(market, k, values[k])
                market.save(update_fields=[*changed, "updated_at"])
                updated += 1
        Market.objects.bulk_create(new_rows, batch_size=1000, ignore_conflicts=True)  # a concurrent load won
        created = len(new_rows)
        gone = [m.pk for s, m in current.items() if s not in seen and m.active]
        Market.objects.filter(pk__in=gone).update(active=False, updated_at=timezone.now())
        facts = exchanges.describe(exchange.code)
        exchange.timeframes = [tf for tf in facts["timeframes"] if tf in (client.timeframes or {})]
        exchange.supports_sandbox = facts["supports_sandbox"]
        exchange.markets_loaded_at = timezone.now()
        exchange.save(update_fields=["timeframes", "supports_sandbox", "markets_loaded_at", "updated_at"])
        result = {"created": created, "updated": updated, "deactivated": len(gone), "markets": len(seen)}
        audit_record("marketdata.markets.loaded", target=exchange, metadata=result)
    log.info("loaded %d markets of %s: %s", len(seen), exchange.code, result)
    return result


def market_get_or_load(*, exchange: Exchange, symbol: str) -> Market:
    """The market `symbol` of a ccxt exchange; loads the exchange's markets when it is not known
    yet. Raises UnknownSymbol when the exchange does not list it."""
    symbol = (symbol or "").strip().upper()
    market = Market.objects.filter(exchange=exchange, symbol=symbol).select_related("exchange").first()
    if market is None and not exchange.is_file_source:
        exchange_load_markets(exchange=exchange)
        market = Market.objects.filter(exchange=exchange, symbol=symbol).select_related("exchange").first()
    if market is None:
        raise exchanges.UnknownSymbol(f"Unknown symbol {symbol!r} on {exchange.code}.")
    return market


def market_get_or_create_for_import(*, exchange: Exchange, symbol: str, price_step=None, amount_step=None) -> Market:
    """The market candles are imported into: created from the symbol when new (no network), its
    steps set when given."""
    symbol = (symbol or "").strip().upper()
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"Symbol {symbol!r} must look like BASE/QUOTE, e.g. BTC/USDT.")
    steps = {}
    for name, value in (("price_step", price_step), ("amount_step", amount_step)):
        if value not in (None, ""):
            step = _decimal(value)
            if step is None or step <= 0:
                raise ValueError(f"--{name.replace('_', '-')}: {value!r} is not a positive number.")
            steps[name] = step
            steps[name.replace("step", "precision")] = _digits(step)
    with transaction.atomic():
        market, created = Market.objects.select_for_update().get_or_create(
            exchange=exchange, symbol=symbol,
            defaults={"base": base, "quote": quote.split(":")[0], "exchange_symbol": symbol.replace("/", ""), **steps})
        if not created and steps:
            for k, v in steps.items():
                setattr(market, k, v)
            market.full_clean()
            market.save(update_fields=[*steps, "updated_at"])
        if created or steps:
            audit_record("marketdata.market.created" if created else "marketdata.market.steps_changed", target=market,
                         metadata={k: str(v) for k, v in steps.items()})
    return market
