"""CSV/XLSX exports of the service-request queues: the page's rows and order, its permission, fixed queries."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from requests_app.services import request_assignee_set, request_submit
from tests.export_reading import column, csv_rows, xlsx_rows
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db
ROW = re.compile(r'data-number="(REQ\d+)"')


def order(catalog_item, requester):
    return request_submit(item=catalog_item, answers={}, requester=requester, created_by=requester)


def page_numbers(client, url, **params):
    response = client.get(url, {**params, "per_page": 100})
    assert response.status_code == 200
    return list(dict.fromkeys(ROW.findall(response.content.decode())))


def test_a_queue_exports_the_rows_its_page_shows_in_its_order(client, agent, requester):
    vpn = item("Accès VPN – Zürich")
    made = [order(vpn, requester) for _ in range(4)]
    request_assignee_set(request_id=made[0].id, assignee=agent, actor=agent)
    client.force_login(agent)
    for key in ("all", "mine", "unassigned"):
        shown = page_numbers(client, f"/agent/requests/queue/{key}/", sort="number")
        assert shown, key
        rows = csv_rows(client.get(f"/agent/requests/queue/{key}/", {"sort": "number", "export": "csv"}))
        assert column(rows, "Number") == shown, key
        assert xlsx_rows(client.get(f"/agent/requests/queue/{key}/", {"sort": "number", "export": "xlsx"}))[1:] \
            and column(xlsx_rows(client.get(f"/agent/requests/queue/{key}/", {"sort": "number",
                                                                               "export": "xlsx"})), "Number") == shown
    rows = csv_rows(client.get("/agent/requests/queue/mine/", {"export": "csv"}))
    assert column(rows, "Item") == ["Accès VPN – Zürich"] and column(rows, "Assignee") == ["Agnes Agent"]
    html = client.get("/agent/requests/queue/all/", {"sort": "-number"}).content.decode()
    assert 'href="/agent/requests/queue/all/?sort=-number&amp;export=xlsx"' in html


def test_a_requester_gets_403_and_a_bad_format_400(client, agent, requester):
    order(item("Laptop"), requester)
    client.force_login(requester)
    assert client.get("/agent/requests/queue/all/", {"export": "csv"}).status_code == 403
    client.force_login(agent)
    bad = client.get("/agent/requests/queue/all/", {"export": "ods"})
    assert bad.status_code == 400 and "export" in bad.content.decode()


def test_the_export_runs_the_same_queries_for_3_rows_as_for_30(client, agent, requester):
    laptop = item("Laptop")
    client.force_login(agent)

    def run(fmt):
        with CaptureQueriesContext(connection) as ctx:
            rows = (csv_rows if fmt == "csv" else xlsx_rows)(
                client.get("/agent/requests/queue/all/", {"export": fmt}))
        return len(ctx.captured_queries), len(rows) - 1

    for _ in range(3):
        order(laptop, requester)
    few = {fmt: run(fmt) for fmt in ("csv", "xlsx")}
    for _ in range(27):
        order(laptop, requester)
    many = {fmt: run(fmt) for fmt in ("csv", "xlsx")}
    for fmt in ("csv", "xlsx"):
        assert few[fmt][1] == 3 and many[fmt][1] == 30
        assert many[fmt][0] == few[fmt][0], fmt


# --- the approvals inbox ------------------------------------------------------------------------------------


def test_the_approvals_inbox_exports_what_waits_for_me_in_fixed_queries(client, agent, requester, make_user):
    from tests.requests_app.approval_helpers import group_of, licence
    from tests.requests_app.approval_helpers import order as licence_order

    other = make_user("agent", username="otto")
    mine = licence("Licence – Zürich", (group_of("IT approvers", agent), "any"))
    theirs = licence("Other", (group_of("Finance approvers", other), "any"))
    client.force_login(agent)

    def run(fmt):
        with CaptureQueriesContext(connection) as ctx:
            rows = (csv_rows if fmt == "csv" else xlsx_rows)(client.get("/agent/approvals/", {"export": fmt}))
        return len(ctx.captured_queries), rows

    made = [licence_order(mine, requester) for _ in range(3)]
    licence_order(theirs, requester)
    few, rows = run("csv")
    assert column(rows, "Request") == [r.number for r in made]  # only mine, oldest first, like the inbox
    assert set(column(rows, "Item")) == {"Licence – Zürich"} and set(column(rows, "Approver")) == {"Agnes Agent"}
    for _ in range(27):
        licence_order(mine, requester)
    many, rows = run("xlsx")
    assert len(rows) == 31 and many == few
    assert 'data-testid="export-csv"' in client.get("/agent/approvals/").content.decode()
    assert client.get("/agent/approvals/", {"export": "x"}).status_code == 400
