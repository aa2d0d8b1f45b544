"""CSV/XLSX exports of the event console: the console's filters and order, its permission, fixed queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.export_reading import column, csv_rows, xlsx_rows
from tests.monitoring.console_data import make_alert, make_source

pytestmark = pytest.mark.django_db
URL = "/agent/monitoring/"


def test_the_console_exports_every_alert_its_filters_select_in_its_order(client, agent):
    source = make_source()
    make_alert(source, "Disque plein – Zürich", severity="critical")
    make_alert(source, "CPU high", severity="warning")
    make_alert(source, "@SUM(1+1)", severity="major")
    client.force_login(agent)
    rows = csv_rows(client.get(URL, {"export": "csv"}))
    assert column(rows, "Summary") == ["Disque plein – Zürich", "'@SUM(1+1)", "CPU high"]  # most severe first
    rows = xlsx_rows(client.get(URL, {"severity": "warning", "export": "xlsx"}))
    assert column(rows, "Summary") == ["CPU high"] and column(rows, "Severity") == ["Warning"]
    html = client.get(URL, {"severity": "critical"}).content.decode()
    assert "severity=critical" in html.split('data-testid="export-csv"')[0].rsplit("href=", 1)[1]


def test_a_requester_gets_403_and_a_bad_format_400(client, agent, requester):
    client.force_login(requester)
    assert client.get(URL, {"export": "csv"}).status_code == 403
    client.force_login(agent)
    assert client.get(URL, {"export": "json"}).status_code == 400


def test_the_export_runs_the_same_queries_for_3_rows_as_for_30(client, agent):
    source = make_source()
    client.force_login(agent)

    def run():
        with CaptureQueriesContext(connection) as ctx:
            rows = xlsx_rows(client.get(URL, {"export": "xlsx"}))
        return len(ctx.captured_queries), len(rows) - 1

    for i in range(3):
        make_alert(source, f"Alert {i}")
    few, n = run()
    assert n == 3
    for i in range(27):
        make_alert(source, f"More {i}")
    many, n = run()
    assert n == 30 and many == few
