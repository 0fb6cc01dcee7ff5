"""Importing candles from CSV files through the same validation and upsert as downloads."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from apps.audit.services import audit_record

from ..timeframes import check_timeframe, ms_to_iso, parse_time_ms
from .ingest import IngestResult, candles_ingest
from .markets import exchange_get_or_create, market_get_or_create_for_import

CHUNK_ROWS = 200_000
MAX_REASONS = 100
TIME_COLUMNS = ("timestamp", "time", "open_time", "date", "datetime")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass
class ImportReport:
    path: str
    exchange: str
    symbol: str
    timeframe: str
    market_id: int
    rows_read: int = 0
    rows_stored: int = 0
    rows_rejected: int = 0
    rejected_by_kind: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # "line 7: high 1.0 is below max(open, close) 2.0 at …"
    first: str | None = None
    last: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _columns(header: list[str]) -> list[int] | None:
    """Positions of time, open, high, low, close, volume when the first row is a header."""
    names = [h.strip().lower() for h in header]
    time_col = next((names.index(n) for n in TIME_COLUMNS if n in names), None)
    if time_col is None or any(c not in names for c in VALUE_COLUMNS):
        return None
    return [time_col, *(names.index(c) for c in VALUE_COLUMNS)]


def candles_import_csv(*, path: str | Path, exchange_name: str, symbol: str, timeframe: str,
                       price_step=None, amount_step=None) -> ImportReport:
    """Import a CSV of candles: columns timestamp (epoch ms or ISO-8601; no offset = UTC), open,
    high, low, close, volume — with a header naming them (any order) or in that order without
    one. Unreadable lines and rows the validation rejects are reported with their line number
    and reason; good rows are upserted. An exchange name that is no ccxt id becomes a file
    source. Raises ValueError for bad input (missing file, unknown timeframe, bad header)."""
    try:
        check_timeframe(timeframe)
    except ValueError as exc:
        raise ValueError(f"--timeframe: {exc}") from None
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    exchange = exchange_get_or_create(name=exchange_name)
    market = market_get_or_create_for_import(exchange=exchange, symbol=symbol, price_step=price_step,
                                             amount_step=amount_step)
    report = ImportReport(str(path), exchange.code, market.symbol, timeframe, market.pk)
    total = IngestResult()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            raise ValueError(f"{path}: the file is empty")
        cols = _columns(first)
        pending: list[tuple[int, list[str]]] = []
        if cols is None:
            if len(first) < 6:
                raise ValueError(f"{path}: expected columns timestamp, open, high, low, close, volume; line 1 has "
                                 f"{len(first)} field(s)")
            if not _looks_like_data(first):
                raise ValueError(f"{path}: line 1 is neither a header naming timestamp, open, high, low, close, volume "
                                 "nor a row of data")
            cols = list(range(6))
            pending.append((1, first))
        for line_no, row in enumerate(reader, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            pending.append((line_no, row))
            if len(pending) >= CHUNK_ROWS:
                total.add(_ingest_chunk(pending, cols, market, timeframe, report))
                pending = []
        if pending:
            total.add(_ingest_chunk(pending, cols, market, timeframe, report))
    report.rows_stored = total.stored
    report.rows_rejected += total.rejected
    for kind, n in total.counts().items():
        if kind not in ("outlier", "stale"):
            report.rejected_by_kind[kind] = report.rejected_by_kind.get(kind, 0) + n
    report.first, report.last = ms_to_iso(total.first_ms), ms_to_iso(total.last_ms)
    audit_record("marketdata.candles.imported", target=market,
                 metadata={k: v for k, v in report.as_dict().items() if k != "reasons"})
    return report


def _looks_like_data(row: list[str]) -> bool:
    try:
        parse_time_ms(row[0])
        float(row[1])
        return True
    except ValueError:
        return False


def _ingest_chunk(pending, cols, market, timeframe, report: ImportReport) -> IngestResult:
    lines, parsed = [], []
    for line_no, row in pending:
        report.rows_read += 1
        try:
            if len(row) <= max(cols):
                raise ValueError(f"expected {max(cols) + 1} fields, found {len(row)}")
            t = parse_time_ms(row[cols[0]])
            values = []
            for name, c in zip(("open", "high", "low", "close", "volume"), cols[1:]):
                try:
                    values.append(float(row[c]))
                except ValueError:
                    raise ValueError(f"{name} {row[c]!r} is not a number") from None
            if not all(math.isfinite(v) for v in values):
                raise ValueError("values must be finite numbers")
        except ValueError as exc:
            report.rows_rejected += 1
            report.rejected_by_kind["unreadable"] = report.rejected_by_kind.get("unreadable", 0) + 1
            _reason(report, f"line {line_no}: {exc}")
            continue
        lines.append(line_no)
        parsed.append([t, *values])
    if not parsed:
        return IngestResult()
    matrix = np.array(parsed, dtype=np.float64)
    result = candles_ingest(market=market, timeframe=timeframe, rows=matrix, source="import")
    by_time: dict[int, list[int]] = {}
    for line_no, t in zip(lines, matrix[:, 0].astype(np.int64).tolist()):
        by_time.setdefault(t, []).append(line_no)
    for f in result.findings:
        candidates = by_time.get(f.start_ms) or ["?"]
        # a duplicate is the second line with that time; anything else the first
        line = candidates[-1] if f.kind == "duplicate" else candidates[0]
        prefix = "" if f.rejected else "stored but flagged: "
        _reason(report, f"line {line}: {prefix}{f.kind}: {f.detail}")
    return result


def _reason(report: ImportReport, text: str) -> None:
    if len(report.reasons) < MAX_REASONS:
        report.reasons.append(text)
