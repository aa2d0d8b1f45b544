"""The kernel's CSV/XLSX downloads (servicedesk.exports): cells, types, names, refusals, and memory that stays
flat however many rows stream through."""

import datetime as dt
import tracemalloc

import pytest
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from servicedesk.errors import InvalidInput
from servicedesk.exports import (
    Column,
    csv_cell,
    export_format,
    export_links,
    export_response,
    safe_filename,
)
from tests.export_reading import column, csv_rows, xlsx_book, xlsx_rows

COLUMNS = [
    Column("Name", lambda r: r["name"]),
    Column("Count", lambda r: r["count"], "int"),
    Column("Ratio", lambda r: r["ratio"], "float"),
    Column("Share", lambda r: r["share"], "percent"),
    Column("At", lambda r: r["at"], "datetime"),
    Column("Day", lambda r: r["day"], "date"),
]


def sample_rows():
    at = timezone.make_aware(dt.datetime(2020, 1, 2, 13, 45, 30), timezone.get_fixed_timezone(60))
    yield {"name": "Zoë Çelik – naïve", "count": 3, "ratio": 1.25, "share": 87.5, "at": at,
           "day": dt.date(2020, 1, 2)}
    yield {"name": "=HYPERLINK(\"http://evil\")", "count": -4, "ratio": None, "share": None, "at": None,
           "day": None}
    for start in ("+1+2", "-3", "@SUM(A1)", "\tX"):
        yield {"name": start, "count": 0, "ratio": 0.0, "share": 0, "at": None, "day": None}


def get(path="/x/", **query):
    return RequestFactory().get(path, query)


# --- ?export= -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [({}, None), ({"export": ""}, None), ({"export": "csv"}, "csv"),
                                                 ({"export": "XLSX"}, "xlsx")])
def test_it_reads_the_format_from_the_query(query, expected):
    assert export_format(get(**query)) == expected


@pytest.mark.parametrize("value", ["pdf", "xls", "csv;rm"])
def test_it_refuses_another_format_naming_the_export_field(value):
    with pytest.raises(InvalidInput) as error:
        export_format(get(export=value))
    assert error.value.field == "export"
    assert error.value.message.startswith("export:")


def test_export_links_keep_the_filters_and_drop_the_page():
    from django.http import QueryDict

    links = export_links("/agent/queue/all/", QueryDict("status=new&status=on_hold&page=3&export=csv&q=a b"))
    assert links["csv"] == "/agent/queue/all/?status=new&status=on_hold&q=a+b&export=csv"
    assert links["xlsx"].endswith("&export=xlsx")
    assert export_links("/x/", {"from": "2020-01-01"})["csv"] == "/x/?from=2020-01-01&export=csv"


def test_a_column_of_an_unknown_kind_is_refused_when_declared():
    with pytest.raises(ValueError, match="kind"):
        Column("Money", lambda r: r, "currency")


@pytest.mark.parametrize(("name", "safe"), [("incidents-all-2020-01-02", "incidents-all-2020-01-02"),
                                            ('a"b\r\nContent-Type: x', "a-b-Content-Type-x"),
                                            ("../../etc/passwd", "etc-passwd"), ("Ünïcode view", "Unicode-view"),
                                            ("", "export")])
def test_filenames_are_safe_in_a_header(name, safe):
    assert safe_filename(name) == safe


# --- CSV ----------------------------------------------------------------------------------------------------


def test_csv_streams_utf8_with_a_bom_and_neutralises_formulas(settings):
    settings.TIME_ZONE = "Europe/Paris"
    with timezone.override("Europe/Paris"):
        response = export_response(filename="team's report", fmt="csv", columns=COLUMNS, rows=sample_rows())
        assert response.streaming
        assert response["Content-Disposition"] == 'attachment; filename="team-s-report.csv"'
        rows = csv_rows(response)
    assert rows[0] == ["Name", "Count", "Ratio", "Share", "At", "Day"]
    assert rows[1] == ["Zoë Çelik – naïve", "3", "1.25", "87.5", "2020-01-02T13:45:30+01:00", "2020-01-02"]
    assert column(rows, "Name")[1:] == ["'=HYPERLINK(\"http://evil\")", "'+1+2", "'-3", "'@SUM(A1)", "'\tX"]
    assert rows[2][1] == "-4"  # a number is a number, not a formula: it keeps its sign


def test_csv_cells_in_the_sites_time_zone():
    at = dt.datetime(2020, 6, 1, 12, 0, tzinfo=dt.UTC)
    with timezone.override("America/New_York"):
        assert csv_cell(at, "datetime") == "2020-06-01T08:00:00-04:00"
    assert csv_cell(None) == "" and csv_cell(True) == "yes" and csv_cell(12.5, "percent") == "12.5"


def test_the_csv_rows_are_read_only_as_the_response_is_consumed():
    read = []

    def rows():
        for i in range(3):
            read.append(i)
            yield {"name": f"r{i}", "count": i, "ratio": 0, "share": 0, "at": None, "day": None}

    response = export_response(filename="lazy", fmt="csv", columns=COLUMNS, rows=rows())
    assert read == []  # nothing read before the server streams the body
    assert len(csv_rows(response)) == 4 and read == [0, 1, 2]


# --- XLSX ---------------------------------------------------------------------------------------------------


def test_xlsx_has_typed_cells_a_bold_frozen_header_and_strings_never_formulas():
    with timezone.override("Europe/Paris"):
        response = export_response(filename="report", fmt="xlsx", columns=COLUMNS, rows=sample_rows(),
                                   sheet="Compliance: by team [2020]")
        assert response["Content-Disposition"] == 'attachment; filename="report.xlsx"'
        book = xlsx_book(response)
    sheet = book.worksheets[0]
    assert sheet.title == "Compliance  by team  2020"
    assert sheet.freeze_panes == "A2"
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.auto_filter.ref == "A1:F7"
    name, count, ratio, share, at, day = sheet[2]
    assert name.value == "Zoë Çelik – naïve"
    assert count.value == 3 and count.data_type == "n"
    assert ratio.value == 1.25
    assert share.value == 0.875 and share.number_format == "0.0%"
    assert at.value == dt.datetime(2020, 1, 2, 13, 45, 30) and at.is_date  # naive local (Paris) time
    assert day.value == dt.datetime(2020, 1, 2) and day.number_format == "yyyy-mm-dd"
    formula = sheet["A3"]
    assert formula.data_type == "s" and formula.value == '=HYPERLINK("http://evil")'  # text, not a formula
    assert sheet["B3"].value == -4 and sheet["C3"].value is None
    assert sheet.column_dimensions["A"].width > 10


def test_xlsx_of_no_rows_is_the_header_alone():
    rows = xlsx_rows(export_response(filename="empty", fmt="xlsx", columns=COLUMNS, rows=[]))
    assert rows == [["Name", "Count", "Ratio", "Share", "At", "Day"]]


# --- memory: streamed, never materialised -------------------------------------------------------------------
#
# Two measures. tracemalloc (peak Python memory) on the kernel itself, rows made on the fly: exact, but it
# slows every allocation down ~6x, too slow for 100k ORM rows through xlsxwriter. End to end (a queue's
# export of 100k incidents read from PostgreSQL), the process's resident memory sampled every few
# milliseconds by a thread: no overhead, and rows held in memory would show at once.

MB = 1024 * 1024
BOUND = 30 * MB


def generated(n: int):
    for i in range(n):
        yield {"name": f"Row n°{i} – Zürich", "count": i, "ratio": i / 7, "share": i % 100,
               "at": timezone.now(), "day": dt.date(2020, 1, 1)}


def traced_peak(fmt: str, n: int, columns=COLUMNS) -> int:
    tracemalloc.start()
    try:
        response = export_response(filename="big", fmt=fmt, columns=columns, rows=generated(n))
        size = 0
        for chunk in response.streaming_content:
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > n * 10
    return peak


def test_csv_peak_python_memory_is_flat_from_10k_to_100k_rows():
    small, large = traced_peak("csv", 10_000), traced_peak("csv", 100_000)
    assert large < 1.5 * small + 1 * MB, (small, large)
    assert large < 5 * MB, large
    # The bound means something: the 100k rows held in a list take more than it.
    tracemalloc.start()
    try:
        held = list(generated(100_000))
        _, materialised = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(held) == 100_000 and materialised > 5 * MB, materialised


def test_xlsx_peak_python_memory_is_flat_from_5k_to_50k_rows():
    columns = COLUMNS[:2]
    small, large = traced_peak("xlsx", 5_000, columns), traced_peak("xlsx", 50_000, columns)
    assert large < 1.5 * small + 1 * MB, (small, large)
    assert large < 5 * MB, large


class PeakRss:
    """The process's peak resident memory above where it stood at the start, sampled every 2 ms."""

    def __init__(self):
        import os
        import threading

        self._page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start = self.peak = self.now()

    def now(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page

    def _run(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self.now())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())

    @property
    def growth(self) -> int:
        return self.peak - self.start


def insert_incidents(first: int, last: int, requester_id: int) -> None:
    """Incidents `first`..`last` inserted by PostgreSQL itself (generate_series): seconds for 100k rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO incidents_incident (number, title, description, created_at, updated_at, version,
                requester_id, channel, impact, urgency, priority, status, hold_reason, major, resolution_code,
                resolution_notes, reopen_count, first_contact)
            SELECT 'INC9' || lpad(g::text, 7, '0'), 'Bulk incident n°' || g || ' – Zürich office printer',
                   '', now() - g * interval '1 minute', now() - g * interval '1 minute', 1,
                   %s, 'portal', 3, 3, 1 + g %% 5, 'new', '', false, '', '', 0, false
            FROM generate_series(%s, %s) AS g
            """,
            [requester_id, first, last],
        )


def rss_growth_while_consuming(client, fmt: str) -> tuple[int, int]:
    """Peak resident-memory growth from the request to the last byte of the body, and the body's size; the
    body is counted chunk by chunk, never kept."""
    import gc

    gc.collect()
    with PeakRss() as rss:
        response = client.get("/agent/queue/recent/", {"export": fmt})
        assert response.status_code == 200
        size = 0
        for chunk in response.streaming_content:
            size += len(chunk)
    return rss.growth, size


@pytest.mark.django_db
def test_queue_exports_of_100k_incidents_stream_in_flat_memory(client, agent, requester):
    from incidents.exports import export_rows
    from incidents.workspace import queue_queryset

    client.force_login(agent)
    insert_incidents(1, 10_000, requester.id)
    small = {fmt: rss_growth_while_consuming(client, fmt) for fmt in ("csv", "xlsx")}
    insert_incidents(10_001, 100_000, requester.id)
    large = {fmt: rss_growth_while_consuming(client, fmt) for fmt in ("csv", "xlsx")}
    for fmt in ("csv", "xlsx"):
        (small_growth, small_size), (large_growth, large_size) = small[fmt], large[fmt]
        assert large_size > 8 * small_size, (fmt, small_size, large_size)  # ten times the rows went through
        assert large_growth < 1.5 * small_growth + 8 * MB, (fmt, small_growth, large_growth)
        assert large_growth < BOUND, (fmt, large_growth)
    # The bound means something: the same 100k rows held in a list grow the process far beyond it.
    with PeakRss() as rss:
        held = list(export_rows(queue_queryset(agent, "recent", "-updated_at")))
    assert len(held) == 100_000
    assert rss.growth > BOUND, rss.growth


# --- the sheet's row limit, and the raw-lines CSV -------------------------------------------------------------


def test_xlsx_stops_at_the_sheets_row_limit_and_says_where_it_cut(monkeypatch):
    import xlsxwriter

    from servicedesk import exports

    assert exports.XLSX_MAX_ROWS == xlsxwriter.Workbook().add_worksheet().xls_rowmax  # Excel's 1,048,576
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 12)  # the same code path, with a limit a test can reach
    read = []

    def rows():
        for n in range(1, 100):
            read.append(n)
            yield {"name": f"row {n}", "count": n, "ratio": None, "share": None, "at": None, "day": None}

    response = export_response(filename="big", fmt="xlsx", columns=COLUMNS, rows=rows())
    sheet = xlsx_book(response).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert len(values) == 12  # never more than the sheet holds: header, 10 rows, the note
    assert values[0][0] == "Name" and values[10][:2] == ["row 10", 10]
    assert values[11][0].startswith("Export cut at 10 rows: an Excel sheet holds at most 12.")
    assert len(read) == 11  # it stopped reading: one row past the limit tells it there were more
    assert sheet.auto_filter.ref == "A1:F11"  # the filter covers the rows, not the note


def test_xlsx_at_the_limit_exactly_is_not_cut(monkeypatch):
    from servicedesk import exports

    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 12)
    rows = [{"name": f"row {n}", "count": n, "ratio": None, "share": None, "at": None, "day": None}
            for n in range(10)]
    values = list(xlsx_book(export_response(filename="fits", fmt="xlsx", columns=COLUMNS, rows=rows))
                  .active.iter_rows(values_only=True))
    assert len(values) == 11 and not any("cut" in str(v[0]) for v in values)


def test_csv_rows_response_streams_lines_as_given_with_or_without_a_bom():
    from servicedesk.exports import csv_rows_response

    lines = [["Group", "n"], ["A", 1], [], ["other", "table"]]
    plain = csv_rows_response(filename="two tables", lines=iter(lines), bom=False)
    assert plain["Content-Disposition"] == 'attachment; filename="two-tables.csv"'
    assert b"".join(plain.streaming_content) == b"Group,n\r\nA,1\r\n\r\nother,table\r\n"
    marked = csv_rows_response(filename="x", lines=iter(lines))
    assert b"".join(marked.streaming_content).startswith("\ufeffGroup".encode())


# --- behind PgBouncer: no server-side cursors, pages by key ---------------------------------------------------


@pytest.mark.django_db
def test_without_server_side_cursors_rows_are_read_a_page_at_a_time_in_the_same_order(requester, agent,
                                                                                      monkeypatch):
    """DATABASE_POOLER=pgbouncer sets DISABLE_SERVER_SIDE_CURSORS, where `.iterator()` fetches the whole result
    in one go: rows_of then reads pages of `chunk_size` rows by key, and yields exactly what the query
    orders, NULLs and ties included."""
    from django.db.models import F
    from django.test.utils import CaptureQueriesContext

    from incidents.models import Incident
    from servicedesk.exports import rows_of

    insert_incidents(1, 23, requester.id)
    # Ties (priority), NULLs (assignee, resolved_at) and equal timestamps, so the tiebreaks are exercised.
    Incident.objects.filter(number__in=["INC90000003", "INC90000007", "INC90000011"]).update(assignee=agent)
    Incident.objects.filter(number__in=["INC90000004", "INC90000005"]).update(
        resolved_at=timezone.now(), created_at=timezone.now() - dt.timedelta(days=1))
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    querysets = {
        "model ordering": Incident.objects.all(),
        "ties": Incident.objects.order_by("priority"),
        "descending ties": Incident.objects.order_by("-priority", "title"),
        "nulls, ascending": Incident.objects.order_by("assignee__username", "-created_at"),
        "nulls, descending": Incident.objects.order_by("-resolved_at", "priority"),
        "joined": Incident.objects.select_related("assignee").order_by("assignee_id"),
        "expression": Incident.objects.order_by(F("resolved_at").asc(nulls_first=True), "number"),
    }
    for name, queryset in querysets.items():
        expected = [i.pk for i in queryset.order_by(*(queryset.query.order_by or Incident._meta.ordering), "pk")]
        with CaptureQueriesContext(connection) as queries:
            got = [i.pk for i in rows_of(queryset, chunk_size=4)]
        assert got == expected, name
        assert len(got) == 23
        # Six pages of at most four rows (23 = 5 x 4 + 3): never the whole result in one fetch.
        assert len(queries) == 6, (name, len(queries))
        assert all("LIMIT 4" in q["sql"] for q in queries.captured_queries), name
    # With server-side cursors on, the cursor is used as before: one query, no LIMIT.
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", False)
    with CaptureQueriesContext(connection) as queries:
        assert len(list(rows_of(Incident.objects.all(), chunk_size=4))) == 23
    assert "LIMIT" not in queries.captured_queries[0]["sql"]
