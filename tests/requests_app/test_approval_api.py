"""/api/v1/approvals/: permissions first (mine; admins all; another's is 404), then deciding (400 naming the
comment, 409 once decided), the representation, the state filter and a constant number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from requests_app.models import Approval, ServiceRequest
from requests_app.states import Status
from tests.requests_app.approval_helpers import group_of, licence, manage, order, pending

pytestmark = pytest.mark.django_db

URL = "/api/v1/approvals/"


@pytest.fixture
def manager(make_user):
    return make_user("requester", username="manny", first_name="Manny", last_name="Manager")


@pytest.fixture
def made(requester, manager):
    manage(requester, manager)
    return order(licence("Licence", ("manager", "any")), requester)


def test_approvers_list_their_pending_approvals_and_others_see_none(client_for, made, manager, other_requester,
                                                                     requester, agent):
    approval = pending(made).get()
    rows = client_for(manager).get(URL).json()["results"]
    assert rows == [{
        "id": approval.id, "request": made.number, "item": {"id": made.item_id, "name": "Licence"},
        "requester": {"username": "alice", "name": "Alice Able"},
        "answers": {"product": "Visio", "why": "Floor plans"}, "level": 1, "mode": "any",
        "via": "Manager of Alice Able", "state": "pending", "approver": {"username": "manny", "name": "Manny Manager"},
        "decided_by": None, "decided_at": None, "comment": "", "override": False,
        "created_at": rows[0]["created_at"],
    }]
    for stranger in (other_requester, requester, agent):
        assert client_for(stranger).get(URL).json()["results"] == []
        assert client_for(stranger).get(f"{URL}{approval.id}/").status_code == 404


def test_admins_see_every_pending_approval(client_for, made, admin_user):
    rows = client_for(admin_user).get(URL).json()["results"]
    assert [row["request"] for row in rows] == [made.number]


def test_deciding_another_persons_approval_is_404_and_changes_nothing(client_for, made, other_requester, agent):
    approval = pending(made).get()
    for stranger in (other_requester, agent):
        response = client_for(stranger).post(f"{URL}{approval.id}/approve/", {}, format="json")
        assert response.status_code == 404
    assert client_for(agent).post(f"{URL}999999/approve/", {}, format="json").status_code == 404
    assert pending(made).exists()


def test_reject_without_a_comment_is_400_naming_it_then_rejects_with_one(client_for, made, manager):
    approval = pending(made).get()
    api = client_for(manager)
    response = api.post(f"{URL}{approval.id}/reject/", {}, format="json")
    assert response.status_code == 400 and "comment" in response.json()
    assert pending(made).exists()
    response = api.post(f"{URL}{approval.id}/reject/", {"comment": "Not this quarter"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "rejected" and body["comment"] == "Not this quarter"
    assert body["decided_by"] == {"username": "manny", "name": "Manny Manager"}
    assert ServiceRequest.objects.get(id=made.id).status == Status.REJECTED


def test_approve_moves_the_request_on_and_a_decided_approval_is_409(client_for, made, manager, admin_user):
    approval = pending(made).get()
    response = client_for(manager).post(f"{URL}{approval.id}/approve/", {"comment": "ok"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "approved"
    assert ServiceRequest.objects.get(id=made.id).status == Status.IN_FULFILMENT
    # The same click again changes nothing; the contrary decision, or an admin's, is a conflict.
    assert client_for(manager).post(f"{URL}{approval.id}/approve/", {}, format="json").status_code == 200
    conflict = client_for(manager).post(f"{URL}{approval.id}/reject/", {"comment": "no"}, format="json")
    assert conflict.status_code == 409 and "already approved" in conflict.json()["detail"]
    assert client_for(admin_user).post(f"{URL}{approval.id}/approve/", {}, format="json").status_code == 409


def test_an_admin_decision_on_anothers_approval_is_an_override(client_for, made, admin_user):
    approval = pending(made).get()
    body = client_for(admin_user).post(f"{URL}{approval.id}/approve/", {}, format="json").json()
    assert body["override"] is True and body["decided_by"]["username"] == "root"
    assert body["approver"]["username"] == "manny"


def test_the_state_filter_defaults_to_pending_and_all_lists_decided_ones(client_for, made, manager):
    approval = pending(made).get()
    api = client_for(manager)
    api.post(f"{URL}{approval.id}/approve/", {}, format="json")
    assert api.get(URL).json()["results"] == []
    assert [r["state"] for r in api.get(URL, {"state": "approved"}).json()["results"]] == ["approved"]
    assert [r["id"] for r in api.get(URL, {"state": "all"}).json()["results"]] == [approval.id]
    assert api.get(URL, {"state": "bogus"}).status_code == 400


def test_the_list_costs_the_same_at_two_page_sizes(client_for, requester, make_user):
    approvers = [make_user("agent") for _ in range(2)]
    it = licence("Licence", (group_of("Approvers", *approvers), "all"))
    for _ in range(6):
        order(it, requester)
    api = client_for(approvers[0])
    counts = []
    for size in (2, 6):
        with CaptureQueriesContext(connection) as ctx:
            response = api.get(URL, {"page_size": size})
        assert len(response.json()["results"]) == size
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert Approval.objects.count() == 12


def test_the_catalog_says_which_items_need_approval_without_a_query_per_item(client_for, requester, manager):
    licence("Licence", ("manager", "any"))
    licence("Plain")
    rows = client_for(requester).get("/api/v1/catalog/items/").json()["results"]
    assert {r["name"]: r["requires_approval"] for r in rows} == {"Licence": True, "Plain": False}
