"""manage.py import_candles PATH --exchange NAME --symbol SYM --timeframe TF [--price-step X --amount-step Y]
[--revise --reason TEXT]"""
from __future__ import annotations

from django.core.management.base import CommandError

from tradepulse.core.commands import TradePulseCommand

from apps.marketdata import services
from apps.marketdata.services.imports import ImportFailed


class Command(TradePulseCommand):
    help = ("Import candles from a CSV file (timestamp as epoch ms or ISO-8601, no offset = UTC; open, high, low, "
            "close, volume) through the same validation and upsert as downloads. An exchange name that is no ccxt "
            "id becomes a file source. Candles already stored are kept unless --revise (audited, with --reason).")

    def add_options(self, parser):
        parser.add_argument("path")
        parser.add_argument("--exchange", required=True, help="ccxt id (binance) or a file-source name")
        parser.add_argument("--symbol", required=True, help="BASE/QUOTE, e.g. BTC/USDT")
        parser.add_argument("--timeframe", required=True, help="e.g. 1m, 1h, 1d")
        parser.add_argument("--price-step", help="tick size of the market (sets its price step)")
        parser.add_argument("--amount-step", help="lot step of the market (sets its amount step)")
        parser.add_argument("--revise", action="store_true",
                            help="replace stored candles that differ from the file's (audited; needs --reason)")
        parser.add_argument("--reason", default="", help="why the stored candles are revised (with --revise)")

    def run(self, **options):
        try:
            report = services.candles_import_csv(path=options["path"], exchange_name=options["exchange"],
                                                 symbol=options["symbol"], timeframe=options["timeframe"],
                                                 price_step=options["price_step"], amount_step=options["amount_step"],
                                                 revise=options["revise"], reason=options["reason"])
        except ImportFailed as exc:
            for reason in exc.report.reasons[:20]:
                self.say(f"  {reason}")
            raise CommandError(str(exc)) from None
        self.say(f"{report.path}: {report.rows_read:,} rows read, {report.rows_stored:,} stored, "
                 f"{report.rows_rejected:,} rejected ({report.exchange} {report.symbol} {report.timeframe}"
                 + (f", {report.first} → {report.last}" if report.first else "") + ")")
        if report.rows_existing:
            self.say(f"already stored: {report.rows_existing:,} ({report.rows_conflicting:,} different; "
                     + (f"{report.rows_revised:,} revised" if report.rows_revised else "kept") + ")")
        if report.rejected_by_kind:
            self.say("rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(report.rejected_by_kind.items())))
        for reason in report.reasons:
            self.say(f"  {reason}")
        return report.as_dict()
