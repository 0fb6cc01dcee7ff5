"""Market data: exchanges, markets, the one candle store, downloads, coverage, quality, retention.

Times of candles and ranges are int epoch milliseconds (UTC); ranges are half-open
[start_ms, end_ms) over bar OPEN times. Candles are float64 for speed; market precision and
steps are Decimal because orders are rounded to them.
"""
from __future__ import annotations

from decimal import Decimal

import ccxt
from django.core.exceptions import ValidationError
from django.db import models

from tradepulse.core.jobs import Job
from tradepulse.core.models import TimeStampedModel

from .timeframes import ALL_TIMEFRAMES, bars_between, ms_to_iso

STEP = {"max_digits": 40, "decimal_places": 20, "null": True, "blank": True}


def validate_timeframe(value: str) -> None:
    if value not in ALL_TIMEFRAMES:
        raise ValidationError(f"Unknown timeframe {value!r}; supported: {', '.join(ALL_TIMEFRAMES)}.")


class Exchange(TimeStampedModel):
    """A ccxt exchange (code = ccxt id, e.g. "binance") or a file source (candles imported from CSV)."""

    code = models.SlugField(max_length=50, unique=True,
                            help_text="ccxt exchange id (e.g. binance), or the name of a file source.")
    name = models.CharField(max_length=100)
    is_file_source = models.BooleanField(default=False, help_text="Candles come from imported files, not from ccxt.")
    supports_sandbox = models.BooleanField(default=False, help_text="ccxt knows a testnet/sandbox for it.")
    timeframes = models.JSONField(default=list, blank=True, help_text="Timeframes both the exchange and TradePulse support.")
    active = models.BooleanField(default=True)
    markets_loaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if not self.is_file_source and self.code not in ccxt.exchanges:
            raise ValidationError({"code": f"{self.code!r} is no ccxt exchange id; mark it as a file source "
                                           "or use one of ccxt's ids (e.g. binance, kraken)."})


class Market(TimeStampedModel):
    """One tradable symbol on an exchange, as ccxt's load_markets describes it."""

    exchange = models.ForeignKey(Exchange, on_delete=models.PROTECT, related_name="markets")
    symbol = models.CharField(max_length=64, help_text="Unified symbol, e.g. BTC/USDT.")
    exchange_symbol = models.CharField(max_length=64, blank=True, help_text="The exchange's own id, e.g. BTCUSDT.")
    base = models.CharField(max_length=32)
    quote = models.CharField(max_length=32)
    type = models.CharField(max_length=16, default="spot")
    active = models.BooleanField(default=True)
    price_precision = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Decimal places of prices.")
    amount_precision = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Decimal places of amounts.")
    price_step = models.DecimalField(**STEP, help_text="Tick size: prices are multiples of it.")
    amount_step = models.DecimalField(**STEP, help_text="Lot step: amounts are multiples of it.")
    limits = models.JSONField(default=dict, blank=True,
                              help_text='ccxt limits as decimal strings: {"amount": {"min": "0.001", "max": null}, ...}')

    class Meta:
        ordering = ["exchange__name", "symbol"]
        constraints = [models.UniqueConstraint(fields=["exchange", "symbol"], name="marketdata_market_unique_symbol")]
        indexes = [models.Index(fields=["quote", "active"])]

    def __str__(self) -> str:
        return f"{self.symbol} @ {self.exchange.code}" if self.exchange_id else self.symbol

    def limit(self, what: str, bound: str) -> Decimal | None:
        """A limit as Decimal: market.limit("amount", "min")."""
        value = (self.limits.get(what) or {}).get(bound)
        return None if value in (None, "") else Decimal(str(value))


class Candle(models.Model):
    """One OHLCV bar. The composite primary key (market, timeframe, open_time) is the only index;
    it serves range scans. Columns are ordered so rows pack tightly (fixed-width first).

    The market reference has no database-level foreign key: a row-by-row referential check
    would halve bulk ingest speed. Candles are deleted with their market by the ORM cascade,
    and written only by `apps.marketdata.storage`.
    """

    pk = models.CompositePrimaryKey("market", "timeframe", "open_time")
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    open_time = models.BigIntegerField(help_text="Bar open time, epoch ms UTC.")
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()
    timeframe = models.CharField(max_length=4, validators=[validate_timeframe])

    def __str__(self) -> str:
        return f"{self.market_id} {self.timeframe} {ms_to_iso(self.open_time)}"


class CandleBlock(models.Model):
    """Read cache of the candle table (PostgreSQL): the candles of one fixed span of
    BLOCK_BARS bars packed as column arrays, so a million candles load as ~120 rows.

    Built on first read, deleted by every write to its span in the same transaction and under
    the same series lock as the write, so it never serves stale candles. Nothing but
    `apps.marketdata.storage` reads or writes it; `candle_coverage --rebuild` drops it.
    """

    pk = models.CompositePrimaryKey("market", "timeframe", "start_ms")
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    start_ms = models.BigIntegerField()
    rows = models.IntegerField()
    data = models.BinaryField(help_text="time int64[rows], then open, high, low, close, volume float64[rows]; little-endian")
    timeframe = models.CharField(max_length=4)


class DownloadKind(models.TextChoices):
    DOWNLOAD = "download", "Download"
    FILL = "fill", "Fill gap"


class DownloadJob(Job):
    """Download one market × timeframe × [start_ms, end_ms) from its exchange."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="download_jobs")
    timeframe = models.CharField(max_length=4, validators=[validate_timeframe])
    start_ms = models.BigIntegerField(help_text="First bar open time wanted (epoch ms, inclusive).")
    end_ms = models.BigIntegerField(help_text="Bars opening before this time (epoch ms, exclusive).")
    kind = models.CharField(max_length=16, choices=DownloadKind.choices, default=DownloadKind.DOWNLOAD)
    total_candles = models.BigIntegerField(default=0, help_text="Bars in the range.")
    rows_fetched = models.BigIntegerField(default=0)
    rows_stored = models.BigIntegerField(default=0, help_text="New or revised candles written.")
    rows_rejected = models.BigIntegerField(default=0)
    candles_per_second = models.FloatField(default=0.0)
    eta_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["market", "timeframe", "state"])]

    def __str__(self) -> str:
        return f"Download #{self.pk}: {self.market.symbol} {self.timeframe}" if self.market_id else f"Download #{self.pk}"

    def clean(self):
        if self.start_ms is not None and self.end_ms is not None and self.start_ms >= self.end_ms:
            raise ValidationError({"end": f"The end ({ms_to_iso(self.end_ms)}) must be after the start "
                                          f"({ms_to_iso(self.start_ms)})."})


class DownloadLease(models.Model):
    """Which job is downloading a market × timeframe right now: one at a time (see services)."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+")
    timeframe = models.CharField(max_length=4)
    holder = models.ForeignKey(DownloadJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    acquired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["market", "timeframe"], name="marketdata_lease_unique")]


class IssueKind(models.TextChoices):
    GAP = "gap", "Gap"
    BAD_OHLC = "bad_ohlc", "Bad OHLC values"
    DUPLICATE = "duplicate", "Duplicate time"
    MISALIGNED = "misaligned", "Time not on the timeframe's grid"
    OUT_OF_ORDER = "out_of_order", "Out of order"
    OUTLIER = "outlier", "Price outlier"
    STALE = "stale", "Stale (flat, no volume)"


class DataQualityIssue(models.Model):
    """A problem found in candle data. Row problems are one issue per bad candle time; a gap is
    one issue per missing interval. `exchange_has_no_data` marks a gap the exchange itself could
    not fill when asked: "fill gaps" leaves it alone.

    Visibility follows the download job that found it (tradepulse.core.permissions): another
    user's download's issues are theirs; issues with no job (imports, system checks) are
    reference data everyone with the role may view and only operators may resolve."""

    OWNED_THROUGH = "job"

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="quality_issues")
    timeframe = models.CharField(max_length=4)
    kind = models.CharField(max_length=16, choices=IssueKind.choices, db_index=True)
    start_ms = models.BigIntegerField()
    end_ms = models.BigIntegerField()
    row_count = models.PositiveIntegerField(default=1, help_text="Rows affected (for a gap: bars missing).")
    detail = models.CharField(max_length=500, blank=True)
    sample = models.JSONField(default=dict, blank=True, help_text="The offending row as received.")
    rejected = models.BooleanField(default=True, help_text="The row was not stored (outliers and stale bars are).")
    exchange_has_no_data = models.BooleanField(default=False)
    source = models.CharField(max_length=16, default="download")
    job = models.ForeignKey(DownloadJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="issues")
    detected_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "market_id", "timeframe", "start_ms"]
        constraints = [models.UniqueConstraint(fields=["market", "timeframe", "kind", "start_ms"],
                                               name="marketdata_issue_unique")]
        indexes = [models.Index(fields=["market", "timeframe", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.timeframe} {ms_to_iso(self.start_ms)}"


class CandleCoverage(models.Model):
    """A maximal run of consecutive stored candles: [start_ms, end_ms) with end = last open + bar.

    Maintained by the upsert in the same transaction as the candles; `coverage_rebuild`
    recomputes it from the candles (the authority) with a window query.
    """

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="coverage")
    timeframe = models.CharField(max_length=4)
    start_ms = models.BigIntegerField()
    end_ms = models.BigIntegerField()

    class Meta:
        ordering = ["market_id", "timeframe", "start_ms"]
        verbose_name_plural = "candle coverage"
        constraints = [models.UniqueConstraint(fields=["market", "timeframe", "start_ms"], name="marketdata_coverage_unique")]

    def __str__(self) -> str:
        return f"{self.timeframe} {ms_to_iso(self.start_ms)} → {ms_to_iso(self.end_ms)}"

    @property
    def candles(self) -> int:
        return bars_between(self.start_ms, self.end_ms, self.timeframe)


class RetentionPolicy(TimeStampedModel):
    """Keep candles of a timeframe for `keep_days` days; older ones are deleted by the retention
    task, except ranges a registered guard protects (active deployments, running backtests)."""

    timeframe = models.CharField(max_length=4, unique=True, validators=[validate_timeframe])
    keep_days = models.PositiveIntegerField()
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["timeframe"]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"{self.timeframe}: keep {self.keep_days} days"

    def clean(self):
        if self.keep_days is not None and self.keep_days < 1:
            raise ValidationError({"keep_days": "Keep at least one day."})
