"""CSV/XLSX exports of the problem queues: every row of the queue (not only the first page), its permission."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from problems import views
from tests.export_reading import column, csv_rows, xlsx_rows

pytestmark = pytest.mark.django_db


def test_a_queue_exports_all_its_problems_beyond_the_page(client, agent, problem_factory, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    made = [problem_factory(title=f"Panne n°{i} – Zürich") for i in range(3)]
    mine = problem_factory(title="=cmd|' /C calc'!A0", assignee=agent)
    client.force_login(agent)
    page = client.get("/agent/problems/queue/open/").content.decode()
    assert page.count('data-testid="problem-row"') == 2 or "(the first 2)" in page
    assert 'data-testid="export-csv"' in page
    rows = csv_rows(client.get("/agent/problems/queue/open/", {"export": "csv"}))
    assert sorted(column(rows, "Number")) == sorted(p.number for p in [*made, mine])
    assert "'=cmd|' /C calc'!A0" in column(rows, "Title")
    rows = xlsx_rows(client.get("/agent/problems/queue/mine/", {"export": "xlsx"}))
    assert column(rows, "Number") == [mine.number] and column(rows, "Owner") == ["Agnes Agent"]
    assert column(rows, "Linked incidents") == [0]


def test_a_requester_gets_403_and_a_bad_format_400(client, agent, requester, problem_factory):
    problem_factory()
    client.force_login(requester)
    assert client.get("/agent/problems/queue/open/", {"export": "xlsx"}).status_code == 403
    client.force_login(agent)
    assert client.get("/agent/problems/queue/open/", {"export": "doc"}).status_code == 400


def test_the_export_runs_the_same_queries_for_3_rows_as_for_30(client, agent, problem_factory):
    client.force_login(agent)

    def run():
        with CaptureQueriesContext(connection) as ctx:
            rows = csv_rows(client.get("/agent/problems/queue/open/", {"export": "csv"}))
        return len(ctx.captured_queries), len(rows) - 1

    for _ in range(3):
        problem_factory()
    few, n = run()
    assert n == 3
    for _ in range(27):
        problem_factory()
    many, n = run()
    assert n == 30 and many == few
