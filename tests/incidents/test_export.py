"""CSV and XLSX exports of the incident queues, saved views and search: the same rows as the page's filters,
the same permission, a fixed number of queries."""

import datetime as dt
import re
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents import services
from incidents.models import SavedView
from servicedesk.models import Service, Team
from tests.export_reading import column, csv_rows, xlsx_book, xlsx_rows

pytestmark = pytest.mark.django_db

ROW = re.compile(r'data-testid="incident-row" data-number="(INC\d+)"')


def page_numbers(client, url: str, **params) -> list[str]:
    response = client.get(url, {**params, "per_page": 100})
    assert response.status_code == 200
    return ROW.findall(response.content.decode())


@pytest.fixture
def desk(client, agent, incident_factory):
    """Six incidents: P2 and P4 on two services, one resolved; the agent signed in."""
    email = Service.objects.create(name="E-mail")
    vpn = Service.objects.create(name="VPN")
    made = []
    for i in range(6):
        made.append(incident_factory(title=f"Problème n°{i} – Zürich", impact=2 if i % 2 else 3, urgency=2,
                                     created_by=agent, service=email if i < 3 else vpn))
    services.incident_assign(incident_id=made[0].id, actor=agent, assignee=agent)
    services.incident_resolve(incident_id=made[1].id, actor=agent, resolution_code="fixed",
                              resolution_notes="Restarted")
    client.force_login(agent)
    return {"client": client, "incidents": made, "email": email, "vpn": vpn}


def test_it_exports_every_row_of_the_queue_as_csv_in_the_pages_order(desk):
    client = desk["client"]
    shown = page_numbers(client, "/agent/queue/all/")
    rows = csv_rows(client.get("/agent/queue/all/", {"export": "csv"}))
    assert rows[0][:4] == ["Number", "Title", "Status", "Priority"]
    assert column(rows, "Number") == shown
    assert len(shown) == 5  # the resolved one is not in "All open"
    first = desk["incidents"][0]
    line = dict(zip(rows[0], rows[1 + shown.index(first.number)], strict=True))
    assert line["Title"] == "Problème n°0 – Zürich"  # accents survive (UTF-8 with a BOM)
    assert line["Status"] == "In progress"
    assert line["Service"] == "E-mail"
    assert line["Assignee"] == "Agnes Agent"
    assert line["Requester"] == "Alice Able"
    created = dt.datetime.fromisoformat(line["Created"])
    assert created.utcoffset() == timezone.localtime(first.created_at).utcoffset()
    assert created == first.created_at.replace(microsecond=0)


def test_it_applies_the_pages_filters_and_sort_to_the_export(desk):
    client = desk["client"]
    params = {"service": desk["vpn"].id, "priority": ["2", "3", "4", "5"], "sort": "-number"}
    shown = page_numbers(client, "/agent/queue/recent/", **params)
    assert shown and len(shown) == 3
    rows = xlsx_rows(client.get("/agent/queue/recent/", {**params, "export": "xlsx"}))
    assert column(rows, "Number") == shown
    assert set(column(rows, "Service")) == {"VPN"}
    narrower = {"status": "resolved"}
    shown = page_numbers(client, "/agent/queue/recent/", **narrower)
    assert column(csv_rows(client.get("/agent/queue/recent/", {**narrower, "export": "csv"})), "Number") == shown
    assert shown == [desk["incidents"][1].number]


def test_it_writes_xlsx_with_typed_cells_a_bold_frozen_header_and_local_times(desk):
    book = xlsx_book(desk["client"].get("/agent/queue/recent/", {"export": "xlsx", "sort": "number"}))
    sheet = book.worksheets[0]
    assert sheet.title == "Recent"
    assert sheet.freeze_panes == "A2"
    assert sheet["A1"].value == "Number" and sheet["A1"].font.b
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    first = desk["incidents"][0]
    line = dict(zip(rows[0], rows[1], strict=True))
    assert line["Number"] == first.number
    assert isinstance(line["Impact"], int)
    assert isinstance(line["Created"], dt.datetime)
    local = timezone.make_naive(first.created_at).replace(second=0, microsecond=0)
    assert abs(line["Created"] - local) < dt.timedelta(minutes=1)
    assert line["Resolved"] is None


def test_it_exports_search_results_and_saved_views_with_their_stored_filters(desk, agent):
    client = desk["client"]
    shown = page_numbers(client, "/agent/search/", q="Zürich", service=desk["email"].id)
    assert len(shown) == 3
    rows = csv_rows(client.get("/agent/search/", {"q": "Zürich", "service": desk["email"].id, "export": "csv"}))
    assert column(rows, "Number") == shown
    view = SavedView.objects.create(owner=agent, name="VPN P3",
                                    query=urlencode({"queue": "recent", "service": desk["vpn"].id}))
    shown = page_numbers(client, f"/agent/views/{view.id}/")
    response = client.get(f"/agent/views/{view.id}/", {"export": "xlsx"})
    assert 'filename="incidents-VPN-P3-' in response["Content-Disposition"]
    assert column(xlsx_rows(response), "Number") == shown and len(shown) == 3


def test_a_search_for_a_number_exports_that_row_rather_than_opening_it(desk):
    number = desk["incidents"][2].number
    assert desk["client"].get("/agent/search/", {"q": number}).status_code == 302
    rows = csv_rows(desk["client"].get("/agent/search/", {"q": number, "export": "csv"}))
    assert column(rows, "Number") == [number]


def test_a_requester_gets_403_like_the_page(client, requester, incident_factory):
    incident_factory()
    client.force_login(requester)
    assert client.get("/agent/queue/all/").status_code == 403
    assert client.get("/agent/queue/all/", {"export": "csv"}).status_code == 403
    assert client.get("/agent/queue/all/", {"export": "xlsx"}).status_code == 403
    client.logout()
    assert client.get("/agent/queue/all/", {"export": "csv"}).status_code == 302


def test_a_bad_export_value_answers_400_naming_it(desk):
    response = desk["client"].get("/agent/queue/all/", {"export": "pdf"})
    assert response.status_code == 400
    assert "export" in response.content.decode()


def test_the_page_offers_csv_and_excel_links_keeping_its_filters(desk):
    response = desk["client"].get("/agent/queue/all/", {"priority": "3", "cursor": "x", "sort": "-number"})
    html = response.content.decode()
    assert 'data-testid="export-menu"' in html
    csv_link = re.search(r'href="([^"]+)" data-testid="export-csv"', html).group(1).replace("&amp;", "&")
    xlsx_link = re.search(r'href="([^"]+)" data-testid="export-xlsx"', html).group(1).replace("&amp;", "&")
    assert csv_link.startswith("/agent/queue/all/?") and "priority=3" in csv_link and "sort=-number" in csv_link
    assert "cursor=" not in csv_link and csv_link.endswith("export=csv")
    assert xlsx_link.endswith("export=xlsx")
    assert column(csv_rows(desk["client"].get(csv_link)), "Number") == page_numbers(
        desk["client"], "/agent/queue/all/", priority="3", sort="-number")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_runs_the_same_number_of_queries_for_3_rows_as_for_30(client, agent, incident_factory, fmt):
    team = Team.objects.get(name="Service Desk")
    service = Service.objects.create(name="Printing")
    client.force_login(agent)

    def run() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/agent/queue/recent/", {"export": fmt})
            rows = csv_rows(response) if fmt == "csv" else xlsx_rows(response)
        return len(ctx.captured_queries), len(rows) - 1

    for _ in range(3):
        incident_factory(created_by=agent, impact=2, service=service, assignment_group=team)
    few, n = run()
    assert n == 3
    for _ in range(27):
        incident_factory(created_by=agent, impact=2, service=service, assignment_group=team)
    many, n = run()
    assert n == 30
    assert many == few
