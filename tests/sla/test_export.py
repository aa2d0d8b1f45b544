"""The SLA report as XLSX: the compliance table with numbers and percentages, then every breached clock."""

import pytest

from tests.export_reading import xlsx_book
from tests.sla.test_reports import MARCH, PAGE, always, manager, march, teams  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_the_report_downloads_as_xlsx_with_the_groups_and_the_breached_clocks(client, manager, march):  # noqa: F811
    client.force_login(manager)
    page = client.get(f"{PAGE}?{MARCH}&group_by=team").content.decode()
    assert 'data-testid="report-xlsx"' in page and "format=xlsx" in page
    response = client.get(f"{PAGE}?{MARCH}&group_by=team&format=xlsx")
    assert response["Content-Disposition"] == 'attachment; filename="sla-report-team-2026-03-01-2026-03-31.xlsx"'
    book = xlsx_book(response)
    groups, breached = book.worksheets
    assert (groups.title, breached.title) == ("Compliance", "Breached clocks")
    rows = [list(r) for r in groups.iter_rows(values_only=True)]
    assert rows[0][:5] == ["Team", "First response stopped", "First response met", "First response breached",
                           "First response compliance"]
    network = rows[2]
    assert network[:7] == ["Network", 4, 3, 1, 0.75, 30.0, 51.0]
    assert groups.cell(row=3, column=5).number_format == "0.0%"
    assert rows[-1][0] == "All" and rows[-1][4] == 0.8
    assert len(list(breached.iter_rows(values_only=True))) == 1 + 4


def test_the_xlsx_is_for_managers_only_like_the_page(client, agent):
    client.force_login(agent)
    assert client.get(f"{PAGE}?{MARCH}&group_by=team&format=xlsx").status_code == 403


@pytest.mark.parametrize("query", ["export=pdf", "format=pdf", "export=XLSX2"])
def test_another_format_is_refused_with_400_naming_export(client, manager, query):  # noqa: F811
    client.force_login(manager)
    response = client.get(f"{PAGE}?{MARCH}&group_by=team&{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == "export: choose csv or xlsx"


def test_export_csv_is_the_same_stream_as_format_csv(client, manager, march):  # noqa: F811
    client.force_login(manager)
    old = b"".join(client.get(f"{PAGE}?{MARCH}&group_by=team&format=csv").streaming_content)
    new = b"".join(client.get(f"{PAGE}?{MARCH}&group_by=team&export=csv").streaming_content)
    assert old == new and old.startswith(b"Team,") and b"\r\n\r\nticket type," in old
