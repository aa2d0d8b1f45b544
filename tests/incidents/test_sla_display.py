"""What people see of an incident's SLA clocks: the API's `sla` field, the queues' "SLA due" column and
sort, the "Breaching soon" queue, and the SLA panel of the incident page."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from incidents import services, workspace
from incidents.models import Incident
from servicedesk.models import Team
from sla.models import BusinessCalendar, OlaTarget, SlaPolicy, SlaTarget
from sla.sweep import sla_sweep

pytestmark = pytest.mark.django_db

ROW = re.compile(r'data-testid="incident-row" data-number="(INC\d+)"')
SLACK = 5  # seconds the test may take between the services' instants and the response's `now`


def rows(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return ROW.findall(response.content.decode())


@pytest.fixture
def desk(agent):
    return Team.objects.get(name="Service Desk")


@pytest.fixture
def round_the_clock(desk):
    """The only incident policy: 24x7 (so the figures do not depend on the hour the test runs), first response
    45 min, resolution 4 h; the Service Desk's OLA is 2 h."""
    always = BusinessCalendar.objects.create(name="Always (test)", timezone="UTC", is_24x7=True)
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Round the clock", order=1, calendar=always)
    SlaTarget.objects.bulk_create([SlaTarget(policy=policy, priority=p, first_response_minutes=45,
                                             resolution_minutes=240) for p in range(1, 6)])
    OlaTarget.objects.bulk_create([OlaTarget(team=desk, priority=p, minutes=120, calendar=always)
                                   for p in range(1, 6)])
    return policy


@pytest.fixture
def held_and_resumed(round_the_clock, incident_factory, agent, desk):
    """Raised 90 minutes ago and started, on hold awaiting the caller from 60 to 30 minutes ago, running since:
    60 minutes have counted."""
    now = timezone.now()
    incident = incident_factory(title="VPN drops every ten minutes", assignment_group=desk,
                                now=now - timedelta(minutes=90))
    services.incident_transition(incident_id=incident.id, to="in_progress", actor=agent,
                                 now=now - timedelta(minutes=90))
    services.incident_transition(incident_id=incident.id, to="on_hold", hold_reason="awaiting_caller", actor=agent,
                                 reason="Which office are you in?", now=now - timedelta(minutes=60))
    services.incident_transition(incident_id=incident.id, to="in_progress", actor=agent,
                                 now=now - timedelta(minutes=30))
    return incident


def near(value, expected):
    return abs(value - expected) <= SLACK


# --- API ------------------------------------------------------------------------------------------


def test_agents_read_every_clock_with_state_due_time_and_business_seconds_left(client_for, agent, held_and_resumed):
    body = client_for(agent).get(f"/api/v1/incidents/{held_and_resumed.number}/").json()
    clocks = {c["kind"]: c for c in body["sla"]}
    assert list(clocks) == ["first_response", "resolution", "ola"]
    first, resolution, ola = clocks["first_response"], clocks["resolution"], clocks["ola"]
    assert near(first["remaining_seconds"], 45 * 60 - 60 * 60)  # 15 minutes late
    assert first["state"] == "running" and first["breached"] is False  # the sweep has not run yet
    assert near(resolution["remaining_seconds"], 180 * 60) and near(resolution["elapsed_seconds"], 60 * 60)
    assert resolution["target_seconds"] == 4 * 3600 and resolution["policy"] == "Round the clock"
    assert resolution["due_at"] is not None and resolution["team"] == "Service Desk"
    assert near(ola["remaining_seconds"], 60 * 60) and ola["team"] == "Service Desk" and ola["policy"] is None

    sla_sweep()
    first = client_for(agent).get(f"/api/v1/incidents/{held_and_resumed.number}/").json()["sla"][0]
    assert (first["kind"], first["state"], first["breached"]) == ("first_response", "running", True)


def test_a_paused_clock_has_no_due_time_and_keeps_what_was_left(client_for, agent, round_the_clock,
                                                              incident_factory):
    now = timezone.now()
    incident = incident_factory(now=now - timedelta(minutes=90))
    services.incident_transition(incident_id=incident.id, to="in_progress", actor=agent, now=now - timedelta(minutes=90))
    services.incident_transition(incident_id=incident.id, to="on_hold", hold_reason="awaiting_caller", actor=agent,
                                 now=now - timedelta(minutes=60))
    resolution = client_for(agent).get(f"/api/v1/incidents/{incident.number}/").json()["sla"][1]
    assert resolution == {"kind": "resolution", "state": "paused", "due_at": None, "breached": False,
                          "remaining_seconds": 210 * 60, "elapsed_seconds": 30 * 60, "target_seconds": 4 * 3600,
                          "policy": "Round the clock", "team": None}


def test_requesters_see_their_sla_clocks_but_never_an_ola_nor_the_policy(client_for, requester, held_and_resumed):
    api = client_for(requester)
    for body in (api.get(f"/api/v1/incidents/{held_and_resumed.number}/").json(),
                 api.get("/api/v1/incidents/").json()["results"][0]):
        assert [c["kind"] for c in body["sla"]] == ["first_response", "resolution"]
        assert {(c["policy"], c["team"]) for c in body["sla"]} == {(None, None)}
        assert near(body["sla"][1]["remaining_seconds"], 180 * 60)
    assert "Service Desk" not in str(api.get(f"/api/v1/incidents/{held_and_resumed.number}/").json()["sla"])


@pytest.mark.parametrize("size", [5, 40])
def test_the_list_fetches_the_clocks_of_the_whole_page_in_one_query(client_for, agent, round_the_clock, desk,
                                                                    incident_factory, size,
                                                                    django_assert_num_queries):
    for n in range(size):
        incident_factory(title=f"Slow ERP #{n}", assignment_group=desk)
    api = client_for(agent)
    api.get("/api/v1/incidents/?page_size=1")  # the token's first use writes its last-used time; not counted
    # the token (two), the page, the requesters and the groups it names (no assignees, services, CIs or
    # categories here), and one query for every clock of the page: the same at both sizes. The role is kept in
    # the cache since the first request (servicedesk.roles).
    with django_assert_num_queries(6):
        response = api.get(f"/api/v1/incidents/?page_size={size}")
    results = response.json()["results"]
    assert len(results) == size
    assert all([c["kind"] for c in r["sla"]] == ["first_response", "resolution", "ola"] for r in results)


def test_the_schema_documents_the_sla_clocks(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    sla = schema["components"]["schemas"]["Incident"]["properties"]["sla"]
    assert sla["type"] == "array" and sla["readOnly"] is True
    assert sla["items"] == {"$ref": "#/components/schemas/SlaClock"}
    clock = schema["components"]["schemas"]["SlaClock"]["properties"]
    assert {"kind", "state", "due_at", "breached", "remaining_seconds", "target_seconds", "policy"} <= set(clock)
    assert clock["due_at"]["nullable"] is True


# --- queues ---------------------------------------------------------------------------------------


@pytest.fixture
def due(incident_factory, agent):
    """Open incidents with their next SLA deadline set as named (None: no running clock), and a resolved one
    that was late."""
    now = timezone.now()
    made = {}
    for name, offset in (("later", timedelta(hours=2)), ("late", -timedelta(minutes=10)), ("none", None),
                         ("soon_a", timedelta(minutes=30)), ("soon_b", timedelta(minutes=30)),
                         ("edge", timedelta(minutes=59))):
        incident = incident_factory(title=f"Due {name}")
        Incident.objects.filter(id=incident.id).update(sla_due_at=now + offset if offset is not None else None)
        made[name] = incident.number
    done = incident_factory(title="Resolved late")
    services.incident_resolve(incident_id=done.id, actor=agent, resolution_code="fixed", resolution_notes="ok")
    Incident.objects.filter(id=done.id).update(sla_due_at=now - timedelta(hours=1))
    made["done"] = done.number
    return made


def test_sorting_by_sla_due_puts_the_next_deadline_first_and_incidents_without_one_last(agent_client, due):
    assert rows(agent_client.get("/agent/queue/all/?sort=sla")) == [
        due["late"], due["soon_a"], due["soon_b"], due["edge"], due["later"], due["none"]]
    # Reversed: the furthest deadline first, ties newest first, still no deadline last.
    assert rows(agent_client.get("/agent/queue/all/?sort=-sla")) == [
        due["later"], due["edge"], due["soon_b"], due["soon_a"], due["late"], due["none"]]


def test_breaching_soon_lists_open_incidents_due_within_the_hour_or_late_most_urgent_first(agent_client, due):
    assert rows(agent_client.get("/agent/queue/breaching/")) == [
        due["late"], due["soon_a"], due["soon_b"], due["edge"]]
    page = agent_client.get("/agent/").content.decode()
    assert re.search(r'data-testid="nav-queue-breaching".*?class="nav-count hot" data-testid="nav-count">4<', page,
                     re.S)


def test_the_breaching_window_is_one_hour_from_now(agent, due):
    now = timezone.now()
    qs = Incident.objects.filter(workspace.queue_condition(agent, "breaching", now))
    assert set(qs.values_list("number", flat=True)) == {due["late"], due["soon_a"], due["soon_b"], due["edge"]}
    later = Incident.objects.filter(workspace.queue_condition(agent, "breaching", now + timedelta(hours=1, minutes=5)))
    assert due["later"] in set(later.values_list("number", flat=True))
    assert workspace.queue_counts(agent, now)["breaching"] == 4


@pytest.mark.parametrize("key", ["breaching", "all", "mine"])
def test_open_queues_sorted_by_sla_due_read_the_partial_index(agent, due, key):
    qs = workspace.queue_queryset(agent, key, "sla")[:25]
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")  # the order must come from the index itself
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "incident_open_sla_due_idx" in plan, plan
    assert re.search(r"^\s*(->\s*)?Sort\b", plan, re.M) is None, plan


def test_the_queue_shows_the_most_urgent_clock_in_words_with_its_due_time(agent_client, held_and_resumed):
    page = agent_client.get("/agent/queue/all/").content.decode()
    cell = re.search(r'<span class="sla-due sla-(\w+)" data-testid="sla-due" data-tone="\w+"\s+title="([^"]+)">'
                     r'.*?</svg><time datetime="[^"]+">([^<]+)</time></span>', page, re.S)
    assert cell is not None, page
    tone, title, words = cell.groups()
    # The first response clock is 15 minutes late; resolution (3 h left) and the OLA are not shown.
    assert tone == "breached" and words.startswith("late 1") and title.startswith("First response due ")


def test_a_paused_incident_says_how_much_is_left(agent_client, round_the_clock, incident_factory, agent):
    now = timezone.now()
    incident = incident_factory(now=now - timedelta(minutes=20))
    services.incident_transition(incident_id=incident.id, to="in_progress", actor=agent, now=now - timedelta(minutes=20))
    services.incident_transition(incident_id=incident.id, to="on_hold", hold_reason="awaiting_caller", actor=agent,
                                 now=now - timedelta(minutes=10))
    page = agent_client.get("/agent/queue/hold/").content.decode()
    assert 'data-tone="paused"' in page and "paused · 35 min left" in page  # first response: 45 - 10 minutes


# --- the incident page ----------------------------------------------------------------------------


def test_the_incident_page_explains_each_clock_with_its_segments(agent_client, held_and_resumed):
    page = agent_client.get(f"/agent/incidents/{held_and_resumed.number}/").content.decode()
    panel = page[page.index('data-testid="sla-panel"'):page.index('data-testid="related"')]
    kinds = re.findall(r'data-testid="sla-clock" data-kind="(\w+)" data-state="(\w+)"', panel)
    assert kinds == [("first_response", "running"), ("resolution", "running"), ("ola", "running")]
    assert "Round the clock" in panel and "OLA · Service Desk" in panel
    assert re.search(r'data-testid="sla-remaining">late 1\d min<', panel)
    assert re.search(r'data-testid="sla-remaining">2 h 59 min|3 h<', panel)
    segments = re.findall(r'data-testid="sla-segment" data-state="(\w+)"', panel)
    assert segments == ["running", "paused", "running"] * 3
    assert panel.count(">On hold (awaiting caller)<") == 3
    assert re.search(r'class="seg-state">Paused</span><span class="seg-secs">30 min</span>', panel)


def test_the_portal_shows_no_sla_panel(client, requester, held_and_resumed):
    client.force_login(requester)
    page = client.get(f"/portal/incidents/{held_and_resumed.number}/").content.decode()
    assert held_and_resumed.number in page
    assert "sla-panel" not in page and "OLA" not in page
