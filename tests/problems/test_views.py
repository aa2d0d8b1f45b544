"""The problem pages of the agent workspace, the incident page's problem cards and the incident queue's
"Create problem" bulk action: permissions, constant queries, and every write through problems.services."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from incidents.states import Status as IncidentStatus
from problems import services
from problems.models import Problem, ProblemIncident
from problems.states import Status
from servicedesk.models import TimelineEntry

pytestmark = pytest.mark.django_db


def page(number):
    return reverse("agent:problem", kwargs={"number": number})


def reload(problem):
    return Problem.objects.get(id=problem.id)


@pytest.fixture
def requester_client(client, requester):
    client.force_login(requester)
    return client


def test_requesters_get_403_on_every_problem_page(requester_client, problem_factory, incident_factory):
    problem = problem_factory()
    incident = incident_factory()
    urls = [reverse("agent:problems"), reverse("agent:problem_queue", kwargs={"key": "known"}), page(problem.number),
            reverse("agent:problem_new"), reverse("agent:problem_measures"),
            reverse("agent:problem_incident_search", kwargs={"number": problem.number}) + "?q=vpn"]
    for url in urls:
        assert requester_client.get(url).status_code == 403, url
    posts = [reverse("agent:problem_update", kwargs={"number": problem.number}),
             reverse("agent:problem_from_incidents"),
             reverse("agent:problem_apply_workaround", kwargs={"number": incident.number,
                                                               "problem_number": problem.number})]
    for url in posts:
        assert requester_client.post(url, {"title": "x", "numbers": [incident.number]}).status_code == 403, url
    assert reload(problem).title == "VPN drops every hour"
    assert Problem.objects.count() == 1


def test_the_sidebar_shows_the_problem_queues_with_their_counts(agent_client, agent, problem_factory):
    problem_factory(assignee=agent)
    problem_factory(title="Mail bounces")
    html = agent_client.get(reverse("agent:problems")).content.decode()
    assert 'data-testid="nav-problems-open"' in html
    assert 'data-testid="nav-problems-measures"' in html
    counts = __import__("problems.workspace", fromlist=["queue_counts"]).queue_counts(agent)
    assert counts == {"open": 2, "mine": 1, "team": 0, "known": 0, "resolved": 0}


def test_a_queue_lists_its_problems_in_the_same_number_of_queries_whatever_their_number(
        agent_client, problem_factory, incident_factory):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            response = agent_client.get(reverse("agent:problem_queue", kwargs={"key": "open"}))
        assert response.status_code == 200
        return len(ctx), response.content.decode()

    problem_factory(incidents=[incident_factory()])
    few, _ = queries()
    for n in range(6):
        problem_factory(title=f"Problem {n}", incidents=[incident_factory(title=f"Broken {n}")])
    many, html = queries()
    assert many == few
    assert html.count('data-testid="problem-row"') == 7


def test_the_problem_page_shows_facts_analysis_linked_incidents_and_the_chart_data(
        agent_client, agent, problem_factory, incident_factory):
    incidents = [incident_factory(title="VPN dropped"), incident_factory(title="VPN dropped again")]
    problem = problem_factory(incidents=incidents)
    services.problem_update(problem_id=problem.id, actor=agent, root_cause="Keepalive timer too short",
                            analysis={"five_whys": ["Tunnel closes", "Idle timeout"], "fishbone": {"Config": ["timer"]},
                                      "timeline": [{"at": "2026-11-02 09:10", "what": "First drop"}]})
    response = agent_client.get(page(problem.number))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Keepalive timer too short" in html
    assert "<li>Tunnel closes</li>" in html and "<li>Idle timeout</li>" in html
    assert "<dt>Config</dt>" in html and "First drop" in html
    assert html.count('data-testid="linked-row"') == 2
    assert 'id="problem-chart-data" type="application/json">' in html and '"values": [2]' in html
    assert 'style="' not in html


def test_sections_are_saved_through_the_service_and_the_analysis_is_parsed_from_lines(
        agent_client, problem_factory):
    problem = problem_factory()
    url = reverse("agent:problem_update", kwargs={"number": problem.number})
    response = agent_client.post(url, {"section": "fishbone", "version": problem.version,
                                       "fishbone": "People: no runbook\nMachine: old firmware, bad cable"})
    assert response.status_code == 302
    problem = reload(problem)
    assert problem.analysis["fishbone"] == {"People": ["no runbook"], "Machine": ["old firmware", "bad cable"]}
    agent_client.post(url, {"section": "five_whys", "version": problem.version, "five_whys": "One\n\nTwo\n"})
    agent_client.post(url, {"section": "workaround", "version": reload(problem).version, "workaround": "Reconnect"})
    problem = reload(problem)
    assert problem.analysis["five_whys"] == ["One", "Two"]
    assert problem.analysis["fishbone"]["People"] == ["no runbook"]  # other sections kept
    assert problem.workaround == "Reconnect"


def test_a_malformed_analysis_line_is_refused_naming_the_section_and_nothing_is_saved(agent_client, problem_factory):
    problem = problem_factory()
    response = agent_client.post(reverse("agent:problem_update", kwargs={"number": problem.number}),
                                 {"section": "timeline", "version": problem.version, "timeline": "no separator"})
    assert response.status_code == 400
    assert "timeline:" in response.content.decode()
    assert "no separator" in response.content.decode()  # what was typed is kept in the open form
    assert reload(problem).analysis["timeline"] == []


def test_a_stale_version_gets_the_409_page_and_nothing_is_overwritten(agent_client, agent, problem_factory):
    problem = problem_factory()
    seen = problem.version
    services.problem_update(problem_id=problem.id, actor=agent, root_cause="Someone else's finding")
    response = agent_client.post(reverse("agent:problem_update", kwargs={"number": problem.number}),
                                 {"section": "root_cause", "version": seen, "root_cause": "Mine"})
    assert response.status_code == 409
    assert 'data-testid="alert-conflict"' in response.content.decode()
    assert reload(problem).root_cause == "Someone else's finding"


def test_known_error_is_refused_with_the_fields_named_until_a_root_cause_or_workaround_is_recorded(
        agent_client, problem_factory):
    problem = problem_factory()
    url = reverse("agent:problem_transition", kwargs={"number": problem.number})
    response = agent_client.post(url, {"to": Status.KNOWN_ERROR, "version": problem.version})
    assert response.status_code == 400
    html = response.content.decode()
    assert "root_cause" in html and "workaround" in html
    assert reload(problem).status == Status.NEW
    agent_client.post(reverse("agent:problem_update", kwargs={"number": problem.number}),
                      {"section": "workaround", "version": problem.version, "workaround": "Restart the agent"})
    response = agent_client.post(url, {"to": Status.KNOWN_ERROR, "version": reload(problem).version})
    assert response.status_code == 302
    assert reload(problem).status == Status.KNOWN_ERROR


def test_the_status_buttons_come_from_the_transition_table(agent_client, problem_factory):
    problem = problem_factory()
    html = agent_client.get(page(problem.number)).content.decode()
    assert 'data-testid="action-investigating"' in html
    assert 'data-testid="action-known_error"' in html
    assert 'data-testid="action-resolve"' in html
    assert 'data-testid="action-closed"' not in html  # new -> closed is not in the table


def test_resolving_from_the_page_with_resolve_incidents_queues_their_resolution(
        agent_client, problem_factory, incident_factory, fixed_code, django_capture_on_commit_callbacks):
    problem = problem_factory(incidents=[incident_factory()])
    with django_capture_on_commit_callbacks(execute=False):
        response = agent_client.post(reverse("agent:problem_resolve", kwargs={"number": problem.number}), {
            "version": problem.version, "resolution_code": "fixed", "resolution_notes": "Firmware upgraded",
            "resolve_incidents": "on"})
    assert response.status_code == 302
    problem = reload(problem)
    assert problem.status == Status.RESOLVED and problem.resolution_notes == "Firmware upgraded"
    from servicedesk.models import OutboxMessage

    assert OutboxMessage.objects.filter(handler="problems.resolve_incidents").exists()


def test_resolving_without_notes_is_refused_naming_the_field(agent_client, problem_factory, fixed_code):
    problem = problem_factory()
    response = agent_client.post(reverse("agent:problem_resolve", kwargs={"number": problem.number}),
                                 {"version": problem.version, "resolution_code": "fixed", "resolution_notes": ""})
    assert response.status_code == 400
    assert "resolution_notes" in response.content.decode()
    assert reload(problem).status == Status.NEW


def test_incidents_are_linked_by_number_found_by_search_and_unlinked(
        agent_client, problem_factory, incident_factory):
    problem = problem_factory()
    first = incident_factory(title="Printer jams on tray 2")
    second = incident_factory(title="Scanner offline")
    response = agent_client.post(reverse("agent:problem_link", kwargs={"number": problem.number}),
                                 {"incidents": first.number.lower()})
    assert response.status_code == 302
    search = agent_client.get(reverse("agent:problem_incident_search", kwargs={"number": problem.number}),
                              {"q": "scanner"}, HTTP_HX_REQUEST="true")
    html = search.content.decode()
    assert second.number in html and first.number not in html  # already linked ones are left out
    agent_client.post(reverse("agent:problem_link", kwargs={"number": problem.number}), {"numbers": [second.number]})
    assert set(ProblemIncident.objects.filter(problem=problem).values_list("incident__number", flat=True)) == {
        first.number, second.number}
    agent_client.post(reverse("agent:problem_unlink", kwargs={"number": problem.number, "incident": first.number}))
    assert list(ProblemIncident.objects.filter(problem=problem).values_list("incident__number", flat=True)) == [
        second.number]


def test_linking_an_unknown_number_is_refused_and_links_nothing(agent_client, problem_factory):
    problem = problem_factory()
    response = agent_client.post(reverse("agent:problem_link", kwargs={"number": problem.number}),
                                 {"incidents": "INC9999999"})
    assert response.status_code == 400
    assert "INC9999999" in response.content.decode()
    assert not ProblemIncident.objects.exists()


def test_the_new_problem_form_creates_one_through_the_service(agent_client, incident_factory):
    incident = incident_factory()
    response = agent_client.post(reverse("agent:problem_new"), {
        "title": "Printers jam", "impact": 2, "urgency": 2, "incidents": incident.number})
    problem = Problem.objects.get()
    assert response.status_code == 302 and response.url == page(problem.number)
    assert problem.priority == 3
    assert list(problem.incidents.all()) == [incident]
    assert agent_client.post(reverse("agent:problem_new"), {"title": "", "impact": 2, "urgency": 2}).status_code == 400


def test_notes_and_related_problems_are_added_from_the_page(agent_client, problem_factory):
    problem, other = problem_factory(), problem_factory(title="DNS flaps")
    agent_client.post(reverse("agent:problem_note", kwargs={"number": problem.number}), {"body": "Vendor called"})
    agent_client.post(reverse("agent:problem_related", kwargs={"number": problem.number}), {"other": other.number})
    html = agent_client.get(page(problem.number)).content.decode()
    assert "Vendor called" in html
    assert other.number in html
    assert list(reload(problem).related.all()) == [other]


def test_the_incident_queue_bulk_bar_offers_create_problem_and_it_creates_one_from_the_checked_incidents(
        agent_client, incident_factory):
    incidents = [incident_factory(title="Wifi drops in B2") for _ in range(3)]
    queue = agent_client.get(reverse("agent:queue", kwargs={"key": "all"})).content.decode()
    assert f'formaction="{reverse("agent:problem_from_incidents")}"' in queue
    response = agent_client.post(reverse("agent:problem_from_incidents"),
                                 {"numbers": [i.number for i in incidents], "action": "assign_me"})
    problem = Problem.objects.get()
    assert response.status_code == 302 and response.url == page(problem.number)
    assert problem.title == "Wifi drops in B2"
    assert set(problem.incidents.values_list("number", flat=True)) == {i.number for i in incidents}


def test_the_bulk_action_with_nothing_checked_creates_nothing(agent_client):
    response = agent_client.post(reverse("agent:problem_from_incidents"), {"numbers": []})
    assert response.status_code == 302
    assert not Problem.objects.exists()


def test_the_incident_page_shows_its_linked_problem_and_matching_known_errors(
        agent_client, agent, problem_factory, incident_factory):
    linked = incident_factory(title="Printer jams")
    problem = problem_factory(title="Printer firmware jams paper", incidents=[linked])
    services.problem_update(problem_id=problem.id, actor=agent, workaround="Open tray 2 and reseat the roller")
    services.problem_known_error(problem_id=problem.id, actor=agent)
    html = agent_client.get(reverse("agent:incident", kwargs={"number": linked.number})).content.decode()
    assert 'data-testid="linked-problem"' in html and problem.number in html
    other = incident_factory(title="Paper jams in the printer again")
    html = agent_client.get(reverse("agent:incident", kwargs={"number": other.number})).content.decode()
    assert 'data-testid="known-error"' in html
    assert 'data-testid="apply-workaround"' in html
    unrelated = incident_factory(title="Mailbox full")
    html = agent_client.get(reverse("agent:incident", kwargs={"number": unrelated.number})).content.decode()
    assert 'data-testid="known-errors"' not in html


def test_apply_workaround_from_the_incident_page_replies_to_the_requester_and_links_the_incident(
        agent_client, agent, problem_factory, incident_factory):
    problem = problem_factory(title="Printer firmware jams paper")
    services.problem_update(problem_id=problem.id, actor=agent, workaround="Reseat the roller")
    services.problem_known_error(problem_id=problem.id, actor=agent)
    incident = incident_factory(title="Printer jams")
    response = agent_client.post(reverse("agent:problem_apply_workaround", kwargs={
        "number": incident.number, "problem_number": problem.number}))
    assert response.status_code == 302
    assert ProblemIncident.objects.filter(problem=problem, incident=incident).exists()
    replies = TimelineEntry.objects.filter(content_type__model="incident", object_id=incident.id, kind="comment")
    assert any("Reseat the roller" in e.body for e in replies)


def test_link_to_problem_from_the_incident_page(agent_client, problem_factory, incident_factory):
    problem = problem_factory()
    incident = incident_factory()
    response = agent_client.post(reverse("agent:problem_link_incident", kwargs={"number": incident.number}),
                                 {"problem": problem.number.lower()})
    assert response.status_code == 302
    assert list(problem.incidents.all()) == [incident]


def test_the_measures_page_reports_age_incidents_per_problem_times_and_recurrences(
        agent_client, agent, problem_factory, incident_factory, fixed_code):
    problem = problem_factory(incidents=[incident_factory(), incident_factory()])
    services.problem_update(problem_id=problem.id, actor=agent, root_cause="Bad cable")
    services.problem_known_error(problem_id=problem.id, actor=agent)
    services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Cable replaced")
    late = incident_factory(title="Same again")
    services.problem_link_incidents(problem_id=problem.id, actor=agent, incidents=[late])
    problem_factory(title="Still open")
    with CaptureQueriesContext(connection) as ctx:
        response = agent_client.get(reverse("agent:problem_measures"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="incidents-per-problem">1.5<' in html
    assert 'data-testid="recurrence"' in html and problem.number in html
    assert 'data-testid="age-1">1<' in html
    assert 'data-testid="days-to-resolve">1 min<' in html  # shorter than a day: said in hours or minutes
    from problems.workspace import measures

    figures = measures(agent)
    assert figures["days_to_known_error"] == 0.0 and figures["days_to_resolve"] == 0.0
    assert figures["recurrences"][0]["n"] == 1
    assert len(ctx) < 25
    assert IncidentStatus.RESOLVED  # incidents keep their own statuses (nothing cascaded without the option)


def test_the_problem_page_costs_the_same_queries_whatever_the_number_of_linked_incidents(
        agent_client, agent, problem_factory, incident_factory):
    problem = problem_factory(incidents=[incident_factory()])

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert agent_client.get(page(problem.number)).status_code == 200
        return len(ctx)

    few = queries()
    services.problem_link_incidents(problem_id=problem.id, actor=agent,
                                    incidents=[incident_factory(title=f"Down {n}") for n in range(8)])
    assert queries() == few
