"""/api/v1/requests/ pages by keyset cursor (servicedesk.api.pagination.KeysetPagination): `results`, `next`,
`previous`, every request once across pages even when requests arrive between two pages, orderings kept, a
damaged cursor answered 400 naming it, and the same queries whatever the page size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from requests_app.models import ServiceRequest
from tests.requests_app.factories import item
from tests.requests_app.test_workspace import order

pytestmark = pytest.mark.django_db
URL = "/api/v1/requests/"


@pytest.fixture
def reset():
    return item("Reset my password")


def walk(api, params):
    seen, url, pages = [], URL, 0
    while url:
        body = api.get(url, params if url == URL else None).json()
        assert set(body) == {"results", "next", "previous"}
        seen += [r["number"] for r in body["results"]]
        url, pages = body["next"], pages + 1
    return seen, pages


@pytest.mark.parametrize("ordering", [None, "updated_at", "-updated_at", "created_at"])
def test_every_request_comes_once_in_the_asked_order(client_for, agent, requester, reset, ordering):
    for _ in range(13):
        order(reset, requester)
    api = client_for(agent)
    params = {"page_size": 5, **({"ordering": ordering} if ordering else {})}
    seen, pages = walk(api, params)
    key = ordering or "-created_at"
    expected = list(ServiceRequest.objects.order_by(key, f"{'-' if key.startswith('-') else ''}id")
                    .values_list("number", flat=True))
    assert seen == expected and pages == 3


def test_requests_arriving_between_pages_are_not_shown_twice(client_for, agent, requester, reset):
    for _ in range(8):
        order(reset, requester)
    api = client_for(agent)
    first = api.get(URL, {"page_size": 5}).json()
    for _ in range(4):
        order(reset, requester)  # newer: they sort before page 1
    second = api.get(first["next"]).json()
    numbers = [r["number"] for r in first["results"]] + [r["number"] for r in second["results"]]
    assert len(second["results"]) == 3 and len(set(numbers)) == 8 and second["next"] is None
    back = api.get(second["previous"]).json()
    assert [r["number"] for r in back["results"]] == [r["number"] for r in first["results"]]


def test_a_damaged_cursor_answers_400_naming_it(client_for, agent):
    response = client_for(agent).get(URL, {"cursor": "not-a-cursor"})
    assert response.status_code == 400 and "cursor" in response.json()


def test_a_page_costs_the_same_queries_whatever_its_size(client_for, agent, requester, reset, make_user):
    for n in range(4):
        order(reset, make_user("requester") if n % 2 else requester)
    api = client_for(agent)
    api.get(URL)
    with CaptureQueriesContext(connection) as small:
        assert len(api.get(URL, {"page_size": 2}).json()["results"]) == 2
    for n in range(30):
        order(reset, make_user("requester") if n % 2 else requester)
    with CaptureQueriesContext(connection) as big:
        assert len(api.get(URL, {"page_size": 30}).json()["results"]) == 30
    assert len(big.captured_queries) == len(small.captured_queries)
