"""Imports never silently replace stored candles, reject implausible prices with the line named,
reject a bad time line by line, and leave nothing behind when they fail (issue 9, finding 2)."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditEvent
from apps.marketdata import services
from apps.marketdata.models import Exchange, Market
from apps.marketdata.selectors import candles_as_arrays

from .conftest import MIN, T0, make_candles


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def write(tmp_path, rows, name="candles.csv"):
    path = tmp_path / name
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def stored(file_market):
    services.candles_ingest(market=file_market, timeframe="1m", rows=make_candles(20), source="test")
    return candles_as_arrays(file_market, "1m")


def _row(arrays, i, **values):
    row = {"t": int(arrays.time[i]), "o": arrays.open[i], "h": arrays.high[i], "l": arrays.low[i],
           "c": arrays.close[i], "v": arrays.volume[i], **values}
    return [row[k] for k in "tohlcv"]


def test_an_import_keeps_a_stored_candle_and_says_so(tmp_path, file_market, stored):
    path = write(tmp_path, [_row(stored, 5, c=stored.close[5] * 1.01, h=stored.high[5] * 1.02)])
    out = run("import_candles", path, "--exchange", "Test files", "--symbol", "SYN/USD", "--timeframe", "1m")
    assert "already stored: 1 (1 different; kept)" in out
    assert "line 2: a different candle is already stored at" in out and "import with --revise to replace it" in out
    assert candles_as_arrays(file_market, "1m").close[5] == stored.close[5]


def test_1e308_prices_are_rejected_with_the_line_and_never_stored(tmp_path, file_market, stored):
    path = write(tmp_path, [_row(stored, 5, o=1e308, h=1e308, l=1e308, c=1e308)])
    with pytest.raises(CommandError, match="no row of .* could be imported"):
        run("import_candles", path, "--exchange", "Test files", "--symbol", "SYN/USD", "--timeframe", "1m",
            "--revise", "--reason", "vendor correction")
    assert candles_as_arrays(file_market, "1m").close[5] == stored.close[5]
    report = services.candles_import_csv  # the same through the service: the line is named
    with pytest.raises(services.imports.ImportFailed) as failed:
        report(path=path, exchange_name="Test files", symbol="SYN/USD", timeframe="1m", revise=True, reason="x")
    assert failed.value.report.reasons[0].startswith("line 2: bad_ohlc: price 1e+308 is beyond any plausible price")


def test_a_jump_of_orders_of_magnitude_against_the_neighbours_is_rejected(tmp_path, file_market, stored):
    spike = [_row(stored, 0, t=int(stored.time[-1]) + MIN * (k + 1)) for k in range(3)]
    spike[1] = [spike[1][0], *(x * 1000 for x in spike[1][1:5]), spike[1][5]]
    report = services.candles_import_csv(path=write(tmp_path, spike), exchange_name="Test files", symbol="SYN/USD",
                                         timeframe="1m")
    assert (report.rows_stored, report.rows_rejected) == (2, 1)
    assert any(r.startswith("line 3: bad_ohlc: close") and "its neighbours' median" in r for r in report.reasons)


def test_a_revision_is_explicit_audited_and_reported(tmp_path, file_market, stored):
    new_close = float(stored.close[5]) * 1.001
    path = write(tmp_path, [_row(stored, 5, c=new_close, h=max(stored.high[5], new_close))])
    with pytest.raises(CommandError, match="--reason"):
        run("import_candles", path, "--exchange", "Test files", "--symbol", "SYN/USD", "--timeframe", "1m", "--revise")
    summary = json.loads(run("import_candles", path, "--exchange", "Test files", "--symbol", "SYN/USD",
                             "--timeframe", "1m", "--revise", "--reason", "vendor correction", "--json"))
    assert summary["rows_revised"] == 1 and summary["rows_stored"] == 1
    assert candles_as_arrays(file_market, "1m").close[5] == pytest.approx(new_close)
    event = AuditEvent.objects.get(action="marketdata.candles.revised")
    assert event.reason == "vendor correction" and event.metadata["revised"] == 1
    assert event.metadata["candles"][0]["before"][3] == pytest.approx(float(stored.close[5]))


def test_a_bad_timestamp_rejects_its_line_not_the_file(tmp_path, file_market):
    rows = [[T0 + i * MIN, 100, 101, 99, 100.5, 1] for i in range(3)]
    rows.insert(1, [10 ** 18, 100, 101, 99, 100.5, 1])
    rows.insert(2, ["5138-01-01T00:00:00Z", 100, 101, 99, 100.5, 1])
    report = services.candles_import_csv(path=write(tmp_path, rows), exchange_name="Test files", symbol="SYN/USD",
                                         timeframe="1m")
    assert (report.rows_stored, report.rows_rejected) == (3, 2)
    assert report.reasons[0].startswith("line 3: time 1000000000000000000 is outside the accepted range")
    assert report.reasons[1].startswith("line 4: time 5138-01-01T00:00:00Z is outside the accepted range")


def test_a_failed_import_leaves_no_exchange_or_market_behind(tmp_path, db):
    path = write(tmp_path, [[T0, "abc", 101, 99, 100.5, 1]])
    with pytest.raises(CommandError, match="no row"):
        run("import_candles", path, "--exchange", "Brand new source", "--symbol", "NEW/USD", "--timeframe", "1m")
    assert not Exchange.objects.filter(code="brand-new-source").exists()
    assert not Market.objects.filter(symbol="NEW/USD").exists()
