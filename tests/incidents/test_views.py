"""The agent workspace in HTML: queues, search, saved views, bulk actions and the incident page."""

import re
from urllib.parse import urlencode

import pytest
from django.contrib.messages import get_messages

from incidents import services
from incidents.models import CannedResponse, Incident, SavedView
from incidents.states import ALLOWED, Status
from servicedesk.models import Service, Team

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
ROW = re.compile(r'data-testid="incident-row" data-number="(INC\d+)"')


def rows(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return ROW.findall(response.content.decode())


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def network(db):
    return Team.objects.get_or_create(name="Network")[0]


@pytest.fixture
def service_desk(agent):
    return Team.objects.get(name="Service Desk")


@pytest.fixture
def bert(make_user, network):
    return make_user("agent", username="bert", first_name="Bert", last_name="Byte", teams=["Network"])


@pytest.fixture
def make(incident_factory, requester, agent):
    def create(title="Printer on floor 3 is jammed", **kwargs):
        if "impact" in kwargs:
            kwargs.setdefault("created_by", agent)  # only the desk sets an impact (incidents.impact)
        return incident_factory(title=title, **kwargs)

    return create


def in_progress(incident, agent):
    return services.incident_assign(incident_id=incident.id, actor=agent, assignee=agent)


# --- queues ---------------------------------------------------------------------------------------


@pytest.fixture
def world(make, agent, bert, service_desk, network):
    """One incident per situation the queues tell apart."""
    mine = in_progress(make("Mine, in progress", assignment_group=service_desk), agent)
    held = in_progress(make("Mine, on hold", assignment_group=service_desk), agent)
    services.incident_hold(incident_id=held.id, actor=agent, hold_reason="awaiting_vendor")
    team = make("Service Desk, nobody yet", assignment_group=service_desk)
    other_team = make("Network, nobody yet", assignment_group=network)
    berts = make("Bert has it", assignment_group=network, assignee=bert)
    major = make("Checkout down for everyone", major=True)
    child = make("Cannot pay in the shop")
    services.incident_update(incident_id=child.id, actor=agent, parent=major)
    done = in_progress(make("Already resolved", assignment_group=service_desk), agent)
    services.incident_resolve(incident_id=done.id, actor=agent, resolution_code="fixed", resolution_notes="ok")
    old_major = make("Last month's outage", major=True)
    services.incident_cancel(incident_id=old_major.id, actor=agent, reason="duplicate")
    return {k: v.number for k, v in locals().items() if isinstance(v, Incident)}


@pytest.mark.parametrize("key, expected", [
    ("mine", {"mine", "held"}),
    ("team", {"team"}),
    ("unassigned", {"team", "other_team", "major", "child"}),
    ("all", {"mine", "held", "team", "other_team", "berts", "major", "child"}),
    ("hold", {"held"}),
    ("major", {"major", "old_major"}),
    ("recent", {"mine", "held", "team", "other_team", "berts", "major", "child", "done", "old_major"}),
])
def test_each_queue_shows_exactly_its_incidents(agent_client, world, key, expected):
    listed = rows(agent_client.get(f"/agent/queue/{key}/"))
    assert set(listed) == {world[name] for name in expected}
    assert len(listed) == len(set(listed))


def test_the_major_queue_lists_open_majors_first_with_their_linked_count(agent_client, world):
    response = agent_client.get("/agent/queue/major/?sort=-updated_at")
    assert rows(response) == [world["major"], world["old_major"]]
    page = response.content.decode()
    assert re.search(r'data-testid="children-count">.*?1 linked</span>', page, re.S)


def test_the_sidebar_counts_each_queue(agent_client, world):
    page = agent_client.get("/agent/").content.decode()
    # Each link's own count only: the match stops at the link's end (other sections' counts follow "recent").
    counts = dict(re.findall(r'data-testid="nav-queue-(\w+)"(?:(?!</a>).)*?data-testid="nav-count">(\d+)<', page, re.S))
    # "major" counts the open ones (the queue also shows closed majors below them); "recent" (every status)
    # has no count: counting the whole history on every page would cost O(history). Every incident here is P5,
    # first response due in two business days: none breaching soon.
    assert counts == {"mine": "2", "team": "1", "unassigned": "4", "all": "7", "hold": "1", "major": "1",
                      "breaching": "0"}


def test_all_queue_counts_come_from_one_aggregate_query(world, agent, django_assert_num_queries):
    from incidents.workspace import queue_counts

    agent.groups.all()  # the role lookup is cached per request; keep it out of the count
    with django_assert_num_queries(1):
        counts = queue_counts(agent)
    assert counts["critical"] == 0 and counts["all"] == 7 and "recent" not in counts


def test_an_unknown_queue_is_not_found(agent_client):
    assert agent_client.get("/agent/queue/everything/").status_code == 404


def test_queues_sort_by_whitelisted_columns_only(agent_client, make):
    low = make("Low", impact=3, urgency=3)
    high = make("High", impact=1, urgency=1)
    mid = make("Mid", impact=2, urgency=2)
    assert rows(agent_client.get("/agent/queue/all/")) == [high.number, mid.number, low.number]
    assert rows(agent_client.get("/agent/queue/all/?sort=-priority")) == [low.number, mid.number, high.number]
    assert rows(agent_client.get("/agent/queue/all/?sort=number")) == [low.number, high.number, mid.number]
    assert rows(agent_client.get("/agent/queue/all/?sort=-created_at")) == [mid.number, high.number, low.number]
    # Anything off the whitelist falls back to the default instead of reaching order_by().
    for evil in ("requester__password", "--priority", "id;drop", "-requester__password"):
        assert rows(agent_client.get(f"/agent/queue/all/?sort={evil}")) == [high.number, mid.number, low.number]


def test_queues_filter_by_status_priority_group_assignee_service_and_words(
        agent_client, make, agent, service_desk, network):
    vpn = Service.objects.create(name="VPN", owner_team=network)
    a = make("VPN drops every ten minutes", service=vpn, impact=1, urgency=1)
    b = in_progress(make("Printer jams", assignment_group=service_desk), agent)
    c = make("Monitor flickers", assignment_group=service_desk)

    def listed(**params):
        return set(rows(agent_client.get("/agent/queue/all/?" + urlencode(params, doseq=True))))

    assert listed(status="in_progress") == {b.number}
    assert listed(priority=1) == {a.number}
    assert listed(priority=[1, 5]) == {a.number, b.number, c.number}
    assert listed(priority=[2, 3]) == set()
    assert listed(assignment_group=service_desk.id) == {b.number, c.number}
    assert listed(assignee="unassigned") == {a.number, c.number}
    assert listed(assignee=agent.username) == {b.number}
    assert listed(service=vpn.id) == {a.number}
    assert listed(q="flickers") == {c.number}


def test_empty_filter_values_mean_no_filter(agent_client, make):
    a, b = make("One"), make("Two")
    response = agent_client.get("/agent/queue/all/?q=&status=&priority=&assignment_group=&assignee=&service=")
    assert set(rows(response)) == {a.number, b.number}
    assert "Ignored:" not in response.content.decode()
    response = agent_client.get("/agent/queue/all/?priority=9")
    assert "Ignored: priority (Select a valid choice. 9 is not one of the available choices.)" in (
        response.content.decode())


@pytest.mark.parametrize("per_page, shown", [(25, 25), (50, 30), (100, 30), (7, 25)])
def test_queues_page_25_50_or_100_rows(agent_client, make, per_page, shown):
    for n in range(30):
        make(f"Incident {n}")
    response = agent_client.get(f"/agent/queue/all/?per_page={per_page}")
    assert len(rows(response)) == shown


def bulk_incidents(count: int, requesters, teams, agents_, services_):
    """`count` open incidents with varied related rows, inserted in one statement (fast, for query counts)."""
    from servicedesk.numbering import number_block

    numbers = number_block(Incident.NUMBER_PREFIX, count)
    Incident.objects.bulk_create([
        Incident(number=n, title=f"Incident {i}", requester=requesters[i % len(requesters)],
                 service=services_[i % len(services_)], assignment_group=teams[i % len(teams)],
                 assignee=agents_[i % len(agents_)] if i % 3 else None, status=Status.IN_PROGRESS,
                 priority=1 + i % 5, major=i % 10 == 0)
        for i, n in enumerate(numbers)
    ])
    parents = list(Incident.objects.filter(number__in=numbers, major=True))
    for i, child in enumerate(Incident.objects.filter(number__in=numbers, major=False)[:count // 4]):
        Incident.objects.filter(id=child.id).update(parent=parents[i % len(parents)])
    return numbers


def bulk_clocks(numbers):
    """First response and resolution clocks for bulk-made incidents, on the 24x7 calendar: running (some late,
    one breached by the sweep) or paused; `sla_due_at` kept as the services would. Inserted in one statement."""
    from datetime import timedelta

    from django.utils import timezone

    from sla.clocks import clock_calendar
    from sla.models import BusinessCalendar, SlaClock

    always = BusinessCalendar.objects.get(name="24x7")
    clock_calendar(always)  # built once per process; a warm copy costs no query, as in a running server
    now = timezone.now()
    clocks = []
    for i, incident in enumerate(Incident.objects.filter(number__in=numbers).order_by("id")):
        start = now - timedelta(minutes=10 + 7 * i)
        paused = i % 4 == 3
        for kind, target in (("first_response", 1800), ("resolution", 4 * 3600)):
            clocks.append(SlaClock(
                ticket_type="incident", ticket_id=incident.id, kind=kind, calendar=always, priority=incident.priority,
                target_seconds=target, started_at=start, state="paused" if paused else "running",
                running_since=None if paused else start, elapsed_seconds=600 if paused else 0,
                due_at=None if paused else start + timedelta(seconds=target),
                breached_at=now if i % 5 == 1 and kind == "first_response" else None,
                segments=[{"state": "running", "from": start.isoformat(), "to": None, "seconds": None,
                           "reason": "Incident raised"}]))
        if not paused:
            Incident.objects.filter(id=incident.id).update(sla_due_at=start + timedelta(seconds=1800))
    SlaClock.objects.bulk_create(clocks)


# user, role (the session comes from the cache); sidebar counts, which the suite counts on every page (in
# production they are kept 30 s: servicedesk.sidebar): the desk's and the person's for incidents, service
# requests and problems, the alerts, pending approvals and saved views; four pick lists (teams, agents, services,
# resolution codes); the page's capped count and the page itself; one look-up each for the page's requesters,
# assignees, groups and services (prefetched by id); the page's SLA clocks. Whatever the number of rows.
QUEUE_QUERY_BOUND = 23


@pytest.mark.parametrize("count", [10, 100])
def test_the_queue_runs_a_constant_number_of_queries(
        agent_client, make_user, agent, bert, service_desk, network, count, django_assert_max_num_queries):
    requesters = [make_user("requester", username=f"req{i}", first_name=f"R{i}") for i in range(4)]
    services_ = [Service.objects.create(name=f"Service {i}") for i in range(3)]
    numbers = bulk_incidents(count, requesters, [service_desk, network], [agent, bert], services_)
    bulk_clocks(numbers)

    for queue in ("all", "breaching"):
        with django_assert_max_num_queries(QUEUE_QUERY_BOUND):
            response = agent_client.get(f"/agent/queue/{queue}/?per_page=100")
        assert set(rows(response)) == set(numbers) if queue == "all" else set(rows(response)) <= set(numbers)
    with django_assert_max_num_queries(QUEUE_QUERY_BOUND):
        response = agent_client.get("/agent/queue/all/?per_page=100&sort=sla")
    page = response.content.decode()
    assert set(rows(response)) == set(numbers)
    assert "linked</span>" in page
    assert page.count('data-testid="sla-due"') == count  # every row shows its clock
    assert 'data-tone="breached"' in page and 'data-tone="paused"' in page and "late " in page


# --- search ---------------------------------------------------------------------------------------


def test_searching_a_number_opens_that_incident(agent_client, make):
    incident = make()
    digits = incident.number.removeprefix("INC").lstrip("0")
    for query in (incident.number, incident.number.lower(), digits):
        response = agent_client.get("/agent/search/", {"q": query})
        assert response.status_code == 302
        assert response["Location"] == f"/agent/incidents/{incident.number}/"


def test_searching_a_number_that_does_not_exist_lists_nothing(agent_client, make):
    make()
    response = agent_client.get("/agent/search/", {"q": "INC9999999"})
    assert rows(response) == []
    assert "Nothing matches" in response.content.decode()


def test_search_finds_a_word_from_an_internal_note_for_agents(agent_client, make, agent, requester, client):
    incident = make("VPN drops")
    make("Printer jams")
    services.incident_comment_add(incident=incident, author=agent, body="Concentrator renegotiates every 600 s",
                                  internal=True)
    response = agent_client.get("/agent/search/", {"q": "concentrator"})
    assert rows(response) == [incident.number]
    assert "Results for “concentrator”" in response.content.decode()


def test_search_lists_every_status(agent_client, make, agent):
    done = in_progress(make("Keyboard missing a key"), agent)
    services.incident_resolve(incident_id=done.id, actor=agent, resolution_code="fixed", resolution_notes="new one")
    assert rows(agent_client.get("/agent/search/", {"q": "keyboard"})) == [done.number]


# --- saved views ----------------------------------------------------------------------------------


def test_a_saved_view_keeps_the_filters_and_belongs_to_its_owner(agent_client, make, agent, bert, client):
    high = make("High", impact=1, urgency=1)
    make("Low")
    response = agent_client.post("/agent/views/", {"name": "Hot ones", "queue": "all",
                                                   "query": "priority=1&sort=-updated_at&page=3&cursor=abc&q=&status="})
    view = SavedView.objects.get(owner=agent)
    assert response.status_code == 302
    assert response["Location"] == f"/agent/views/{view.id}/"
    assert sorted(view.query.split("&")) == ["priority=1", "queue=all", "sort=-updated_at"]
    page = agent_client.get(f"/agent/views/{view.id}/")
    assert rows(page) == [high.number]
    assert f'href="/agent/views/{view.id}/" aria-current="page"' in page.content.decode()

    client.force_login(bert)
    assert client.get(f"/agent/views/{view.id}/").status_code == 404
    assert client.post(f"/agent/views/{view.id}/delete/").status_code == 404
    assert "Hot ones" not in client.get("/agent/").content.decode()
    assert SavedView.objects.filter(id=view.id).exists()


def test_a_second_view_with_the_same_name_is_a_form_error(agent_client, agent):
    SavedView.objects.create(owner=agent, name="My VPN", query="queue=all&q=vpn")
    response = agent_client.post("/agent/views/", {"name": "my  vpn", "queue": "mine", "query": "status=new"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "You already have a view called “my vpn”" in page
    assert 'data-testid="save-view" open' in page
    assert SavedView.objects.filter(owner=agent).count() == 1


def test_another_agent_may_reuse_a_view_name(client, agent, bert):
    SavedView.objects.create(owner=agent, name="Mine", query="queue=mine")
    client.force_login(bert)
    assert client.post("/agent/views/", {"name": "Mine", "queue": "mine"}).status_code == 302
    assert SavedView.objects.filter(name="Mine").count() == 2


def test_deleting_a_saved_view(agent_client, agent):
    view = SavedView.objects.create(owner=agent, name="Old", query="queue=hold")
    response = agent_client.post(f"/agent/views/{view.id}/delete/")
    assert response.status_code == 302 and response["Location"] == "/agent/queue/hold/"
    assert not SavedView.objects.filter(id=view.id).exists()


# --- bulk actions ---------------------------------------------------------------------------------


def test_bulk_assigns_several_incidents_to_me(agent_client, make, agent):
    incidents = [make(f"Incident {n}") for n in range(3)]
    response = agent_client.post("/agent/bulk/", {"numbers": [i.number for i in incidents],
                                                  "action": "assign_me", "next": "/agent/queue/unassigned/"})
    assert response.status_code == 302 and response["Location"] == "/agent/queue/unassigned/"
    assert texts(response) == ["3 updated (assign to me)."]
    for incident in incidents:
        incident.refresh_from_db()
        assert (incident.assignee, incident.status) == (agent, Status.IN_PROGRESS)


def test_a_bulk_failure_is_reported_by_number_while_the_others_succeed(agent_client, make, agent):
    working = [in_progress(make(f"Working {n}"), agent) for n in range(2)]
    fresh = make("Fresh")
    response = agent_client.post("/agent/bulk/", {
        "numbers": [i.number for i in [*working, fresh]], "action": "hold", "hold_reason": "awaiting_vendor",
    })
    assert texts(response) == [
        "2 updated (put on hold).",
        f"{fresh.number}: an incident that is new cannot become on hold (allowed: cancelled, in_progress, resolved)",
    ]
    assert [Incident.objects.get(id=i.id).status for i in working] == [Status.ON_HOLD] * 2
    assert Incident.objects.get(id=fresh.id).status == Status.NEW


def test_bulk_resolve_needs_a_code_and_notes_before_touching_anything(agent_client, make, agent):
    incident = in_progress(make(), agent)
    response = agent_client.post("/agent/bulk/", {"numbers": [incident.number], "action": "resolve"})
    [message] = texts(response)
    assert "resolution_code: choose a resolution code" in message
    assert "resolution_notes: say what was done" in message
    assert Incident.objects.get(id=incident.id).status == Status.IN_PROGRESS


@pytest.mark.parametrize("action, extra, check", [
    ("resolve", {"resolution_code": "fixed", "resolution_notes": "Rebooted"}, lambda i: i.status == "resolved"),
    ("cancel", {"reason": "Raised twice"}, lambda i: i.status == "cancelled"),
    ("note", {"body": "Looks like the same root cause"}, lambda i: i.timeline.filter(kind="note").exists()),
    ("comment", {"body": "We are on it"}, lambda i: i.timeline.filter(kind="comment").exists()),
])
def test_bulk_runs_each_action_through_the_services(agent_client, make, agent, action, extra, check):
    incidents = [in_progress(make(f"Incident {n}"), agent) for n in range(2)]
    response = agent_client.post("/agent/bulk/", {"numbers": [i.number for i in incidents], "action": action,
                                                  **extra})
    assert texts(response)[0].startswith("2 updated")
    assert all(check(Incident.objects.get(id=i.id)) for i in incidents)


def test_bulk_assigns_to_a_group_and_an_agent(agent_client, make, bert, network):
    incident = make()
    agent_client.post("/agent/bulk/", {"numbers": [incident.number], "action": "assign", "assignee": "bert",
                                       "assignment_group": network.id})
    incident.refresh_from_db()
    assert (incident.assignment_group, incident.assignee) == (network, bert)


def test_bulk_never_redirects_off_site(agent_client, make):
    incident = make()
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = agent_client.post("/agent/bulk/", {"numbers": [incident.number], "action": "assign_me",
                                                      "next": target})
        assert response["Location"] == "/agent/"


# --- the incident page: in-place edit -------------------------------------------------------------


def test_an_in_place_edit_with_a_stale_version_shows_the_conflict_and_changes_nothing(
        agent_client, make, bert, agent):
    incident = make(urgency=3)
    read_version = incident.version
    services.incident_update(incident_id=incident.id, actor=bert, version=read_version, title="Printer jams")

    response = agent_client.post(f"/agent/incidents/{incident.number}/edit/",
                                 {"field": "urgency", "value": "1", "version": read_version}, **HTMX)
    assert response.status_code == 409
    assert response["HX-Reswap"] == "none"
    page = response.content.decode()
    assert f"{incident.number} was changed by Bert Byte at" in page
    assert "reload it and apply your change again" in page
    assert f'href="/agent/incidents/{incident.number}/" data-testid="reload-link"' in page
    fresh = Incident.objects.get(id=incident.id)
    assert (fresh.urgency, fresh.title, fresh.version) == (3, "Printer jams", read_version + 1)

    # Without JavaScript: the whole page again, with the same message and nothing overwritten.
    response = agent_client.post(f"/agent/incidents/{incident.number}/edit/",
                                 {"field": "urgency", "value": "1", "version": read_version})
    assert response.status_code == 409
    assert "was changed by Bert Byte" in response.content.decode()
    assert Incident.objects.get(id=incident.id).urgency == 3


def test_editing_impact_recomputes_the_priority(agent_client, make):
    incident = make(impact=3, urgency=3)
    assert incident.priority == 5
    response = agent_client.post(f"/agent/incidents/{incident.number}/edit/",
                                 {"field": "impact", "value": "1", "version": incident.version}, **HTMX)
    assert response.status_code == 200
    incident.refresh_from_db()
    assert (incident.impact, incident.priority) == (1, 3)
    page = response.content.decode()
    assert 'id="incident-side"' in page  # the swap target
    assert 'id="incident-header" data-testid="incident-header" hx-swap-oob="true"' in page
    assert 'data-testid="incident-priority">P3<' in page
    assert "Impact saved. Priority is now P3 (was P5)." in page
    # Every form the page keeps now carries the new version.
    assert f'name="version" value="{incident.version}"' in page
    assert f'name="version" value="{incident.version - 1}"' not in page


def test_an_edit_without_javascript_redirects_back_with_a_message(agent_client, make):
    incident = make()
    response = agent_client.post(f"/agent/incidents/{incident.number}/edit/",
                                 {"field": "title", "value": "Printer on floor 3 jams", "version": incident.version})
    assert response.status_code == 302 and response["Location"] == f"/agent/incidents/{incident.number}/"
    assert texts(response) == ["Title saved."]
    assert Incident.objects.get(id=incident.id).title == "Printer on floor 3 jams"


def test_the_edit_link_opens_a_small_form_with_and_without_javascript(agent_client, make):
    incident = make()
    url = f"/agent/incidents/{incident.number}/edit/?field=urgency&version={incident.version}"
    partial = agent_client.get(url, **HTMX)
    assert partial.status_code == 200
    body = partial.content.decode()
    assert 'data-testid="edit-form-urgency"' in body and "<html" not in body
    assert 'name="version" value="1"' in body

    redirect = agent_client.get(url)
    assert redirect.status_code == 302
    assert redirect["Location"] == f"/agent/incidents/{incident.number}/?edit=urgency#fact-urgency"
    page = agent_client.get(f"/agent/incidents/{incident.number}/?edit=urgency").content.decode()
    assert 'data-testid="edit-form-urgency"' in page


def test_the_edit_form_keeps_the_version_the_page_was_drawn_from(agent_client, make, bert):
    incident = make()
    services.incident_update(incident_id=incident.id, actor=bert, title="Changed meanwhile")
    body = agent_client.get(f"/agent/incidents/{incident.number}/edit/?field=urgency&version=1", **HTMX)
    assert 'name="version" value="1"' in body.content.decode()


def test_assignment_edits_go_through_incident_assign(agent_client, make, agent, service_desk):
    incident = make(assignment_group=service_desk)
    response = agent_client.post(f"/agent/incidents/{incident.number}/edit/",
                                 {"field": "assignee", "value": agent.username, "version": incident.version})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.assignee, incident.status) == (agent, Status.IN_PROGRESS)  # assigning starts it


def test_an_assignee_outside_the_group_is_refused_naming_the_field(agent_client, make, bert, service_desk):
    incident = make(assignment_group=service_desk)
    response = agent_client.post(f"/agent/incidents/{incident.number}/edit/",
                                 {"field": "assignee", "value": bert.username, "version": incident.version}, **HTMX)
    # bert is not offered for a Service Desk incident: the form itself refuses him.
    assert response.status_code == 400
    assert "Assignee: Select a valid choice." in response.content.decode()
    assert Incident.objects.get(id=incident.id).assignee is None


def test_an_unknown_field_cannot_be_edited(agent_client, make):
    incident = make()
    response = agent_client.post(f"/agent/incidents/{incident.number}/edit/",
                                 {"field": "status", "value": "closed", "version": incident.version})
    assert response.status_code == 400
    assert Incident.objects.get(id=incident.id).status == Status.NEW


# --- the incident page: lifecycle ---------------------------------------------------------------


def incident_in(status, make, agent):
    incident = make()
    if status == Status.NEW:
        return incident
    incident = in_progress(incident, agent)
    if status == Status.ON_HOLD:
        return services.incident_hold(incident_id=incident.id, actor=agent, hold_reason="awaiting_caller")
    if status in (Status.RESOLVED, Status.CLOSED):
        incident = services.incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed",
                                             resolution_notes="Done")
    if status == Status.CLOSED:
        return services.incident_close(incident_id=incident.id, actor=agent)
    if status == Status.CANCELLED:
        return services.incident_cancel(incident_id=incident.id, actor=agent)
    return incident


@pytest.mark.parametrize("status", Status.values)
def test_the_buttons_offered_are_the_moves_allowed_from_the_status(agent_client, make, agent, status):
    incident = incident_in(status, make, agent)
    assert incident.status == status
    page = agent_client.get(f"/agent/incidents/{incident.number}/").content.decode()
    offered = set(re.findall(r'data-testid="action-\w+" data-to="(\w+)"', page))
    assert offered == {str(s) for s in ALLOWED[status]}


def test_a_new_incident_offers_assign_to_me_and_someone_elses_offers_take_over(agent_client, make, agent, bert,
                                                                               network):
    page = agent_client.get(f"/agent/incidents/{make().number}/").content.decode()
    assert 'data-testid="action-assign_me" data-to="in_progress"' in page
    held_by_bert = make(assignment_group=network, assignee=bert)
    services.incident_transition(incident_id=held_by_bert.id, to="in_progress", actor=bert)
    page = agent_client.get(f"/agent/incidents/{held_by_bert.number}/").content.decode()
    assert 'data-testid="action-assign_me">' in page  # not a move of the lifecycle: no data-to


def transition(client, incident, **data):
    return client.post(f"/agent/incidents/{incident.number}/transition/", {"version": incident.version, **data})


def test_holding_needs_a_reason_and_the_message_names_hold_reason(agent_client, make, agent):
    incident = in_progress(make(), agent)
    response = transition(agent_client, incident, to="on_hold", reason="Vendor ticket 4711")
    assert response.status_code == 400
    page = response.content.decode()
    assert "hold_reason: give one of awaiting_caller, awaiting_vendor, awaiting_change" in page
    assert 'data-testid="action-hold" data-to="on_hold" open' in page  # the form stays open
    assert "Vendor ticket 4711" in page  # with what was typed
    assert Incident.objects.get(id=incident.id).status == Status.IN_PROGRESS

    response = transition(agent_client, incident, to="on_hold", hold_reason="awaiting_vendor")
    assert response.status_code == 302
    assert texts(response) == [f"{incident.number} is on hold (awaiting vendor)."]


def test_resolving_needs_a_code_and_notes(agent_client, make, agent):
    incident = in_progress(make(), agent)
    response = transition(agent_client, incident, to="resolved")
    assert response.status_code == 400
    page = response.content.decode()
    assert "resolution_code: give one of" in page and "resolution_notes: say what was done" in page
    response = transition(agent_client, incident, to="resolved", resolution_code="fixed",
                          resolution_notes="Replaced the fuser")
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.status, incident.resolution_code, incident.resolution_notes) == (
        Status.RESOLVED, "fixed", "Replaced the fuser")


def test_reopening_needs_a_reason(agent_client, make, agent):
    incident = incident_in(Status.RESOLVED, make, agent)
    assert "reason: say why the incident is reopened" in transition(
        agent_client, incident, to="in_progress").content.decode()
    assert transition(agent_client, incident, to="in_progress", reason="Still jams").status_code == 302
    assert Incident.objects.get(id=incident.id).reopen_count == 1


def test_an_illegal_transition_is_refused(agent_client, make):
    incident = make()
    response = transition(agent_client, incident, to="closed")
    assert response.status_code == 409
    assert "an incident that is new cannot become closed" in response.content.decode()
    assert Incident.objects.get(id=incident.id).status == Status.NEW


def test_a_transition_with_a_stale_version_is_refused(agent_client, make, agent, bert):
    incident = in_progress(make(), agent)
    stale = incident.version
    services.incident_update(incident_id=incident.id, actor=bert, urgency=1)
    response = agent_client.post(f"/agent/incidents/{incident.number}/transition/",
                                 {"to": "cancelled", "version": stale})
    assert response.status_code == 409
    assert "was changed by Bert Byte" in response.content.decode()
    assert Incident.objects.get(id=incident.id).status == Status.IN_PROGRESS


# --- the incident page: related, canned ---------------------------------------------------------


def test_linking_a_parent_shows_it_on_both_sides(agent_client, make, agent):
    major = make("Checkout down", major=True)
    child = make("Cannot pay")
    response = agent_client.post(f"/agent/incidents/{child.number}/parent/",
                                 {"parent": major.number.lower(), "version": child.version})
    assert texts(response) == [f"Linked to {major.number} as its parent."]
    child_page = agent_client.get(f"/agent/incidents/{child.number}/").content.decode()
    assert f'href="/agent/incidents/{major.number}/" data-testid="parent-link"' in child_page
    parent_page = agent_client.get(f"/agent/incidents/{major.number}/").content.decode()
    assert re.search(r'data-testid="major-banner">.*Major incident.*1 linked incident<', parent_page, re.S)
    assert child.number in parent_page

    response = agent_client.post(f"/agent/incidents/{child.number}/parent/",
                                 {"parent": "", "version": child.version + 1})
    assert texts(response) == ["Unlinked from its parent incident."]
    assert Incident.objects.get(id=child.id).parent is None


def test_linking_to_itself_or_a_missing_incident_is_refused(agent_client, make):
    incident = make()
    response = agent_client.post(f"/agent/incidents/{incident.number}/parent/",
                                 {"parent": incident.number, "version": incident.version})
    assert texts(response) == ["parent: an incident cannot be its own parent"]
    agent_client.get("/agent/")  # shows (and so clears) the first message
    response = agent_client.post(f"/agent/incidents/{incident.number}/parent/",
                                 {"parent": "INC0999999", "version": incident.version})
    assert texts(response) == ["parent: there is no incident INC0999999"]


def test_a_canned_response_is_filled_in_for_the_incident(agent_client, make, agent, network):
    incident = make()
    mine = CannedResponse.objects.create(title="Looking", body="Hi {requester_first_name}, {agent_name} here "
                                                               "about {number}.")
    theirs = CannedResponse.objects.create(title="Network only", body="x", team=network)
    retired = CannedResponse.objects.create(title="Old", body="x", active=False)
    response = agent_client.get(f"/agent/incidents/{incident.number}/canned/{mine.id}/")
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == f"Hi Alice, Agnes Agent here about {incident.number}."
    for other in (theirs, retired):
        assert agent_client.get(f"/agent/incidents/{incident.number}/canned/{other.id}/").status_code == 404
    page = agent_client.get(f"/agent/incidents/{incident.number}/").content.decode()
    assert "Looking" in page and "Network only" not in page
    # Without JavaScript the picker reloads the page with the text in the reply box.
    page = agent_client.get(f"/agent/incidents/{incident.number}/?canned={mine.id}").content.decode()
    assert f"Hi Alice, Agnes Agent here about {incident.number}.</textarea>" in page


def test_internal_notes_are_visibly_apart_in_the_timeline(agent_client, make, agent):
    incident = make()
    services.incident_comment_add(incident=incident, author=agent, body="Only for us", internal=True)
    page = agent_client.get(f"/agent/incidents/{incident.number}/").content.decode()
    assert re.search(r'class="tl tl-note" data-testid="timeline-entry" data-kind="note" data-internal="true"', page)


# --- access ---------------------------------------------------------------------------------------


def agent_urls(incident, view, canned):
    n = incident.number
    return [
        ("get", "/agent/"),
        ("get", "/agent/queue/mine/"),
        ("get", "/agent/queue/unassigned/"),
        ("get", "/agent/search/?q=printer"),
        ("post", "/agent/views/"),
        ("get", f"/agent/views/{view.id}/"),
        ("post", f"/agent/views/{view.id}/delete/"),
        ("post", "/agent/bulk/"),
        ("get", f"/agent/incidents/{n}/"),
        ("get", f"/agent/incidents/{n}/edit/?field=urgency"),
        ("post", f"/agent/incidents/{n}/edit/"),
        ("post", f"/agent/incidents/{n}/transition/"),
        ("post", f"/agent/incidents/{n}/parent/"),
        ("get", f"/agent/incidents/{n}/canned/{canned.id}/"),
    ]


@pytest.fixture
def targets(make, agent, requester):
    incident = make(requester=requester)
    view = SavedView.objects.create(owner=agent, name="Mine", query="queue=mine")
    canned = CannedResponse.objects.create(title="Hi", body="Hello {requester_first_name}")
    return agent_urls(incident, view, canned)


def test_requesters_get_403_on_every_agent_url(client, requester, targets):
    client.force_login(requester)
    for method, url in targets:
        response = getattr(client, method)(url, {"numbers": ["INC0000001"], "action": "close"} if method == "post"
                                           else None)
        assert response.status_code == 403, (method, url, response.status_code)
    assert SavedView.objects.count() == 1


def test_anonymous_visitors_are_sent_to_sign_in(client, targets):
    for method, url in targets:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), (method, url)
