"""/api/v1/requests/: submit (201 in the contract's shape, 400 naming each bad field, idempotent replay),
lists with permissions in the query at a constant cost, requester isolation, and the actions."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from requests_app.models import ServiceRequest
from requests_app.services import request_submit
from servicedesk.registry import registry
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db

URL = "/api/v1/requests/"
FIELDS = [
    {"name": "model", "label": "Model", "type": "choice", "required": True, "choices": "13 inch\n15 inch"},
    {"name": "needed_by", "label": "Needed by", "type": "date", "required": True},
]
GOOD = {"model": "15 inch", "needed_by": "2026-12-15"}


@pytest.fixture
def laptop():
    return item("New laptop", fields=FIELDS)


def make(laptop, user):
    return request_submit(item=laptop, answers=GOOD, requester=user, created_by=user)


def test_post_creates_a_request_in_the_contracts_shape(client_for, requester, laptop):
    response = client_for(requester).post(URL, {"item": laptop.id, "answers": GOOD}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"].startswith("REQ")
    assert body["item"] == {"id": laptop.id, "name": "New laptop"}
    assert body["answers"] == GOOD
    assert body["status"] == "in_fulfilment"
    assert body["requester"] == {"username": "alice", "name": "Alice Able"}
    assert body["assignment_group"]["name"] == "Service Desk"
    assert {"created_at", "updated_at", "version"} <= set(body)
    assert ServiceRequest.objects.get().number == body["number"]


def test_bad_answers_answer_400_naming_every_field_and_store_nothing(client_for, requester, laptop):
    response = client_for(requester).post(URL, {"item": laptop.id, "answers": {"model": "17 inch", "x": 1}},
                                          format="json")
    assert response.status_code == 400
    assert set(response.json()["answers"]) == {"model", "needed_by", "x"}
    response = client_for(requester).post(URL, {"item": laptop.id, "answers": ["no"]}, format="json")
    assert response.status_code == 400 and "answers" in response.json()
    response = client_for(requester).post(URL, {"answers": GOOD}, format="json")
    assert response.status_code == 400 and "item" in response.json()
    assert not ServiceRequest.objects.exists()


def test_an_item_not_orderable_or_missing_answers_400_naming_item(client_for, requester):
    payroll = item("Payroll access", audience="groups", groups=[Group.objects.create(name="Finance")])
    for item_id in (payroll.id, 999_999):
        response = client_for(requester).post(URL, {"item": item_id, "answers": {}}, format="json")
        assert response.status_code == 400
        assert "item" in response.json()
    assert not ServiceRequest.objects.exists()


def test_an_idempotent_post_replays_and_creates_one_request(client_for, requester, laptop):
    client = client_for(requester)
    first = client.post(URL, {"item": laptop.id, "answers": GOOD}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(URL, {"item": laptop.id, "answers": GOOD}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["number"] == first.json()["number"]
    assert ServiceRequest.objects.count() == 1
    other = client.post(URL, {"item": laptop.id, "answers": {**GOOD, "model": "13 inch"}}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422


def test_requesters_see_only_theirs_and_another_number_is_404(client_for, requester, other_requester, agent,
                                                                laptop):
    mine = make(laptop, requester)
    theirs = make(laptop, other_requester)
    listed = client_for(requester).get(URL).json()
    assert [row["number"] for row in listed["results"]] == [mine.number]
    assert client_for(requester).get(f"{URL}{theirs.number}/").status_code == 404
    assert client_for(requester).post(f"{URL}{theirs.number}/cancel/", {}, format="json").status_code == 404
    assert client_for(requester).get(f"{URL}{mine.number}/").json()["number"] == mine.number
    assert {row["number"] for row in client_for(agent).get(URL).json()["results"]} == {mine.number, theirs.number}


@pytest.mark.parametrize("who", ["requester", "agent"])
def test_the_list_costs_the_same_at_two_page_sizes(client_for, requester, agent, laptop, make_user, who):
    people = [requester] + [make_user("requester") for _ in range(2)]
    for n in range(12):
        make(laptop, people[n % 3] if who == "agent" else requester)
    client = client_for(requester if who == "requester" else agent)
    counts = []
    for size in (2, 10):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(URL, {"page_size": size})
        assert len(response.json()["results"]) == size
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_actions_fulfil_close_cancel_and_409_for_an_illegal_move(client_for, requester, agent, laptop):
    made = make(laptop, requester)
    base = f"{URL}{made.number}/"
    assert client_for(requester).post(f"{base}fulfil/", {"note": "x"}, format="json").status_code == 403
    assert client_for(agent).post(f"{base}close/", {}, format="json").status_code == 409
    response = client_for(agent).post(f"{base}fulfil/", {}, format="json")
    assert response.status_code == 400 and "note" in response.json()
    stale = client_for(agent).post(f"{base}fulfil/", {"note": "Done", "version": 1}, format="json")
    assert stale.status_code == 409
    done = client_for(agent).post(f"{base}fulfil/", {"note": "Done", "version": made.version}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "fulfilled"
    assert client_for(requester).post(f"{base}cancel/", {}, format="json").status_code == 409
    assert client_for(agent).post(f"{base}close/", {}, format="json").json()["status"] == "closed"

    other = make(laptop, requester)
    response = client_for(requester).post(f"{URL}{other.number}/cancel/", {"reason": "No longer needed"},
                                          format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_my_tickets_lists_a_persons_requests(requester, other_requester, laptop):
    mine = make(laptop, requester)
    make(laptop, other_requester)
    source = next(s for s in registry.sources if s.key == "requests")
    rows = source.mine(requester, 10)
    assert [(r.kind, r.number, r.snippet) for r in rows] == [("request", mine.number, "New laptop")]
