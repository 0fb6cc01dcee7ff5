"""manage.py candle_coverage [--exchange binance --symbol BTC/USDT --timeframe 1m] [--rebuild]"""
from __future__ import annotations

from django.core.management.base import CommandError

from tradepulse.core.commands import TradePulseCommand

from apps.marketdata import selectors, services
from apps.marketdata.models import Exchange, Market
from apps.marketdata.serializers import coverage_data
from apps.marketdata.timeframes import check_timeframe


class Command(TradePulseCommand):
    help = "Print the covered ranges and the gaps of stored candles per market × timeframe."

    def add_options(self, parser):
        parser.add_argument("--exchange", help="ccxt id or file-source name")
        parser.add_argument("--symbol", help="e.g. BTC/USDT (needs --exchange)")
        parser.add_argument("--timeframe", help="e.g. 1m")
        parser.add_argument("--rebuild", action="store_true",
                            help="recompute coverage from the candles first (repairs the maintained table)")

    def run(self, **options):
        market = None
        if options.get("timeframe"):
            try:
                check_timeframe(options["timeframe"])
            except ValueError as exc:
                raise CommandError(f"--timeframe: {exc}") from None
        if options.get("symbol"):
            if not options.get("exchange"):
                raise CommandError("--symbol needs --exchange")
            exchange = Exchange.objects.filter(code__iexact=options["exchange"]).first() or \
                Exchange.objects.filter(name__iexact=options["exchange"]).first()
            if exchange is None:
                raise CommandError(f"--exchange: no exchange {options['exchange']!r}")
            market = Market.objects.filter(exchange=exchange, symbol=options["symbol"].upper()).first()
            if market is None:
                raise CommandError(f"--symbol: no market {options['symbol']!r} on {exchange.code}")
        rebuilt = []
        if options["rebuild"]:
            rebuilt = services.coverage_rebuild(market=market, timeframe=options.get("timeframe"))
            self.say(f"coverage rebuilt from the candles: {len(rebuilt)} series corrected")
        exchange_id = None
        if options.get("exchange") and market is None:
            exchange = Exchange.objects.filter(code__iexact=options["exchange"]).first()
            if exchange is None:
                raise CommandError(f"--exchange: no exchange {options['exchange']!r}")
            exchange_id = exchange.pk
        covs = selectors.coverage_list(market_ids=[market.pk] if market else None,
                                       timeframe=options.get("timeframe"), exchange_id=exchange_id)
        markets = Market.objects.select_related("exchange").in_bulk({c.market_id for c in covs})
        series = [coverage_data(c, markets[c.market_id]) for c in covs]
        if not series:
            self.say("no candles stored" + (" for that selection" if market or options.get("timeframe") else ""))
        for s in series:
            self.say(f"{s['exchange']} {s['symbol']} {s['timeframe']}: {s['candles']:,} candles, "
                     f"{len(s['ranges'])} range(s), {len(s['gaps'])} gap(s) ({s['missing_candles']:,} candles missing)")
            for r in s["ranges"]:
                self.say(f"  covered {r['start']} → {r['end']}  {r['candles']:,} candles")
            for g in s["gaps"]:
                why = (" (the exchange has no data)" if g["exchange_has_no_data"]
                       else " (removed by retention)" if g["before_retention"] else "")
                self.say(f"  gap     {g['start']} → {g['end']}  {g['candles']:,} candles{why}")
        return {"series": series, "rebuilt": rebuilt}
