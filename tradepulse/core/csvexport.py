"""The one way to send a CSV download: streamed row by row, every cell safe to open in a spreadsheet.

A cell whose text starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be taken
for a formula by Excel/LibreOffice (CSV injection, OWASP): such text gets a leading `'`, which
spreadsheets show as plain text. Numbers are written as numbers (a negative P&L stays -12.5).
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from numbers import Number

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """`value` as a spreadsheet will read it: formula-like text is prefixed with a quote."""
    if value is None or isinstance(value, (bool, Number)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value):
        return value


def csv_stream(header: list[str], rows: Iterable[Iterable], filename: str) -> StreamingHttpResponse:
    """A streamed CSV attachment: the header, then each row as it is read (memory stays flat)."""
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow([safe_cell(h) for h in header])
        for row in rows:
            yield writer.writerow([safe_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
