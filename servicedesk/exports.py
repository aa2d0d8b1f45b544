"""CSV and Excel (XLSX) downloads of any list: queue views, reports, dashboard tables.

A view describes its columns once (`Column`: a header, how to read the cell from a row, what kind of value it
is) and hands `export_response` an iterable of rows, typically `queryset.iterator(chunk_size=...)` so that
PostgreSQL reads through a server-side cursor. Nothing holds the whole result in memory:

- CSV is a StreamingHttpResponse: each row is formatted as it is read and sent in small chunks. UTF-8 with a
  byte order mark, so Excel opens accented names right; a text cell starting with = + - @ (or a tab / carriage
  return) is prefixed with ' so a spreadsheet never runs it as a formula; datetimes in the site's time zone,
  ISO 8601.
- XLSX is written by xlsxwriter in constant_memory mode (each row flushed to disk as soon as the next one
  starts) into a temporary file, then streamed from disk by a FileResponse; the file is deleted when the
  response is closed. Bold, frozen header row with a filter, column widths, numbers as numbers, datetimes as
  Excel dates (naive local time), percentages as Excel percentages. Text is always written as a string, never
  as a formula. A sheet holds at most XLSX_MAX_ROWS rows: past that the export stops, and its last row says it
  was cut and at how many rows (CSV has no such limit).

`export_format(request)` reads ?export=csv|xlsx; any other value is an InvalidInput naming `export`, which
views answer with 400 (`export_refused`).
"""

import csv
import datetime as dt
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import FileResponse, HttpResponse, QueryDict, StreamingHttpResponse
from django.utils import timezone

from servicedesk.errors import InvalidInput
from servicedesk.replica import on_replica, replica_iter, replica_reads

FORMATS = ("csv", "xlsx")
KINDS = ("text", "int", "float", "percent", "datetime", "date")
CSV_CHUNK_BYTES = 64 * 1024  # rows are sent in chunks of about this size, not one tiny write per row
ROW_CHUNK = 2000  # rows a server-side cursor fetches per round trip (`rows_of`)
XLSX_MAX_TEXT = 32767  # Excel's limit on one cell's text
XLSX_MAX_ROWS = 1_048_576  # Excel's rows per sheet (xlsxwriter silently drops a row written past them)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 (and so an .xlsx file) cannot hold; a tab and line breaks can stay.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_ILLEGAL = re.compile(r"[\[\]:*?/\\]")
_DEFAULT_WIDTHS = {"int": 8, "float": 10, "percent": 9, "datetime": 17, "date": 11}


@dataclass(frozen=True)
class Column:
    """One column of an export: `value(row)` reads the cell; `kind` says how to write it: "text", "int",
    "float", "percent" (a value from 0 to 100), "datetime" or "date"; `width` in characters (0: a default by
    kind and header)."""

    header: str
    value: Callable[[Any], Any]
    kind: str = "text"
    width: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Column {self.header!r}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")


def export_format(request, *, names: tuple[str, ...] = ("export",)) -> str | None:
    """"csv" or "xlsx" from ?export= (or the first of `names` given); None when the page itself is asked for
    (none given, or empty); any other value raises InvalidInput naming `export`."""
    value = next((v for v in (request.GET.get(n, "").strip().lower() for n in names) if v), "")
    if not value:
        return None
    if value not in FORMATS:
        raise InvalidInput("export: choose csv or xlsx", field="export")
    return value


def export_refused(error: InvalidInput) -> HttpResponse:
    """The 400 a view answers for a bad ?export= value: the message, naming the field, as plain text."""
    return HttpResponse(error.message, status=400, content_type="text/plain; charset=utf-8")


def export_links(path: str, params=None) -> dict[str, str]:
    """The Export control's links ({"csv": url, "xlsx": url}): `path` with the page's current query (filters,
    sort) kept, the page number dropped (an export has every row of the filtered view)."""
    query = QueryDict(mutable=True)
    if params:
        items = params.lists() if hasattr(params, "lists") else ((k, v if isinstance(v, list | tuple) else [v])
                                                                 for k, v in params.items())
        for key, values in items:
            if key not in ("page", "cursor", "export"):
                query.setlist(key, [str(v) for v in values])
    links = {}
    for fmt in FORMATS:
        query["export"] = fmt
        links[fmt] = f"{path}?{query.urlencode()}"
    return links


def rows_of(queryset, chunk_size: int = ROW_CHUNK):
    """A queryset's rows one at a time, `chunk_size` per round trip, never the whole result in memory;
    prefetch_related lookups run once per chunk, never per row. Read from the replica when there is one
    (servicedesk.replica).

    PostgreSQL reads through a server-side cursor. Where the connection has them switched off
    (DISABLE_SERVER_SIDE_CURSORS: DATABASE_POOLER=pgbouncer, transaction mode), `.iterator()` would fetch the
    whole result at once, so the rows are read in pages by key instead (`keyset_pages`)."""
    from django.db import connections

    queryset = on_replica(queryset)
    if connections[queryset.db].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS") and not queryset.query.is_sliced:
        return keyset_pages(queryset, chunk_size)
    return queryset.iterator(chunk_size=chunk_size)


def _ordering_terms(queryset) -> list[tuple[str, bool]] | None:
    """The queryset's ordering as (field path or annotation, descending), the primary key added as the last
    tiebreak; None when it orders by an expression or at random (no key to page by)."""
    query = queryset.query
    if query.order_by:
        ordering = list(query.order_by)
    elif query.default_ordering and queryset.model._meta.ordering:
        ordering = list(queryset.model._meta.ordering)
    else:
        ordering = []
    terms = []
    for item in ordering:
        if not isinstance(item, str) or item == "?" or "." in item:
            return None
        descending = item.startswith("-")
        name = item.lstrip("-+")
        terms.append(("pk" if name == queryset.model._meta.pk.name else name, descending))
    if not any(name == "pk" for name, _ in terms):
        terms.append(("pk", False))
    return terms


def _after(keys: list[str], terms: list[tuple[str, bool]], values: list):
    """Q for the rows after `values` in this order (PostgreSQL's: NULLs last ascending, first descending)."""
    from django.db.models import Q

    condition = Q(pk__in=[])  # nothing
    equal = Q()
    for key, (_name, descending), value in zip(keys, terms, values, strict=True):
        if value is None:
            later = Q(**{f"{key}__isnull": False}) if descending else Q(pk__in=[])
            same = Q(**{f"{key}__isnull": True})
        else:
            later = Q(**{f"{key}__lt": value}) if descending else (Q(**{f"{key}__gt": value}) |
                                                                  Q(**{f"{key}__isnull": True}))
            same = Q(**{key: value})
        condition |= equal & later
        equal &= same
    return condition


def keyset_pages(queryset, chunk_size: int = ROW_CHUNK):
    """The rows of `queryset` in its order, fetched `chunk_size` at a time: each page starts after the last
    row of the one before by the ordering's values (primary key as tiebreak), so no page costs more than the
    first and nothing but one page is held. An ordering by expressions pages by OFFSET instead (same order,
    with the primary key as tiebreak)."""
    from django.db.models import F

    terms = _ordering_terms(queryset)
    if terms is None or queryset._fields is not None:  # expressions, or values() rows (no attributes to read)
        ordered = queryset.order_by(*queryset.query.order_by, "pk")
        start = 0
        while True:
            page = list(ordered[start:start + chunk_size])
            yield from page
            if len(page) < chunk_size:
                return
            start += chunk_size
    keys = [f"_keyset_{n}" for n in range(len(terms))]
    ordered = queryset.annotate(**{key: F(name) for key, (name, _) in zip(keys, terms, strict=True)}).order_by(
        *[f"-{key}" if descending else key for key, (_, descending) in zip(keys, terms, strict=True)])
    page_query = ordered
    while True:
        page = list(page_query[:chunk_size])
        yield from page
        if len(page) < chunk_size:
            return
        last = [getattr(page[-1], key) for key in keys]
        page_query = ordered.filter(_after(keys, terms, last))


def export_response(*, filename: str, fmt: str, columns, rows: Iterable, sheet: str = "") -> HttpResponse:
    """The download of `rows` as `fmt` ("csv" or "xlsx"), named `filename` plus the extension."""
    columns = list(columns)
    if fmt == "csv":
        return csv_rows_response(filename=filename, lines=_csv_lines(columns, rows))
    if fmt == "xlsx":
        return xlsx_response(filename=filename, sheets=[(sheet or filename, columns, rows)])
    raise ValueError(f"Unknown export format {fmt!r}")


def csv_rows_response(*, filename: str, lines: Iterable[list], bom: bool = True) -> StreamingHttpResponse:
    """A streamed CSV of `lines`, each a list of cells written as given (the caller formats them, e.g. several
    tables one after the other), in chunks of about CSV_CHUNK_BYTES; `filename` plus ".csv"; with a byte order
    mark unless `bom` is False."""
    response = StreamingHttpResponse(_csv_stream(replica_iter(lines), bom=bom), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(filename)}.csv"'
    return response


def xlsx_response(*, filename: str, sheets: list[tuple[str, list[Column], Iterable]]) -> FileResponse:
    """A workbook of one or more sheets, each (name, columns, rows), written to a temporary file in
    constant_memory mode, then streamed from disk; the file goes when the response is closed."""
    import xlsxwriter

    # An unnamed temporary file: on POSIX it has no directory entry, so closing it (FileResponse does, when
    # the response is closed) frees the disk space, and a crashed worker leaves nothing behind.
    handle = tempfile.TemporaryFile(suffix=".xlsx")
    try:
        workbook = xlsxwriter.Workbook(handle, {"constant_memory": True, "strings_to_formulas": False,
                                                "strings_to_numbers": False, "strings_to_urls": False})
        formats = {
            "header": workbook.add_format({"bold": True, "bottom": 1}),
            "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
            "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
            "percent": workbook.add_format({"num_format": "0.0%"}),
            "float": workbook.add_format({"num_format": "0.0#"}),
        }
        used = set()
        with replica_reads():  # the rows are read while the file is written
            for sheet_name, columns, rows in sheets:
                _xlsx_sheet(workbook, _sheet_name(sheet_name, used), list(columns), rows, formats)
        workbook.close()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return FileResponse(handle, as_attachment=True, filename=f"{safe_filename(filename)}.xlsx",
                        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def person_name(user) -> str:
    """How a person is named in a cell: full name, else username; empty for nobody."""
    if user is None:
        return ""
    return user.get_full_name() or user.username


def safe_filename(name: str) -> str:
    """Letters, digits, dot, dash and underscore only (no quotes, slashes or header injection), never empty."""
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name).strip(".-")
    return cleaned[:120] or "export"


# --- CSV ----------------------------------------------------------------------------------------------------


class _Echo:
    """csv.writer writes each row to this, which hands the line back for streaming."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(columns: list[Column], rows: Iterable):
    yield [column.header for column in columns]
    for row in rows:
        yield [csv_cell(column.value(row), column.kind) for column in columns]


def _csv_stream(lines: Iterable[list], *, bom: bool):
    """UTF-8 bytes of `lines` as CSV, in chunks of about CSV_CHUNK_BYTES."""
    writer = csv.writer(_Echo())
    buffer, size = (["\ufeff"] if bom else []), 0
    for cells in lines:
        line = writer.writerow(cells)
        buffer.append(line)
        size += len(line)
        if size >= CSV_CHUNK_BYTES:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    yield "".join(buffer).encode("utf-8")


def csv_cell(value, kind: str = "text") -> str:
    """One CSV cell as text: empty for None, ISO 8601 local time for datetimes, numbers as they are, and text
    that a spreadsheet would run as a formula prefixed with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        if kind == "percent":
            return f"{float(value):.1f}"
        return str(round(value, 6)) if isinstance(value, float) else str(value)
    return neutralise(str(value))


def neutralise(text: str) -> str:
    """'=SUM(A1)' -> "'=SUM(A1)": a spreadsheet shows the text instead of running it (CSV injection)."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


# --- XLSX ---------------------------------------------------------------------------------------------------


def _sheet_name(name: str, used: set) -> str:
    base = _SHEET_ILLEGAL.sub(" ", name or "Sheet").strip("' ")[:31] or "Sheet"
    candidate, n = base, 2
    while candidate.lower() in used:
        suffix = f" ({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(candidate.lower())
    return candidate


def _width(column: Column) -> int:
    if column.width:
        return column.width
    return max(len(column.header) + 2, _DEFAULT_WIDTHS.get(column.kind, 14))


def _xlsx_sheet(workbook, name: str, columns: list[Column], rows: Iterable, formats: dict) -> None:
    sheet = workbook.add_worksheet(name)
    for i, column in enumerate(columns):
        sheet.set_column(i, i, _width(column))
    # constant_memory writes a row out when the next one starts: the header first, then the rows in order.
    for i, column in enumerate(columns):
        sheet.write_string(0, i, column.header, formats["header"])
    sheet.freeze_panes(1, 0)
    # The header, at most XLSX_MAX_ROWS - 2 rows, and a last row saying the export was cut when there were more.
    room = XLSX_MAX_ROWS - 2
    last = 0
    for r, row in enumerate(rows, start=1):
        if r > room:
            sheet.write_string(r, 0, f"Export cut at {room:,} rows: an Excel sheet holds at most "
                                     f"{XLSX_MAX_ROWS:,}. Filter the list, or export CSV for every row.")
            break
        for c, column in enumerate(columns):
            _xlsx_cell(sheet, r, c, column.value(row), column.kind, formats)
        last = r
    if columns:
        sheet.autofilter(0, 0, last, len(columns) - 1)


def _xlsx_cell(sheet, r: int, c: int, value, kind: str, formats: dict) -> None:
    if value is None or value == "":
        return
    if isinstance(value, bool):
        sheet.write_string(r, c, "yes" if value else "no")
    elif isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.make_naive(value)  # Excel has no time zones: the site's local time
        sheet.write_datetime(r, c, value, formats["datetime"])
    elif isinstance(value, dt.date):
        sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), formats["date"])
    elif isinstance(value, int | float | Decimal):
        if kind == "percent":
            sheet.write_number(r, c, float(value) / 100, formats["percent"])
        elif kind == "float":
            sheet.write_number(r, c, float(value), formats["float"])
        else:
            sheet.write_number(r, c, float(value) if isinstance(value, Decimal) else value)
    else:
        text = _XML_ILLEGAL.sub("", str(value))[:XLSX_MAX_TEXT]
        sheet.write_string(r, c, text)
