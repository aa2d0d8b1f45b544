import pytest
from django.db import transaction

from incidents.services import incident_create
from incidents.states import Status as IncidentStatus
from knowledge.services import article_create
from problems import services
from problems.models import Problem, ProblemIncident
from problems.states import Status
from servicedesk.errors import InvalidInput, StaleVersion, TransitionNotAllowed
from servicedesk.models import AuditLog, OutboxMessage, Service, Team, TeamMembership, TimelineEntry

pytestmark = pytest.mark.django_db


def entries(ticket, **filters):
    return list(TimelineEntry.objects.filter(content_type__model=ticket._meta.model_name, object_id=ticket.id,
                                             **filters).order_by("id"))


def reload(problem):
    return Problem.objects.get(id=problem.id)


def test_a_new_problem_gets_a_prb_number_priority_from_the_matrix_a_timeline_entry_and_an_audit_row(
        problem_factory, agent):
    problem = problem_factory(impact=1, urgency=2)
    assert problem.number.startswith("PRB")
    assert problem.status == Status.NEW
    assert problem.priority == 2
    assert problem.requester == agent and problem.created_by == agent
    assert [e.body for e in entries(problem)] == ["Problem recorded"]
    assert AuditLog.objects.filter(action="problem.created", object_id=str(problem.id)).exists()


def test_creating_refuses_an_empty_title_a_requester_and_a_bad_impact(problem_factory, requester):
    with pytest.raises(InvalidInput) as caught:
        problem_factory(title="  ")
    assert caught.value.field == "title"
    with pytest.raises(InvalidInput) as caught:
        problem_factory(created_by=requester)
    assert caught.value.field == "created_by"
    with pytest.raises(InvalidInput) as caught:
        problem_factory(impact=7)
    assert caught.value.field == "impact"
    assert not Problem.objects.exists()


def test_creating_from_incidents_links_them_with_an_internal_entry_on_each_incident(
        problem_factory, incident_factory, agent):
    first, second = incident_factory(title="VPN dropped"), incident_factory(title="VPN dropped again")
    problem = problem_factory(incidents=[first, second])
    assert set(problem.incidents.values_list("number", flat=True)) == {first.number, second.number}
    assert ProblemIncident.objects.filter(problem=problem, linked_by=agent).count() == 2
    linked = entries(first, data__event="problem_linked")
    assert len(linked) == 1 and linked[0].internal and problem.number in linked[0].body
    assert f"Linked {first.number}, {second.number}" in entries(problem)[-1].body


def test_update_changes_fields_recomputes_priority_bumps_the_version_and_records_the_diff(problem_factory, agent):
    problem = problem_factory()
    vpn = Service.objects.create(name="VPN")
    updated = services.problem_update(problem_id=problem.id, actor=agent, version=problem.version,
                                      impact=1, urgency=1, root_cause="Certificate expired", services=[vpn])
    assert updated.priority == 1 and updated.version == problem.version + 1
    assert list(updated.services.all()) == [vpn]
    change = entries(problem, kind="change")[-1]
    assert change.data["changes"]["priority"] == {"old": 5, "new": 1}
    assert change.data["changes"]["services"] == {"old": "", "new": "VPN"}
    assert AuditLog.objects.filter(action="problem.updated", object_id=str(problem.id)).exists()


def test_saving_what_is_there_changes_nothing(problem_factory, agent):
    problem = problem_factory()
    again = services.problem_update(problem_id=problem.id, actor=agent, title=problem.title, impact=3)
    assert again.version == problem.version
    assert not entries(problem, kind="change")


def test_a_stale_version_is_refused_naming_who_changed_it(problem_factory, agent):
    problem = problem_factory()
    services.problem_update(problem_id=problem.id, actor=agent, version=problem.version, title="VPN drops hourly")
    with pytest.raises(StaleVersion) as caught:
        services.problem_update(problem_id=problem.id, actor=agent, version=problem.version, title="Other")
    assert caught.value.field == "version"
    assert f"version {problem.version + 1}, you sent {problem.version}" in caught.value.message
    assert reload(problem).title == "VPN drops hourly"


def test_unknown_fields_are_refused(problem_factory, agent):
    problem = problem_factory()
    with pytest.raises(InvalidInput) as caught:
        services.problem_update(problem_id=problem.id, actor=agent, status="closed")
    assert caught.value.field == "status"


def test_the_analysis_is_stored_in_its_shape(problem_factory, agent):
    problem = problem_factory()
    analysis = {"five_whys": ["The tunnel drops", " The certificate expired "],
                "fishbone": {"Technology": ["No renewal alert"]},
                "timeline": [{"at": "2026-11-02 09:00", "what": "First report"}]}
    updated = services.problem_update(problem_id=problem.id, actor=agent, analysis=analysis)
    assert updated.analysis == {"five_whys": ["The tunnel drops", "The certificate expired"],
                                "fishbone": {"Technology": ["No renewal alert"]},
                                "timeline": [{"at": "2026-11-02 09:00", "what": "First report"}]}


@pytest.mark.parametrize("analysis,section", [
    ({"five_whys": "because"}, "analysis.five_whys"),
    ({"five_whys": [1, 2]}, "analysis.five_whys"),
    ({"fishbone": ["people"]}, "analysis.fishbone"),
    ({"fishbone": {"People": "tired"}}, "analysis.fishbone"),
    ({"timeline": [{"at": "09:00"}]}, "analysis.timeline"),
    ({"timeline": [{"at": "09:00", "what": "x", "who": "me"}]}, "analysis.timeline"),
    ({"mood": []}, "analysis.mood"),
    ("five whys", "analysis"),
])
def test_a_badly_shaped_analysis_is_refused_naming_the_section(problem_factory, agent, analysis, section):
    problem = problem_factory()
    with pytest.raises(InvalidInput) as caught:
        services.problem_update(problem_id=problem.id, actor=agent, analysis=analysis)
    assert caught.value.field == section
    assert reload(problem).version == problem.version


def test_the_owner_must_be_an_agent_of_the_owner_team(problem_factory, agent, make_user):
    problem = problem_factory()
    network = Team.objects.create(name="Network")
    with pytest.raises(InvalidInput) as caught:
        services.problem_update(problem_id=problem.id, actor=agent, assignment_group=network, assignee=agent)
    assert caught.value.field == "assignee"
    TeamMembership.objects.create(team=network, user=agent)
    updated = services.problem_update(problem_id=problem.id, actor=agent, assignment_group=network, assignee=agent)
    assert (updated.assignment_group, updated.assignee) == (network, agent)


# --- lifecycle ----------------------------------------------------------------------------------------


def test_known_error_is_refused_until_a_root_cause_or_a_workaround_is_recorded(problem_factory, agent):
    problem = problem_factory()
    with pytest.raises(InvalidInput) as caught:
        services.problem_known_error(problem_id=problem.id, actor=agent)
    assert caught.value.field == "root_cause" and "workaround" in caught.value.message
    services.problem_update(problem_id=problem.id, actor=agent, workaround="Reconnect the VPN client")
    known = services.problem_known_error(problem_id=problem.id, actor=agent)
    assert known.status == Status.KNOWN_ERROR and known.known_error_at is not None
    assert entries(problem, data__event="known_error")[0].body == "New → Known error"
    assert AuditLog.objects.filter(action="problem.known_error", object_id=str(problem.id)).exists()


def test_a_known_error_cannot_lose_both_its_root_cause_and_workaround(problem_factory, agent):
    problem = problem_factory()
    services.problem_update(problem_id=problem.id, actor=agent, workaround="Reconnect")
    services.problem_known_error(problem_id=problem.id, actor=agent)
    with pytest.raises(InvalidInput) as caught:
        services.problem_update(problem_id=problem.id, actor=agent, workaround="")
    assert caught.value.field == "root_cause"


def test_the_full_lifecycle_and_refused_moves(problem_factory, agent, fixed_code):
    problem = problem_factory()
    assert services.problem_investigate(problem_id=problem.id, actor=agent).status == Status.INVESTIGATING
    with pytest.raises(TransitionNotAllowed):
        services.problem_close(problem_id=problem.id, actor=agent)
    with pytest.raises(TransitionNotAllowed):
        services.problem_reopen(problem_id=problem.id, actor=agent, reason="again")
    resolved = services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Renewed the cert")
    assert (resolved.status, resolved.resolution_code, resolved.resolution_notes) == (
        Status.RESOLVED, "fixed", "Renewed the cert")
    assert resolved.resolved_at is not None
    with pytest.raises(InvalidInput) as caught:
        services.problem_reopen(problem_id=problem.id, actor=agent, reason=" ")
    assert caught.value.field == "reason"
    reopened = services.problem_reopen(problem_id=problem.id, actor=agent, reason="It came back")
    assert reopened.status == Status.INVESTIGATING and reopened.resolved_at is None and not reopened.resolution_notes
    services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Renewed and monitored")
    closed = services.problem_close(problem_id=problem.id, actor=agent)
    assert closed.status == Status.CLOSED and closed.closed_at is not None
    with pytest.raises(TransitionNotAllowed):
        services.problem_update(problem_id=problem.id, actor=agent, title="Too late")
    events = [e.data.get("event") for e in entries(problem, kind="system")]
    assert events == ["created", "investigating", "resolved", "reopened", "resolved", "closed"]


def test_resolve_needs_notes_and_a_known_code(problem_factory, agent, fixed_code):
    problem = problem_factory()
    with pytest.raises(InvalidInput) as caught:
        services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="")
    assert caught.value.field == "resolution_notes"
    with pytest.raises(InvalidInput) as caught:
        services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="x", resolution_code="magic")
    assert caught.value.field == "resolution_code"
    assert reload(problem).status == Status.NEW


def test_resolving_with_resolve_incidents_queues_one_outbox_message(problem_factory, incident_factory, agent,
                                                                  fixed_code):
    problem = problem_factory(incidents=[incident_factory(), incident_factory()])
    services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Fixed", resolve_incidents=True)
    message = OutboxMessage.objects.get(handler="problems.resolve_incidents")
    assert message.payload == {"problem_id": problem.id, "actor_id": agent.id}
    assert "Resolving its 2 open linked incidents" in entries(problem)[-1].body


def test_resolving_without_resolve_incidents_leaves_them_alone(problem_factory, incident_factory, agent, fixed_code):
    incident = incident_factory()
    problem = problem_factory(incidents=[incident])
    services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Fixed")
    assert not OutboxMessage.objects.filter(handler="problems.resolve_incidents").exists()


def test_the_handler_resolves_each_open_linked_incident_through_incidents_services(
        problem_factory, incident_factory, agent, fixed_code):
    open_one, held, done = incident_factory(), incident_factory(), incident_factory()
    from incidents.services import incident_assign, incident_hold, incident_resolve

    incident_assign(incident_id=held.id, actor=agent, assignee=agent, assignment_group=Team.objects.get(name="Service Desk"))
    incident_hold(incident_id=held.id, actor=agent, hold_reason="awaiting_vendor")
    incident_resolve(incident_id=done.id, actor=agent, resolution_code="fixed", resolution_notes="Earlier")
    problem = problem_factory(incidents=[open_one, held, done])
    services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Renewed the cert")
    resolved = services.resolve_linked_incidents(problem_id=problem.id, actor=agent)
    assert resolved == [open_one.number, held.number]
    for incident in (open_one, held):
        incident.refresh_from_db()
        assert incident.status == IncidentStatus.RESOLVED
        assert incident.resolution_notes == f"Resolved with problem {problem.number}: Renewed the cert"
    done.refresh_from_db()
    assert done.resolution_notes == "Earlier"


def test_resolving_publishes_the_resolution_to_the_known_errors_article(problem_factory, agent, fixed_code):
    article = article_create(title="VPN drops", body="Reconnect the client.", author=agent)
    problem = problem_factory()
    Problem.objects.filter(id=problem.id).update(knowledge_article=article)
    services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="The certificate is renewed.")
    article.refresh_from_db()
    assert article.body.startswith("Reconnect the client.")
    assert "## Resolution\n\nThe certificate is renewed." in article.body
    assert article.versions.count() == 2


# --- links --------------------------------------------------------------------------------------------


def test_linking_twice_links_once_and_unlinking_is_recorded_both_ways(problem_factory, incident_factory, agent):
    problem = problem_factory()
    incident = incident_factory()
    assert services.problem_link_incidents(problem_id=problem.id, actor=agent, incidents=[incident]) == 1
    assert services.problem_link_incidents(problem_id=problem.id, actor=agent, incidents=[incident]) == 0
    services.problem_unlink_incident(problem_id=problem.id, actor=agent, incident=incident)
    assert not problem.incidents.exists()
    assert entries(incident)[-1].body == f"No longer linked to problem {problem.number}"
    assert entries(incident)[-1].internal
    assert entries(problem)[-1].body == f"Unlinked {incident.number}"


def test_a_closed_problem_takes_no_new_incidents(problem_factory, incident_factory, agent, fixed_code):
    problem = problem_factory()
    services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Done")
    services.problem_close(problem_id=problem.id, actor=agent)
    with pytest.raises(TransitionNotAllowed):
        services.problem_link_incidents(problem_id=problem.id, actor=agent, incidents=[incident_factory()])


def test_related_problems_are_linked_both_ways_and_not_to_themselves(problem_factory, agent):
    first, second = problem_factory(), problem_factory(title="Mail delays")
    services.problem_link_problem(problem_id=first.id, other_id=second.id, actor=agent)
    services.problem_link_problem(problem_id=second.id, other_id=first.id, actor=agent)
    assert list(second.related.all()) == [first]
    assert len(entries(first, data__event="related")) == 1
    with pytest.raises(InvalidInput) as caught:
        services.problem_link_problem(problem_id=first.id, other_id=first.id, actor=agent)
    assert caught.value.field == "related"


def test_apply_workaround_posts_a_public_reply_mails_the_requester_and_links(
        problem_factory, incident_factory, agent, requester):
    problem = problem_factory()
    services.problem_update(problem_id=problem.id, actor=agent, workaround="Restart the VPN client.")
    incident = incident_factory()
    entry = services.workaround_apply(problem_id=problem.id, incident=incident, actor=agent)
    assert entry.kind == "comment" and not entry.internal
    assert entry.body.startswith("Restart the VPN client.") and problem.number in entry.body
    assert problem.incidents.filter(id=incident.id).exists()
    assert OutboxMessage.objects.filter(handler="email.send", payload__template="incident_comment",
                                        payload__to=[requester.email]).exists()
    assert entries(problem)[-1].body == f"Workaround applied to {incident.number}"


def test_apply_workaround_without_one_is_refused_and_writes_nothing(problem_factory, incident_factory, agent):
    problem = problem_factory()
    incident = incident_factory()
    with pytest.raises(InvalidInput) as caught:
        services.workaround_apply(problem_id=problem.id, incident=incident, actor=agent)
    assert caught.value.field == "workaround"
    assert not entries(incident, kind="comment")


def test_bad_input_leaves_nothing_half_written(problem_factory, agent, incident_factory):
    incident = incident_factory()
    with pytest.raises(InvalidInput), transaction.atomic():
        incident_create(title="x", requester=agent, created_by=agent)
        problem_factory(title="", incidents=[incident])
    assert not ProblemIncident.objects.exists()


def test_the_handler_leaves_incidents_alone_when_the_problem_was_reopened_meanwhile(
        problem_factory, incident_factory, agent, fixed_code):
    incident = incident_factory()
    problem = problem_factory(incidents=[incident])
    services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Fixed", resolve_incidents=True)
    services.problem_reopen(problem_id=problem.id, actor=agent, reason="Came back")
    assert services.resolve_linked_incidents(problem_id=problem.id, actor=agent) == []
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.NEW
