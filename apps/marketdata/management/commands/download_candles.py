"""manage.py download_candles --exchange binance --symbol BTC/USDT --timeframe 1m --start 2024-01-01 --end 2024-02-01"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from tradepulse.core import context
from tradepulse.core.commands import TradePulseCommand

from apps.marketdata import services
from apps.marketdata.exchanges import exchange_ids
from apps.marketdata.serializers import DownloadJobSerializer
from apps.marketdata.timeframes import parse_time_ms


class Command(TradePulseCommand):
    help = ("Download candles from an exchange now, in this process, through the same job and service as the "
            "dashboard (resumes what is already stored). Shows a progress bar unless --json.")

    def add_options(self, parser):
        parser.add_argument("--exchange", required=True, help="ccxt id, e.g. binance")
        parser.add_argument("--symbol", required=True, help="e.g. BTC/USDT")
        parser.add_argument("--timeframe", required=True, help="e.g. 1m, 1h")
        parser.add_argument("--start", required=True, help="ISO-8601 (no offset = UTC) or epoch ms")
        parser.add_argument("--end", required=True, help="ISO-8601 (no offset = UTC) or epoch ms")
        parser.add_argument("--owner", help="username owning the job (default: the first superuser)")

    def run(self, **options):
        start = _time("--start", options["start"])
        end = _time("--end", options["end"])
        if options["exchange"].lower() not in exchange_ids():
            raise CommandError(f"--exchange: {options['exchange']!r} is not an exchange ccxt knows "
                               "(import files with import_candles)")
        owner = self._owner(options.get("owner"))
        exchange = services.exchange_get_or_create(name=options["exchange"])
        market = services.market_get_or_load(exchange=exchange, symbol=options["symbol"])
        with context.acting(user_id=owner.pk):  # audited as the owner, by way of this command
            job = services.download_start(owner=owner, market=market, timeframe=options["timeframe"], start_ms=start,
                                          end_ms=end, enqueue=False)
            job = services.download_run(job_id=job.pk, on_progress=None if self._json else self._bar)
        self.say()  # ends the progress bar's line
        self.say(f"Download #{job.pk} {job.state}: {job.message}" + (f" — {job.error}" if job.error else ""))
        data = DownloadJobSerializer(job).data
        if job.state != "succeeded":
            raise CommandError(f"download #{job.pk} {job.state}: {job.error or job.message}")
        return data

    def _owner(self, username):
        users = get_user_model().objects
        if username:
            user = users.filter(username=username, is_active=True).first()
            if user is None:
                raise CommandError(f"--owner: no active user {username!r}")
            return user
        user = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if user is None:
            raise CommandError("no owner for the job: pass --owner USERNAME (there is no superuser)")
        return user

    def _bar(self, job) -> None:
        width = 30
        filled = int(width * job.progress / 100)
        eta = f"ETA {job.eta_seconds:.0f} s" if job.eta_seconds and job.state == "running" else ""
        line = (f"\r[{'#' * filled}{'-' * (width - filled)}] {job.progress:5.1f} %  {job.rows_stored:,} stored  "
                f"{job.candles_per_second:,.0f}/s  {eta:<12}")
        self.stdout.write(line, ending="")
        self.stdout.flush()


def _time(option: str, value: str) -> int:
    try:
        return parse_time_ms(value)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}") from None
