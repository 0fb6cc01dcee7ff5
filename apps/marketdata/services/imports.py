"""Importing candles from CSV files through the same validation and store as downloads.

Fast path: the file is read in blocks of bytes; line shapes are checked with numpy and fields
parsed by pandas' C reader, column by column (no Python step per row), so an import runs near the store's
own COPY rate (bench/bench_import.py). Lines that cannot be read (wrong number of fields, a cell
that is not a number, a time that is not a time or lies outside 1970-2100) are rejected one by
one and named by line number; the rest of the file is imported.

Candles already stored are kept: an import never silently replaces them. `revise=True` (the
command's `--revise --reason ...`) replaces those that differ, writes one audit event listing
them (before and after) and reports them. The whole import is one transaction: a file that
yields no candle (or fails) leaves nothing behind, not even the exchange or market it named.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import transaction

from apps.audit.services import audit_record
from tradepulse.core.times import EARLIEST_MS, LATEST_MS

from ..timeframes import check_timeframe, ms_to_iso, parse_time_ms
from .ingest import IngestResult, candles_ingest
from .markets import exchange_get_or_create, market_get_or_create_for_import

BLOCK_BYTES = 8 << 20  # about 130,000 candle lines
MAX_REASONS = 100
TIME_COLUMNS = ("timestamp", "time", "open_time", "date", "datetime")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


class ImportFailed(ValueError):
    """No candle of the file could be stored (the report says why); nothing was kept."""

    def __init__(self, message: str, report: ImportReport):
        super().__init__(message)
        self.report = report


@dataclass
class ImportReport:
    path: str
    exchange: str
    symbol: str
    timeframe: str
    market_id: int | None = None
    rows_read: int = 0
    rows_stored: int = 0
    rows_rejected: int = 0
    rows_existing: int = 0  # bars already stored (kept, unless revised)
    rows_conflicting: int = 0  # ...whose stored values differ from the file's
    rows_revised: int = 0  # ...replaced by the file's values (revise=True)
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
                       price_step=None, amount_step=None, revise: bool = False, reason: str = "") -> ImportReport:
    """Import a CSV of candles: columns timestamp (epoch ms or ISO-8601; no offset = UTC), open,
    high, low, close, volume — with a header naming them (any order) or in that order without
    one. Unreadable lines and rows the validation rejects are reported with their line number
    and reason; good rows are stored. Bars already stored are kept unless `revise` (then those
    that differ are replaced, audited with `reason`, and counted in rows_revised). An exchange
    name that is no ccxt id becomes a file source. Raises ValueError for bad input (missing
    file, unknown timeframe, bad header) and ImportFailed when no row could be stored; either
    way nothing is left behind."""
    try:
        check_timeframe(timeframe)
    except ValueError as exc:
        raise ValueError(f"--timeframe: {exc}") from None
    if revise and not reason.strip():
        raise ValueError("--revise replaces stored candles: give the reason with --reason.")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with path.open("rb") as handle:
        first_line = handle.readline().decode("utf-8-sig").strip("\r\n")
    first = next(csv.reader([first_line]), None) if first_line.strip() else None
    if first is None:
        raise ValueError(f"{path}: the file is empty")
    cols = _columns(first)
    has_header = cols is not None
    if cols is None:
        if len(first) < 6:
            raise ValueError(f"{path}: expected columns timestamp, open, high, low, close, volume; line 1 has "
                             f"{len(first)} field(s)")
        if not _looks_like_data(first):
            raise ValueError(f"{path}: line 1 is neither a header naming timestamp, open, high, low, close, volume "
                             "nor a row of data")
        cols = list(range(6))
    width = len(first)
    with transaction.atomic():
        exchange = exchange_get_or_create(name=exchange_name)
        market = market_get_or_create_for_import(exchange=exchange, symbol=symbol, price_step=price_step,
                                                 amount_step=amount_step)
        report = ImportReport(str(path), exchange.code, market.symbol, timeframe, market.pk)
        total = IngestResult()
        for line_no, block in _blocks(path, skip_first=has_header):
            matrix, lines = _parse_block(block, line_no, width, cols, report)
            if len(matrix):
                total.add(_ingest(matrix, lines, market, timeframe, report, revise))
        _summarise(report, total, revise)
        if report.rows_read and not report.rows_stored and not report.rows_existing:
            raise ImportFailed(f"no row of {path} could be imported ({report.rows_rejected} rejected); first reason: "
                               f"{report.reasons[0] if report.reasons else 'unknown'}", report)
        if revise and total.changed:
            audit_record("marketdata.candles.revised", target=market, reason=reason,
                         metadata={"timeframe": timeframe, "path": str(path), "revised": total.changed,
                                   "candles": [{**c, "time": ms_to_iso(c["time"])} for c in total.changes[:50]]})
        audit_record("marketdata.candles.imported", target=market, reason=reason,
                     metadata={k: v for k, v in report.as_dict().items() if k != "reasons"})
    return report


def _looks_like_data(row: list[str]) -> bool:
    try:
        parse_time_ms(row[0])
        float(row[1])
        return True
    except ValueError:
        return False


def _blocks(path: Path, *, skip_first: bool):
    """(line number of the block's first line, bytes of whole lines ending in a newline),
    about BLOCK_BYTES at a time."""
    with path.open("rb") as handle:
        head = handle.read(3)
        if head != b"\xef\xbb\xbf":  # a UTF-8 byte order mark is not data
            handle.seek(0)
        line_no = 1
        if skip_first:
            handle.readline()
            line_no = 2
        rest = b""
        while True:
            chunk = handle.read(BLOCK_BYTES)
            if not chunk:
                break
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
            if data:
                yield line_no, data
                line_no += data.count(b"\n")
        if rest.strip():
            yield line_no, rest + b"\n"


def _parse_block(block: bytes, first_line_no: int, width: int, cols: list[int], report: ImportReport):
    """The block's readable rows as an (n, 6) float matrix and their line numbers; every other
    non-blank line is rejected and reported. Line shapes are found with numpy over the bytes and
    the fields parsed by pandas' C reader: no Python step per line."""
    raw = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(raw == 10)
    starts = np.r_[0, ends[:-1] + 1]
    # per line: commas, and spaces/tabs/CRs (a line of nothing else is blank)
    counts = np.diff(np.r_[0, np.searchsorted(np.flatnonzero(raw == 44), ends)])
    spaces = np.diff(np.r_[0, np.searchsorted(np.flatnonzero((raw == 32) | (raw == 13) | (raw == 9)), ends)])
    blank = (ends - starts) - counts - spaces == 0
    shaped = (counts == width - 1) & ~blank
    numbers = np.arange(first_line_no, first_line_no + len(ends))
    report.rows_read += int((~blank).sum())
    for i in np.flatnonzero(~shaped & ~blank):
        _reject(report, int(numbers[i]), f"expected {width} fields, found {counts[i] + 1}")
    if not shaped.any():
        return np.empty((0, 6)), numbers[:0]
    if not shaped.all():
        block = raw[np.repeat(shaped, ends - starts + 1)].tobytes()
    numbers = numbers[shaped]
    frame = pd.read_csv(io.BytesIO(block), header=None, names=list(range(width)), engine="c", encoding="utf-8",
                        skipinitialspace=True, keep_default_na=False, na_values=[""], skip_blank_lines=False,
                        quoting=csv.QUOTE_MINIMAL if b'"' in block else csv.QUOTE_NONE, low_memory=False)
    out = np.empty((len(frame), 6))
    problems: list[tuple[int, str]] = []
    out[:, 0] = _times(frame[cols[0]], problems)
    for j, (name, c) in enumerate(zip(VALUE_COLUMNS, cols[1:]), start=1):
        out[:, j] = _numbers(frame[c], name, problems)
    if problems:
        bad = np.zeros(len(out), bool)
        for i, text in sorted(problems):
            if not bad[i]:
                _reject(report, int(numbers[i]), text)
            bad[i] = True
        out, numbers = out[~bad], numbers[~bad]
    return out, numbers


def _numbers(column: pd.Series, name: str, problems: list) -> np.ndarray:
    """A column as float64; cells that are not numbers are named in `problems`."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        for i in np.flatnonzero(np.isnan(values)):
            problems.append((int(i), f"{name} is missing"))
        return values
    text = column.astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    for i in np.flatnonzero(np.isnan(values)):
        problems.append((int(i), f"{name} {text.iat[i]!r} is not a number" if text.iat[i] != "nan"
                         else f"{name} is missing"))
    return values


def _times(column: pd.Series, problems: list) -> np.ndarray:
    """Epoch ms of a column of epoch-ms integers and/or ISO-8601 times (no offset = UTC)."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        raw = column
        ms = column.to_numpy(dtype=np.float64, na_value=np.nan).copy()
    else:
        raw = column.astype(str).str.strip()
        ms = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan).copy()
    integral = np.isfinite(ms) & (ms == np.floor(ms))
    ms[~integral] = np.nan
    todo = np.flatnonzero(~integral)
    if len(todo) and not pd.api.types.is_numeric_dtype(column.dtype):
        parsed = pd.to_datetime(raw.iloc[todo], format="ISO8601", utc=True, errors="coerce")
        iso = parsed.to_numpy(dtype="datetime64[ms]").astype(np.int64).astype(np.float64)
        iso[parsed.isna().to_numpy()] = np.nan
        ms[todo] = iso
    for i in np.flatnonzero(np.isnan(ms)):
        problems.append((int(i), f"{raw.iat[i]!r} is neither epoch milliseconds nor an ISO-8601 time"))
    outside = np.flatnonzero(np.isfinite(ms) & ((ms < EARLIEST_MS) | (ms >= LATEST_MS)))
    for i in outside:
        problems.append((int(i), f"time {raw.iat[i]} is outside the accepted range 1970-01-01 to 2100-01-01"))
    ms[outside] = np.nan
    return ms


def _ingest(matrix: np.ndarray, lines: np.ndarray, market, timeframe: str, report: ImportReport,
            revise: bool) -> IngestResult:
    result = candles_ingest(market=market, timeframe=timeframe, rows=matrix, source="import", replace_existing=revise)
    by_time: dict[int, list[int]] = {}
    for f in result.findings:
        by_time.setdefault(f.start_ms, [])
    if by_time:
        for line_no, t in zip(lines.tolist(), matrix[:, 0].astype(np.int64).tolist()):
            if t in by_time:
                by_time[t].append(line_no)
    for f in result.findings:
        candidates = by_time.get(f.start_ms) or ["?"]
        # a duplicate is the second line with that time; anything else the first
        line = candidates[-1] if f.kind == "duplicate" else candidates[0]
        prefix = "" if f.rejected else "stored but flagged: "
        _reason(report, f"line {line}: {prefix}{f.kind}: {f.detail}")
    line_of = dict(zip(matrix[:, 0].astype(np.int64).tolist(), lines.tolist())) if result.changes else {}
    for change in result.changes:
        before, after = change["before"], change["after"]
        what = (f"replaced the stored candle at {ms_to_iso(change['time'])} (close {before[3]:g} → {after[3]:g})"
                if revise else
                f"a different candle is already stored at {ms_to_iso(change['time'])} (close {before[3]:g}; the "
                f"file says {after[3]:g}): kept; import with --revise to replace it")
        _reason(report, f"line {line_of.get(change['time'], '?')}: {what}")
    return result


def _summarise(report: ImportReport, total: IngestResult, revise: bool) -> None:
    report.rows_stored = total.stored
    report.rows_rejected += total.rejected
    report.rows_existing = total.existing
    report.rows_conflicting = total.changed
    report.rows_revised = total.changed if revise else 0
    for kind, n in total.counts().items():
        if kind not in ("outlier", "stale"):
            report.rejected_by_kind[kind] = report.rejected_by_kind.get(kind, 0) + n
    report.first, report.last = ms_to_iso(total.first_ms), ms_to_iso(total.last_ms)


def _reject(report: ImportReport, line_no: int, text: str) -> None:
    report.rows_rejected += 1
    report.rejected_by_kind["unreadable"] = report.rejected_by_kind.get("unreadable", 0) + 1
    _reason(report, f"line {line_no}: {text}")


def _reason(report: ImportReport, text: str) -> None:
    if len(report.reasons) < MAX_REASONS:
        report.reasons.append(text)
