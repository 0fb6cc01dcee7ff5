"""import_candles, download_candles, candle_coverage, apply_retention: output, --json, errors."""
from __future__ import annotations

import json
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.marketdata.models import Candle, DataQualityIssue, Exchange, Market, RetentionPolicy
from apps.marketdata.selectors import candles_as_arrays
from apps.marketdata.services import downloads

from .conftest import MIN, T0, sim_rows, stored_rows


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(downloads, "PAGE_LIMIT", 100)


def write(tmp_path, text, name="candles.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_import_csv_epoch_ms_into_a_new_file_source(tmp_path, db):
    csv = "timestamp,open,high,low,close,volume\n" + "".join(
        f"{T0 + i * MIN},{100 + i},{101 + i},{99 + i},{100.5 + i},{10 + i}\n" for i in range(5))
    summary = json.loads(run("import_candles", write(tmp_path, csv), "--exchange", "My Broker", "--symbol", "abc/eur",
                             "--timeframe", "1m", "--price-step", "0.01", "--amount-step", "0.001", "--json"))
    assert (summary["rows_read"], summary["rows_stored"], summary["rows_rejected"]) == (5, 5, 0)
    assert summary["exchange"] == "my-broker" and summary["first"] == "2023-11-12T22:00:00Z"
    exchange = Exchange.objects.get(code="my-broker")
    assert exchange.is_file_source and exchange.name == "My Broker"
    market = Market.objects.get(exchange=exchange, symbol="ABC/EUR")
    assert (market.price_step, market.amount_step, market.price_precision) == (Decimal("0.01"), Decimal("0.001"), 2)
    assert candles_as_arrays(market, "1m").close.tolist() == [100.5 + i for i in range(5)]


def test_import_iso_times_naive_means_utc_and_bad_rows_are_reported(tmp_path, db):
    csv = ("date,volume,open,high,low,close\n"  # any column order with a header
           "2023-11-12T22:00:00,10,100,101,99,100.5\n"
           "2023-11-12 22:01:00+00:00,10,100,101,99,100.5\n"
           "2023-11-12T23:02:00+01:00,10,100,101,99,100.5\n"  # = 22:02 UTC
           "2023-11-12T22:03:00Z,10,100,99,98,100.5\n"  # high below open
           "not-a-time,10,100,101,99,100.5\n"
           "2023-11-12T22:05:00Z,10,abc,101,99,100.5\n"
           "2023-11-12T22:06:30Z,10,100,101,99,100.5\n"  # off the grid
           "2023-11-12T22:07:00Z,-5,100,101,99,100.5\n")
    out = run("import_candles", write(tmp_path, csv), "--exchange", "csvland", "--symbol", "SYN/USD", "--timeframe", "1m")
    assert "8 rows read, 3 stored, 5 rejected" in out
    assert "line 5: bad_ohlc: high 99.0 is below max(open, close) 100.5 at 2023-11-12T22:03:00Z" in out
    assert "line 6: 'not-a-time' is neither epoch milliseconds nor an ISO-8601 time" in out
    assert "line 7: open 'abc' is not a number" in out
    assert "line 8: misaligned: time 2023-11-12T22:06:30Z is not on the 1m grid" in out
    assert "line 9: bad_ohlc: negative volume -5.0" in out
    assert "rejected: bad_ohlc 2, misaligned 1, unreadable 2" in out
    market = Market.objects.get(symbol="SYN/USD")
    assert candles_as_arrays(market, "1m").time.tolist() == [T0, T0 + MIN, T0 + 2 * MIN]
    assert DataQualityIssue.objects.filter(market=market, source="import").count() == 3


def test_import_without_header_and_into_a_ccxt_exchange_needs_no_network(tmp_path, settings, db):
    settings.CCXT_OVERRIDES = {"binance": {"urls": {"api": {"public": "http://127.0.0.1:9/unreachable"}}}}
    csv = f"{T0},1,2,0.5,1.5,3\n{T0 + 3_600_000},1.5,2,1,1.2,4\n"
    out = run("import_candles", write(tmp_path, csv), "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h")
    assert "2 rows read, 2 stored, 0 rejected (binance BTC/USDT 1h" in out
    assert not Exchange.objects.get(code="binance").is_file_source


@pytest.mark.parametrize("args, message", [
    (["missing.csv", "--exchange", "x", "--symbol", "A/B", "--timeframe", "1m"], "missing.csv: no such file"),
    (["{csv}", "--exchange", "x", "--symbol", "A/B", "--timeframe", "7m"], "--timeframe: unknown timeframe '7m'"),
    (["{csv}", "--exchange", "x", "--symbol", "AB", "--timeframe", "1m"], "Symbol 'AB' must look like BASE/QUOTE"),
    (["{bad}", "--exchange", "x", "--symbol", "A/B", "--timeframe", "1m"], "line 1 is neither a header naming"),
    (["{allbad}", "--exchange", "x", "--symbol", "A/B", "--timeframe", "1m"], "no row of"),
])
def test_import_bad_input_is_one_clear_error(tmp_path, db, args, message):
    files = {"{csv}": write(tmp_path, f"{T0},1,2,0.5,1.5,3\n"), "{bad}": write(tmp_path, "a,b,c,d,e,f\n", "bad.csv"),
             "{allbad}": write(tmp_path, f"{T0},1,0.1,0.5,1.5,3\n", "allbad.csv")}
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("import_candles", *[files.get(a, a) for a in args], stdout=StringIO())


def test_download_candles_json_runs_the_job_in_process(alice, binance, sim):
    out = run("download_candles", "--exchange", "binance", "--symbol", "SOL/USDT", "--timeframe", "5m",
              "--start", "2023-11-12T22:00:00", "--end", str(T0 + 300 * MIN), "--owner", "alice", "--json")
    summary = json.loads(out)
    assert (summary["state"], summary["rows_stored"], summary["progress"]) == ("succeeded", 60, 100.0)
    assert summary["owner"] == "alice" and summary["symbol"] == "SOL/USDT"
    sol = Market.objects.get(exchange=binance, symbol="SOL/USDT")
    assert stored_rows(sol, "5m") == sim_rows(sim, "SOL/USDT", "5m", T0, T0 + 300 * MIN)


def test_download_candles_shows_a_progress_bar(alice, binance, sim):
    out = run("download_candles", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1m",
              "--start", str(T0), "--end", str(T0 + 500 * MIN), "--owner", "alice")
    assert "[##############################] 100.0 %" in out and "500 stored" in out
    assert "succeeded: 500 candles stored, 0 rejected (500 fetched)" in out


@pytest.mark.parametrize("args, message", [
    (["--symbol", "NOPE/USDT"], "Unknown symbol 'NOPE/USDT' on binance."),
    (["--exchange", "nosuchexchange"], "--exchange: 'nosuchexchange' is not an exchange ccxt knows"),
    (["--start", "soon"], "--start: 'soon' is neither epoch milliseconds nor an ISO-8601 time"),
    (["--end", "2023-11-01"], "The end (2023-11-01T00:00:00Z) must be after the start"),
    (["--owner", "nobody"], "--owner: no active user 'nobody'"),
])
def test_download_candles_errors_are_one_line(alice, binance, sim, args, message):
    base = {"--exchange": "binance", "--symbol": "BTC/USDT", "--timeframe": "1m", "--start": str(T0),
            "--end": str(T0 + 10 * MIN), "--owner": "alice"}
    base.update(dict(zip(args[::2], args[1::2])))
    with pytest.raises(CommandError) as info:
        call_command("download_candles", *[x for kv in base.items() for x in kv], stdout=StringIO())
    assert message in str(info.value) and "\n" not in str(info.value)


def test_download_candles_failure_exits_non_zero_with_the_stored_error(alice, binance, sim):
    sim.set_faults(rate_limit_next=1000)
    with pytest.raises(CommandError, match=r"download #\d+ failed: binance kept refusing requests as too many"):
        call_command("download_candles", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1m",
                     "--start", str(T0), "--end", str(T0 + 10 * MIN), "--owner", "alice", stdout=StringIO())


def test_candle_coverage_prints_ranges_and_gaps(alice, binance, sim):
    sim.set_faults(missing={"BTC/USDT": [(T0 + 30 * MIN, T0 + 40 * MIN)]})
    run("download_candles", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1m",
        "--start", str(T0), "--end", str(T0 + 100 * MIN), "--owner", "alice", "--json")
    out = run("candle_coverage", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1m")
    assert "binance BTC/USDT 1m: 90 candles, 2 range(s), 1 gap(s) (10 candles missing)" in out
    assert "covered 2023-11-12T22:00:00Z → 2023-11-12T22:30:00Z  30 candles" in out
    assert "gap     2023-11-12T22:30:00Z → 2023-11-12T22:40:00Z  10 candles (the exchange has no data)" in out
    summary = json.loads(run("candle_coverage", "--json", "--rebuild"))
    assert summary["rebuilt"] == [] and summary["series"][0]["gaps"][0]["exchange_has_no_data"] is True
    with pytest.raises(CommandError, match="--symbol: no market 'DOGE/USDT' on binance"):
        call_command("candle_coverage", "--exchange", "binance", "--symbol", "DOGE/USDT", stdout=StringIO())


def test_apply_retention_dry_run(db, tmp_path):
    run("import_candles", write(tmp_path, f"{T0},1,2,0.5,1.5,3\n"), "--exchange", "f", "--symbol", "A/B",
        "--timeframe", "1m")
    RetentionPolicy.objects.create(timeframe="1m", keep_days=30)
    summary = json.loads(run("apply_retention", "--dry-run", "--json"))
    assert summary["dry_run"] and summary["candles"] == 1
    assert Candle.objects.count() == 1
    assert "Retention deleted 1 candles" in run("apply_retention")
    assert Candle.objects.count() == 0
