"""Edited and cross-sort cursors never cost a 500: the keyset API lists (/api/v1/requests/, /api/v1/alerts/)
answer 400 naming `cursor`; the HTML queues (incidents and requests) show the first page."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from tests.monitoring.console_data import make_alert, make_source
from tests.requests_app.factories import item
from tests.requests_app.test_workspace import order

pytestmark = pytest.mark.django_db


def edited(cursor: str) -> list[str]:
    """The ways a person edits a cursor: its payload swapped for another's, its signature changed, cut short."""
    payload, _, signature = cursor.rpartition(":")
    return [payload + ":" + signature[::-1], cursor[:-3], "eyJ2IjpbInh5eiIsImFiYyJdLCJiIjpmYWxzZX0:x"]


def assert_400_naming_cursor(response):
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"cursor"}


def test_requests_api_refuses_edited_and_cross_sort_cursors(client_for, agent, requester):
    reset = item("Reset my password")
    for _ in range(4):
        order(reset, requester)
    api = client_for(agent)
    body = api.get("/api/v1/requests/", {"page_size": 2, "ordering": "updated_at"}).json()
    cursor = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    assert api.get("/api/v1/requests/", {"page_size": 2, "ordering": "updated_at", "cursor": cursor}
                   ).status_code == 200
    for bad in edited(cursor):
        assert_400_naming_cursor(api.get("/api/v1/requests/", {"ordering": "updated_at", "cursor": bad}))
    for other in ("-updated_at", "created_at", None):
        params = {"cursor": cursor, **({"ordering": other} if other else {})}
        assert_400_naming_cursor(api.get("/api/v1/requests/", params))


def test_alerts_api_refuses_edited_and_other_lists_cursors(client_for, agent, requester):
    source = make_source()
    for n in range(3):
        make_alert(source, f"Disk {n}", severity="warning")
    api = client_for(agent)
    body = api.get("/api/v1/alerts/", {"page_size": 1}).json()
    cursor = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    assert api.get("/api/v1/alerts/", {"page_size": 1, "cursor": cursor}).status_code == 200
    for bad in edited(cursor):
        assert_400_naming_cursor(api.get("/api/v1/alerts/", {"cursor": bad}))
    reset = item("Reset my password")
    for _ in range(3):
        order(reset, requester)
    requests_next = api.get("/api/v1/requests/", {"page_size": 1}).json()["next"]
    assert_400_naming_cursor(api.get("/api/v1/alerts/", {"cursor": parse_qs(urlsplit(requests_next).query)
                                                                          ["cursor"][0]}))


def test_the_html_queues_show_the_first_page_for_edited_and_cross_sort_cursors(client, agent, requester,
                                                                              incident_factory):
    from incidents import workspace as incident_queues
    from requests_app import workspace as request_queues
    from servicedesk.keyset import keyset_page

    client.force_login(agent)
    reset = item("Reset my password")
    for _ in range(3):
        order(reset, requester)
        incident_factory(created_by=agent)
    for url, queues in (("/agent/queue/all/", incident_queues),
                        (reverse("agent:request_queue", kwargs={"key": "all"}), request_queues)):
        first = client.get(url, {"sort": "number"})
        assert first.status_code == 200
        ids = [r.id for r in first.context["page"].object_list]
        assert len(ids) == 3
        # The cursor the page would link to after its first row, were its pages one row long.
        cursor = keyset_page(queues.queue_queryset(agent, "all", "number"), per_page=1, with_count=False).next_cursor
        assert [r.id for r in client.get(url, {"sort": "number", "cursor": cursor}).context["page"]
                .object_list] == ids[1:]
        for bad in edited(cursor):
            response = client.get(url, {"sort": "number", "cursor": bad})
            assert response.status_code == 200
            assert [r.id for r in response.context["page"].object_list] == ids
        response = client.get(url, {"sort": "-number", "cursor": cursor})  # another sort's cursor
        assert response.status_code == 200
        assert [r.id for r in response.context["page"].object_list] == ids[::-1]


def test_a_queue_page_emptied_by_a_bulk_action_links_back_to_the_first_page(client, agent, requester,
                                                                            incident_factory):
    from incidents import workspace as incident_queues
    from incidents.models import Incident
    from requests_app import workspace as request_queues
    from requests_app.models import ServiceRequest
    from servicedesk.keyset import keyset_page

    client.force_login(agent)
    reset = item("Reset my password")
    for _ in range(3):
        order(reset, requester)
        incident_factory(created_by=agent)
    for url, queues, model in (("/agent/queue/all/", incident_queues, Incident),
                               (reverse("agent:request_queue", kwargs={"key": "all"}), request_queues,
                                ServiceRequest)):
        rows = list(queues.queue_queryset(agent, "all", "number"))
        cursor = keyset_page(queues.queue_queryset(agent, "all", "number"), per_page=2, with_count=False).next_cursor
        model.objects.filter(id=rows[2].id).delete()  # the only row after the cursor is gone
        response = client.get(url, {"sort": "number", "cursor": cursor})
        assert response.status_code == 200 and response.context["page"].object_list == []
        html = response.content.decode()
        assert "This page is empty now" in html and 'data-testid="page-first"' in html
        assert "Nothing matches" not in html
        first = client.get(url, {"sort": "number"})
        assert [r.id for r in first.context["page"].object_list] == [r.id for r in rows[:2]]


def test_the_api_gives_a_way_back_from_an_emptied_page(client_for, agent, requester):
    from requests_app.models import ServiceRequest

    reset = item("Reset my password")
    made = [order(reset, requester) for _ in range(3)]
    api = client_for(agent)
    body = api.get("/api/v1/requests/", {"page_size": 2}).json()
    ServiceRequest.objects.filter(id=made[0].id).delete()  # the oldest: the only one on the next page
    emptied = api.get(body["next"]).json()
    assert emptied["results"] == [] and emptied["next"] is None
    assert emptied["previous"] and "cursor" not in emptied["previous"]
    assert len(api.get(emptied["previous"]).json()["results"]) == 2


@pytest.mark.parametrize("url", ["/api/v1/requests/", "/api/v1/alerts/"])
def test_keyset_lists_refuse_a_page_number_naming_it(client_for, agent, url):
    api = client_for(agent)
    assert api.get(url).status_code == 200
    for page in ("1", "2", "x"):
        response = api.get(url, {"page": page})
        assert response.status_code == 400
        assert "cursor pagination" in response.json()["page"][0]
