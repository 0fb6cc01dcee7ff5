"""The candle store's fast paths: bulk upsert, numpy reads, coverage upkeep. Nothing else
writes the candle table.

PostgreSQL upsert: under a per-(market, timeframe) transaction lock, rows the coverage table
says are new go straight into the table with one binary COPY; rows that may exist go through
COPY into a temporary table and `INSERT … ON CONFLICT DO UPDATE … WHERE IS DISTINCT FROM`, so a
candle the exchange revised is updated and an identical one is left alone. If the coverage
table was wrong (a unique violation), the whole batch takes the ON CONFLICT path instead.
SQLite: batched executemany upsert with the same semantics.

Reads on PostgreSQL go through CandleBlock, a read cache of column arrays per span of
BLOCK_BARS bars: a million candles are ~120 rows of bytes, turned into numpy arrays without a
per-row step. A missing block is built from the candle table (`COPY (SELECT …) TO STDOUT
(FORMAT BINARY)` parsed by numpy with a fixed big-endian row layout) under the series lock;
every write deletes the blocks of its span in its own transaction, under the same lock, so a
block is never stale. SQLite reads the candle table directly.
"""
from __future__ import annotations

import numpy as np
import psycopg
from psycopg.copy import QueuedLibpqWriter
from django.db import IntegrityError, connection, transaction

from . import intervals
from .arrays import CandleArrays
from .models import Candle, CandleBlock, CandleCoverage
from .timeframes import grid_offset, grid_runs, is_calendar, nominal_ms, timeframe_ms

TABLE = Candle._meta.db_table
BLOCKS = CandleBlock._meta.db_table
BLOCK_BARS = 8192
SQLITE_BATCH = 5_000
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PGCOPY_TRAILER = b"\xff\xff"
_OHLCV = ("open", "high", "low", "close", "volume")


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- locking -------------------------------------------------------------------------------------

def lock_series(market_id: int, timeframe: str) -> None:
    """Serialise writers of one market × timeframe until the transaction ends (coverage merges
    must not interleave). SQLite's write transactions are already serial."""
    if is_postgres():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"marketdata:{market_id}:{timeframe}"])


# --- writes --------------------------------------------------------------------------------------

def upsert(market_id: int, timeframe: str, rows: CandleArrays, *, covered: list[intervals.Interval]) -> int:
    """Write rows (sorted, unique, validated); returns how many were new or changed.

    Call inside a transaction after lock_series(); `covered` is the stored coverage around the
    rows, used to pick the fast path for rows that cannot exist yet.
    """
    if not len(rows):
        return 0
    if not is_postgres():
        return _sqlite_upsert(market_id, timeframe, rows)
    blocks_drop(market_id, timeframe, int(rows.time[0]), int(rows.time[-1]) + 1)
    maybe_stored = intervals.contains(covered, rows.time)
    new = rows.take(~maybe_stored)
    written = 0
    if len(new):
        try:
            with transaction.atomic():
                _copy_into_table(market_id, timeframe, new)
            written += len(new)
        except (IntegrityError, connection.Database.IntegrityError):  # coverage was wrong: safe path for all
            return _pg_merge(market_id, timeframe, rows)
    if maybe_stored.any():
        written += _pg_merge(market_id, timeframe, rows.take(maybe_stored))
    return written


def _binary_rows(rows: CandleArrays, lead: list[tuple[str, object]] = ()) -> np.ndarray:
    """PGCOPY binary payload: optional constant leading columns, then time + OHLCV."""
    fields = [("n", ">i2")]
    for k, (dtype, _) in enumerate(lead):
        fields += [(f"l{k}", ">i4"), (f"c{k}", dtype)]
    fields += [("lt", ">i4"), ("time", ">i8")]
    for name in _OHLCV:
        fields += [(f"l_{name}", ">i4"), (name, ">f8")]
    dt = np.dtype(fields)
    rec = np.empty(len(rows), dtype=dt)
    rec["n"] = len(lead) + 6
    for k, (dtype, value) in enumerate(lead):
        rec[f"l{k}"] = np.dtype(dtype).itemsize
        rec[f"c{k}"] = value
    rec["lt"] = 8
    rec["time"] = rows.time
    for name in _OHLCV:
        rec[f"l_{name}"] = 8
        rec[name] = getattr(rows, name)
    return rec


COPY_CHUNK_ROWS = 100_000


def _copy_write(cur, sql: str, rows: CandleArrays, lead=()) -> None:
    """Binary COPY of `rows`, built chunk by chunk while a psycopg worker thread sends the
    previous chunk (the server, not Python, stays the bottleneck)."""
    with cur.copy(sql, writer=QueuedLibpqWriter(cur)) as cp:
        cp.write(_PGCOPY_HEADER)
        for i in range(0, len(rows), COPY_CHUNK_ROWS):
            cp.write(_binary_rows(rows.take(slice(i, i + COPY_CHUNK_ROWS)), lead).view(np.uint8).data)
        cp.write(_PGCOPY_TRAILER)


def _copy_into_table(market_id: int, timeframe: str, rows: CandleArrays) -> None:
    tf = timeframe.encode()
    with connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")  # market data can be fetched again
        _copy_write(cur.cursor, f"COPY {TABLE} (market_id, timeframe, open_time, open, high, low, close, volume) "
                                "FROM STDIN (FORMAT BINARY)", rows, [(">i8", market_id), (f"S{len(tf)}", tf)])


def _pg_merge(market_id: int, timeframe: str, rows: CandleArrays) -> int:
    with connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS marketdata_candle_in (open_time bigint, open float8, high float8, "
                    "low float8, close float8, volume float8) ON COMMIT DELETE ROWS")
        cur.execute("TRUNCATE marketdata_candle_in")
        _copy_write(cur.cursor, "COPY marketdata_candle_in FROM STDIN (FORMAT BINARY)", rows)
        cur.execute(
            f"""INSERT INTO {TABLE} AS c (market_id, timeframe, open_time, open, high, low, close, volume)
                SELECT %s, %s, open_time, open, high, low, close, volume FROM marketdata_candle_in
                ON CONFLICT (market_id, timeframe, open_time) DO UPDATE SET
                  open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
                  volume = EXCLUDED.volume
                WHERE (c.open, c.high, c.low, c.close, c.volume)
                      IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume)""",
            [market_id, timeframe],
        )
        return cur.rowcount


def _sqlite_upsert(market_id: int, timeframe: str, rows: CandleArrays) -> int:
    sql = (f"INSERT INTO {TABLE} (market_id, timeframe, open_time, open, high, low, close, volume) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (market_id, timeframe, open_time) DO UPDATE SET "
           "open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, "
           "volume = excluded.volume WHERE open IS NOT excluded.open OR high IS NOT excluded.high OR "
           "low IS NOT excluded.low OR close IS NOT excluded.close OR volume IS NOT excluded.volume")
    written = 0
    cols = [rows.time.tolist(), *(getattr(rows, c).tolist() for c in _OHLCV)]
    data = list(zip(*cols))
    raw = connection.connection  # sqlite3 connection: executemany without Django's per-row wrapping
    for i in range(0, len(data), SQLITE_BATCH):
        cur = raw.cursor()
        cur.executemany(sql, [(market_id, timeframe, *r) for r in data[i:i + SQLITE_BATCH]])
        written += max(cur.rowcount, 0)
        cur.close()
    return written


def delete_range(market_id: int, timeframe: str, start_ms: int, end_ms: int) -> int:
    blocks_drop(market_id, timeframe, start_ms, end_ms)
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {TABLE} WHERE market_id = %s AND timeframe = %s AND open_time >= %s AND open_time < %s",
                    [market_id, timeframe, start_ms, end_ms])
        return cur.rowcount


def count_range(market_id: int, timeframe: str, start_ms: int, end_ms: int) -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE market_id = %s AND timeframe = %s AND open_time >= %s "
                    "AND open_time < %s", [market_id, timeframe, start_ms, end_ms])
        return cur.fetchone()[0]


# --- reads ---------------------------------------------------------------------------------------

_ROW_DTYPE = np.dtype([("n", ">i2"), ("lt", ">i4"), ("time", ">i8")]
                      + [f for name in _OHLCV for f in ((f"l_{name}", ">i4"), (name, ">f8"))])


def _where(market_id: int, timeframe: str, start_ms: int | None, end_ms: int | None) -> tuple[str, list]:
    sql, params = "market_id = %s AND timeframe = %s", [market_id, timeframe]
    if start_ms is not None:
        sql, params = sql + " AND open_time >= %s", params + [int(start_ms)]
    if end_ms is not None:
        sql, params = sql + " AND open_time < %s", params + [int(end_ms)]
    return sql, params


def read_arrays(market_id: int, timeframe: str, start_ms: int | None, end_ms: int | None,
                *, limit: int | None = None, latest: bool = False) -> CandleArrays:
    """Candles in [start_ms, end_ms) ordered by time; `limit` with `latest=True` takes the last ones."""
    if is_postgres() and limit is None:
        return _read_blocks(market_id, timeframe, start_ms, end_ms)
    return read_rows(market_id, timeframe, start_ms, end_ms, limit=limit, latest=latest)


def read_rows(market_id: int, timeframe: str, start_ms: int | None, end_ms: int | None,
              *, limit: int | None = None, latest: bool = False) -> CandleArrays:
    """The candle table itself, no cache (the authority the blocks are built from)."""
    where, params = _where(market_id, timeframe, start_ms, end_ms)
    order = "DESC" if latest else "ASC"
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    select = f"SELECT open_time, open, high, low, close, volume FROM {TABLE} WHERE {where} ORDER BY open_time {order}{tail}"
    if is_postgres():
        arrays = _pg_read(select, params, timeframe)
    else:
        with connection.cursor() as cur:
            cur.execute(select, params)
            data = cur.fetchall()
        # float64 holds epoch ms exactly (< 2**53)
        arrays = CandleArrays.from_matrix(np.array(data, dtype=np.float64), timeframe) if data else CandleArrays.empty(timeframe)
    if latest:
        arrays = arrays.take(slice(None, None, -1))
    return arrays


def _pg_read(select: str, params: list, timeframe: str) -> CandleArrays:
    with connection.cursor() as cur:
        query = cur.cursor.mogrify(select, params)
        buf = bytearray()
        with cur.cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as cp:
            for chunk in cp:
                buf += chunk
    header = 19 + int.from_bytes(buf[15:19], "big")
    body = memoryview(buf)[header:len(buf) - 2]
    rec = np.frombuffer(body, dtype=_ROW_DTYPE)
    return CandleArrays(rec["time"].astype(np.int64), *(rec[c].astype(np.float64) for c in _OHLCV), timeframe=timeframe)


# --- block cache (PostgreSQL) ----------------------------------------------------------------------

def _span(timeframe: str) -> int:
    # Blocks only partition time; for months (no fixed length) a block spans BLOCK_BARS mean months.
    return BLOCK_BARS * nominal_ms(timeframe)


def block_start(t_ms: int, timeframe: str) -> int:
    span, off = _span(timeframe), grid_offset(timeframe)
    return (int(t_ms) - off) // span * span + off


def blocks_drop(market_id: int, timeframe: str, lo: int | None = None, hi: int | None = None) -> None:
    """Delete the cached blocks overlapping [lo, hi) (all of the series when not given)."""
    sql, params = f"DELETE FROM {BLOCKS} WHERE market_id = %s AND timeframe = %s", [market_id, timeframe]
    if lo is not None:
        sql, params = sql + " AND start_ms > %s", params + [int(lo) - _span(timeframe)]
    if hi is not None:
        sql, params = sql + " AND start_ms < %s", params + [int(hi)]
    with connection.cursor() as cur:
        cur.execute(sql, params)


def _fetch_blocks(market_id: int, timeframe: str, starts: list[int]) -> dict[int, tuple[int, bytes]]:
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as raw:  # binary results: bytea arrives as bytes, not hex
        raw.execute(f"SELECT start_ms, rows, data FROM {BLOCKS} WHERE market_id = %s AND timeframe = %s "
                    "AND start_ms >= %s AND start_ms <= %s", [market_id, timeframe, starts[0], starts[-1]], binary=True)
        found = {int(s): (int(n), d) for s, n, d in raw.fetchall()}
    return {s: found[s] for s in starts if s in found}


def _build_blocks(market_id: int, timeframe: str, starts: list[int]) -> None:
    """Build missing blocks from the candle table, under the series lock (so no write can slip
    between reading the candles and storing the block)."""
    span = _span(timeframe)
    with transaction.atomic():
        lock_series(market_id, timeframe)
        todo = sorted(set(starts) - set(_fetch_blocks(market_id, timeframe, starts)))
        runs = intervals.union((s, s + span) for s in todo)
        payload = bytearray(_PGCOPY_HEADER)
        tf = timeframe.encode()
        for a, b in runs:
            arrays = read_rows(market_id, timeframe, a, b)
            edges = np.searchsorted(arrays.time, np.arange(a, b + 1, span))
            for k, s in enumerate(range(a, b, span)):
                i, j = edges[k], edges[k + 1]
                data = b"".join(getattr(arrays, c)[i:j].astype("<f8" if c != "time" else "<i8").tobytes()
                                for c in ("time", *_OHLCV))
                payload += (5).to_bytes(2, "big")
                for value, size in ((market_id, 8), (s, 8), (int(j - i), 4)):
                    payload += size.to_bytes(4, "big") + int(value).to_bytes(size, "big", signed=True)
                payload += len(tf).to_bytes(4, "big") + tf + len(data).to_bytes(4, "big") + data
        payload += _PGCOPY_TRAILER
        if runs:
            with connection.cursor() as cur:
                with cur.cursor.copy(f"COPY {BLOCKS} (market_id, start_ms, rows, timeframe, data) "
                                     "FROM STDIN (FORMAT BINARY)") as cp:
                    cp.write(payload)


def _read_blocks(market_id: int, timeframe: str, start_ms: int | None, end_ms: int | None) -> CandleArrays:
    lo = -(2 ** 62) if start_ms is None else int(start_ms)
    hi = 2 ** 62 if end_ms is None else int(end_ms)
    # The table's own first and last candle (two index probes) bound the blocks: reads never
    # depend on the coverage table being right. Blocks inside long gaps are stored empty.
    with connection.cursor() as cur:
        cur.execute(f"SELECT MIN(open_time), MAX(open_time) FROM {TABLE} WHERE market_id = %s AND timeframe = %s "
                    "AND open_time >= %s AND open_time < %s", [market_id, timeframe, lo, hi])
        first, last = cur.fetchone()
    if first is None:
        return CandleArrays.empty(timeframe)
    starts = list(range(block_start(first, timeframe), block_start(last, timeframe) + 1, _span(timeframe)))
    blocks = _fetch_blocks(market_id, timeframe, starts)
    if len(blocks) < len(starts):
        _build_blocks(market_id, timeframe, starts)
        blocks = _fetch_blocks(market_id, timeframe, starts)
        if len(blocks) < len(starts):  # a writer dropped some meanwhile: read the table itself
            return read_rows(market_id, timeframe, start_ms, end_ms)
    total = sum(n for n, _ in blocks.values())
    cols = [np.empty(total, np.int64)] + [np.empty(total, np.float64) for _ in _OHLCV]
    pos = 0
    for s in starts:
        n, data = blocks[s]
        for k, col in enumerate(cols):
            col[pos:pos + n] = np.frombuffer(data, dtype="<i8" if k == 0 else "<f8", count=n, offset=8 * n * k)
        pos += n
    i, j = np.searchsorted(cols[0], [lo, hi])
    return CandleArrays(*(c[i:j] for c in cols), timeframe=timeframe)


# --- coverage ------------------------------------------------------------------------------------

def coverage_intervals(market_id: int, timeframe: str, lo: int | None = None, hi: int | None = None) -> list[intervals.Interval]:
    """Stored covered ranges touching [lo, hi] (all when not given), sorted."""
    qs = CandleCoverage.objects.filter(market_id=market_id, timeframe=timeframe)
    if lo is not None:
        qs = qs.filter(end_ms__gte=lo)
    if hi is not None:
        qs = qs.filter(start_ms__lte=hi)
    return list(qs.order_by("start_ms").values_list("start_ms", "end_ms"))


def coverage_replace(market_id: int, timeframe: str, old: list[intervals.Interval], new: list[intervals.Interval]) -> None:
    """Swap the coverage rows `old` for `new` (inside the series lock)."""
    if old == new:
        return
    if old:
        CandleCoverage.objects.filter(market_id=market_id, timeframe=timeframe,
                                      start_ms__in=[a for a, _ in old]).delete()
    CandleCoverage.objects.bulk_create(
        [CandleCoverage(market_id=market_id, timeframe=timeframe, start_ms=a, end_ms=b) for a, b in new])


def coverage_add(market_id: int, timeframe: str, times: np.ndarray) -> None:
    """Merge the runs of consecutive `times` (sorted) into the coverage rows."""
    runs = grid_runs(times, timeframe)
    if not runs:
        return
    old = coverage_intervals(market_id, timeframe, runs[0][0], runs[-1][1])
    coverage_replace(market_id, timeframe, old, intervals.union(old, runs))


def coverage_remove(market_id: int, timeframe: str, removed: list[intervals.Interval]) -> None:
    """Cut deleted ranges out of the coverage rows."""
    removed = intervals.union(removed)
    if not removed:
        return
    old = coverage_intervals(market_id, timeframe, removed[0][0], removed[-1][1])
    coverage_replace(market_id, timeframe, old, intervals.subtract(old, removed))


def coverage_from_candles(market_id: int, timeframe: str) -> list[intervals.Interval]:
    """The authority: runs of consecutive candles computed from the candle table (gaps and
    islands: open_time − row_number × bar is constant within a run; months, whose bars differ
    in length, are read and cut into runs on the calendar)."""
    if is_calendar(timeframe):
        return grid_runs(read_rows(market_id, timeframe, None, None).time, timeframe)
    step = timeframe_ms(timeframe)
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT MIN(open_time), MAX(open_time) + %s FROM (
                   SELECT open_time, open_time - ROW_NUMBER() OVER (ORDER BY open_time) * %s AS grp
                   FROM {TABLE} WHERE market_id = %s AND timeframe = %s) runs
                GROUP BY grp ORDER BY 1""",
            [step, step, market_id, timeframe],
        )
        return [(int(a), int(b)) for a, b in cur.fetchall()]


def series_with_candles() -> list[tuple[int, str]]:
    """Every (market_id, timeframe) that has candles (index skip-scan on PostgreSQL)."""
    if is_postgres():
        sql = f"""WITH RECURSIVE s AS (
                    (SELECT market_id, timeframe FROM {TABLE} ORDER BY market_id, timeframe LIMIT 1)
                    UNION ALL
                    SELECT n.market_id, n.timeframe FROM s, LATERAL (
                      SELECT market_id, timeframe FROM {TABLE} c WHERE (c.market_id, c.timeframe) > (s.market_id, s.timeframe)
                      ORDER BY market_id, timeframe LIMIT 1) n)
                  SELECT market_id, timeframe FROM s"""
    else:
        sql = f"SELECT DISTINCT market_id, timeframe FROM {TABLE} ORDER BY 1, 2"
    with connection.cursor() as cur:
        cur.execute(sql)
        return [(int(m), tf) for m, tf in cur.fetchall()]
