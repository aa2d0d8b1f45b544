"""CSV/XLSX exports of the agents' knowledge list: its filters, its permission, fixed queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from servicedesk.models import Service
from tests.export_reading import column, csv_rows, xlsx_rows

pytestmark = pytest.mark.django_db
URL = "/agent/kb/"


def test_the_list_exports_every_article_its_filters_select(client, agent, article_factory):
    vpn = Service.objects.create(name="VPN")
    article_factory("Se connecter au VPN – Zürich", services=[vpn])
    article_factory("Draft about printers", status="draft")
    client.force_login(agent)
    rows = csv_rows(client.get(URL, {"export": "csv"}))
    assert sorted(column(rows, "Title")) == ["Draft about printers", "Se connecter au VPN – Zürich"]
    rows = xlsx_rows(client.get(URL, {"status": "draft", "export": "xlsx"}))
    assert column(rows, "Title") == ["Draft about printers"] and column(rows, "Status") == ["Draft"]
    rows = csv_rows(client.get(URL, {"status": "published", "export": "csv"}))
    assert column(rows, "Services") == ["VPN"]
    assert 'data-testid="export-xlsx"' in client.get(URL).content.decode()


def test_a_requester_gets_403_and_a_bad_format_400(client, agent, requester):
    client.force_login(requester)
    assert client.get(URL, {"export": "csv"}).status_code == 403
    client.force_login(agent)
    assert client.get(URL, {"export": "txt"}).status_code == 400


def test_the_export_runs_the_same_queries_for_3_rows_as_for_30(client, agent, article_factory):
    client.force_login(agent)

    def run():
        with CaptureQueriesContext(connection) as ctx:
            rows = csv_rows(client.get(URL, {"export": "csv"}))
        return len(ctx.captured_queries), len(rows) - 1

    for i in range(3):
        article_factory(f"Article {i}")
    few, n = run()
    assert n == 3
    for i in range(3, 30):
        article_factory(f"Article {i}")
    many, n = run()
    assert n == 30 and many == few
