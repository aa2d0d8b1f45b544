"""/api/v1/requests/ for agents: the list's filters (status, assignment_group, assignee, unassigned, item,
requester) at a constant cost, and POST .../{number}/assign/ (agents only, team members only, 409 when stale)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from requests_app.models import ServiceRequest
from requests_app.services import request_assignee_set, request_submit
from requests_app.states import Status
from servicedesk.models import TimelineEntry
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db

URL = "/api/v1/requests/"


@pytest.fixture
def laptop():
    return item("New laptop")


@pytest.fixture
def vpn():
    from servicedesk.models import Team

    return item("VPN access", fulfilment_team=Team.objects.get_or_create(name="Network")[0])


def make(catalog_item, user):
    return request_submit(item=catalog_item, answers={}, requester=user, created_by=user)


def listed(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return {row["number"] for row in response.json()["results"]}


def test_agents_filter_by_status_team_assignee_item_and_requester(client_for, agent, requester, other_requester,
                                                                  laptop, vpn):
    alices_laptop = make(laptop, requester)
    request_assignee_set(request_id=alices_laptop.id, actor=agent, assignee=agent)
    bobs_laptop = make(laptop, other_requester)
    bobs_vpn = make(vpn, other_requester)
    ServiceRequest.objects.filter(id=bobs_vpn.id).update(status=Status.FAILED)
    api = client_for(agent)

    assert listed(api, status="failed") == {bobs_vpn.number}
    assert listed(api, status=["failed", "in_fulfilment"]) == {alices_laptop.number, bobs_laptop.number,
                                                                bobs_vpn.number}
    assert listed(api, assignment_group="Network") == {bobs_vpn.number}
    assert listed(api, assignment_group=vpn.fulfilment_team_id) == {bobs_vpn.number}
    assert listed(api, assignee="agnes") == {alices_laptop.number}
    assert listed(api, unassigned="true") == {bobs_laptop.number, bobs_vpn.number}
    assert listed(api, item=laptop.id) == {alices_laptop.number, bobs_laptop.number}
    assert listed(api, requester="bob", item=laptop.id) == {bobs_laptop.number}


def test_an_unknown_username_or_status_is_400_naming_the_filter_for_agents(client_for, agent):
    api = client_for(agent)
    assert "assignee" in api.get(URL, {"assignee": "nobody"}).json()
    assert "status" in api.get(URL, {"status": "lost"}).json()


def test_a_requesters_filters_only_narrow_their_own_requests(client_for, requester, other_requester, laptop):
    own = make(laptop, requester)
    make(laptop, other_requester)
    api = client_for(requester)
    assert listed(api, item=laptop.id) == {own.number}
    # Another person's username answers like a name nobody has: no rows, no hint that it exists.
    assert listed(api, requester="bob") == set()
    assert listed(api, requester="nobody") == set()


def test_the_filtered_list_costs_the_same_queries_whatever_its_size(client_for, agent, requester, laptop):
    api = client_for(agent)
    make(laptop, requester)
    api.get(URL, {"status": "in_fulfilment", "assignment_group": "Service Desk"})
    with CaptureQueriesContext(connection) as one:
        assert len(listed(api, status="in_fulfilment", assignment_group="Service Desk")) == 1
    for _ in range(9):
        make(laptop, requester)
    with CaptureQueriesContext(connection) as ten:
        assert len(listed(api, status="in_fulfilment", assignment_group="Service Desk")) == 10
    assert len(ten.captured_queries) == len(one.captured_queries)


def test_assign_gives_the_request_to_an_agent_of_its_team(client_for, agent, requester, laptop):
    made = make(laptop, requester)
    response = client_for(agent).post(f"{URL}{made.number}/assign/",
                                      {"assignee": "agnes", "version": made.version}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["assignee"] == {"username": "agnes", "name": "Agnes Agent"}
    assert body["version"] == made.version + 1
    entry = TimelineEntry.objects.filter(object_id=made.id, kind="change").last()
    assert entry.internal and entry.data["changes"]["assignee"] == {"old": None, "new": "agnes"}


def test_assign_to_another_team_by_name_clears_the_assignee(client_for, agent, make_user, requester, laptop):
    from servicedesk.models import Team

    Team.objects.create(name="Network")
    made = make(laptop, requester)
    made = request_assignee_set(request_id=made.id, actor=agent, assignee=agent)
    response = client_for(agent).post(f"{URL}{made.number}/assign/", {"assignment_group": "Network"},
                                      format="json")
    assert response.status_code == 200, response.content
    assert response.json()["assignment_group"]["name"] == "Network"
    assert response.json()["assignee"] is None


def test_assign_team_and_member_together(client_for, agent, make_user, requester, laptop):
    make_user("agent", username="nina", first_name="Nina", teams=["Network"])
    from servicedesk.models import Team

    network = Team.objects.get(name="Network")
    made = make(laptop, requester)
    response = client_for(agent).post(f"{URL}{made.number}/assign/",
                                      {"assignment_group": network.id, "assignee": "nina"}, format="json")
    assert response.status_code == 200, response.content
    made.refresh_from_db()
    assert (made.assignment_group, made.assignee.username) == (network, "nina")


def test_assign_refuses_a_non_member_naming_the_field_and_saves_nothing(client_for, agent, make_user, requester,
                                                                        laptop):
    make_user("agent", username="nina", teams=["Network"])
    made = make(laptop, requester)
    response = client_for(agent).post(f"{URL}{made.number}/assign/", {"assignee": "nina"}, format="json")
    assert response.status_code == 400
    assert "assignee" in response.json()
    made.refresh_from_db()
    assert made.assignee is None and made.version == 2


def test_assign_with_a_stale_version_is_409(client_for, agent, requester, laptop):
    made = make(laptop, requester)
    response = client_for(agent).post(f"{URL}{made.number}/assign/",
                                      {"assignee": "agnes", "version": made.version - 1}, format="json")
    assert response.status_code == 409
    assert "reload" in response.json()["detail"]


def test_assign_needs_an_assignee_or_a_team(client_for, agent, requester, laptop):
    made = make(laptop, requester)
    response = client_for(agent).post(f"{URL}{made.number}/assign/", {}, format="json")
    assert response.status_code == 400 and "assignee" in response.json()


def test_requesters_may_not_assign_and_never_see_anothers_request(client_for, requester, other_requester, laptop):
    own = make(laptop, requester)
    theirs = make(laptop, other_requester)
    api = client_for(requester)
    assert api.post(f"{URL}{own.number}/assign/", {"assignee": "agnes"}, format="json").status_code == 403
    assert api.post(f"{URL}{theirs.number}/assign/", {"assignee": "agnes"}, format="json").status_code in (403, 404)


def test_assigning_a_closed_request_is_409(client_for, agent, requester, laptop):
    made = make(laptop, requester)
    ServiceRequest.objects.filter(id=made.id).update(status=Status.CLOSED)
    response = client_for(agent).post(f"{URL}{made.number}/assign/", {"assignee": "agnes"}, format="json")
    assert response.status_code == 409
