from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import AssignmentRule, Category, Incident, IncidentSettings
from incidents.states import Status
from servicedesk.errors import InvalidInput, StaleVersion, TransitionNotAllowed
from servicedesk.models import PriorityRule, Profile, Service, Team, TeamMembership, TimelineEntry

pytestmark = pytest.mark.django_db


def entries(incident, kind=None):
    qs = TimelineEntry.objects.filter(object_id=incident.id).order_by("id")
    return list(qs.filter(kind=kind) if kind else qs)


def reload(incident):
    return Incident.objects.get(id=incident.id)


@pytest.fixture
def working(incident_factory, agent):
    """An incident in progress, assigned to the agent."""
    incident = incident_factory()
    return services.incident_assign(incident_id=incident.id, actor=agent, assignee=agent,
                                    assignment_group=Team.objects.get(name="Service Desk"))


# --- priority ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("impact,urgency,priority", [
    (1, 1, 1), (1, 2, 2), (2, 1, 2), (1, 3, 3), (2, 2, 3), (3, 1, 3), (2, 3, 4), (3, 2, 4), (3, 3, 5),
])
def test_priority_follows_the_default_matrix(incident_factory, agent, impact, urgency, priority):
    assert incident_factory(impact=impact, urgency=urgency, created_by=agent).priority == priority


def test_an_admin_edit_of_the_matrix_changes_new_priorities(incident_factory):
    PriorityRule.objects.filter(impact=3, urgency=3).update(priority=4)
    assert incident_factory(urgency=3).priority == 4


def test_changing_impact_recomputes_priority_and_records_it(working, agent):
    updated = services.incident_update(incident_id=working.id, actor=agent, version=working.version, impact=1,
                                       urgency=1)
    assert updated.priority == 1
    change = entries(working, "change")[-1]
    assert change.data["changes"]["priority"] == {"old": 5, "new": 1}


# --- transitions ----------------------------------------------------------------------------------

def test_assigning_a_new_incident_starts_it(incident_factory, agent):
    incident = incident_factory()
    assigned = services.incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    assert assigned.status == Status.IN_PROGRESS and assigned.assignee == agent
    assert assigned.version == incident.version + 1


def test_hold_needs_a_reason_and_resume_clears_it(working, agent):
    with pytest.raises(InvalidInput, match="hold_reason: give one of awaiting_caller"):
        services.incident_hold(incident_id=working.id, actor=agent, hold_reason="coffee")
    held = services.incident_hold(incident_id=working.id, actor=agent, hold_reason="awaiting_vendor")
    assert (held.status, held.hold_reason) == ("on_hold", "awaiting_vendor")
    resumed = services.incident_resume(incident_id=working.id, actor=agent)
    assert (resumed.status, resumed.hold_reason) == ("in_progress", "")
    events = [e.data.get("event") for e in entries(working, "system")]
    assert events[-2:] == ["held", "resumed"]


def test_resolve_requires_a_code_and_notes(working, agent):
    with pytest.raises(InvalidInput) as missing:
        services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="", resolution_notes=" ")
    assert "resolution_code: give one of" in missing.value.message
    assert "resolution_notes: say what was done" in missing.value.message
    assert reload(working).status == Status.IN_PROGRESS  # nothing half-written
    resolved = services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="fixed",
                                         resolution_notes="Replaced the toner.")
    assert resolved.status == Status.RESOLVED and resolved.resolved_at is not None


def test_an_illegal_transition_is_refused_with_a_message(working, agent):
    services.incident_hold(incident_id=working.id, actor=agent, hold_reason="awaiting_caller")
    with pytest.raises(TransitionNotAllowed, match="on hold cannot become resolved"):
        services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="fixed",
                                  resolution_notes="x")
    with pytest.raises(TransitionNotAllowed, match="only a resolved incident can be reopened"):
        services.incident_reopen(incident_id=working.id, actor=agent, reason="x")


def test_reopen_needs_a_reason_and_counts(working, agent):
    services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="fixed", resolution_notes="ok")
    with pytest.raises(InvalidInput, match="reason: say why"):
        services.incident_reopen(incident_id=working.id, actor=agent, reason="")
    reopened = services.incident_reopen(incident_id=working.id, actor=agent, reason="Came back after reboot")
    assert (reopened.status, reopened.reopen_count, reopened.resolved_at) == ("in_progress", 1, None)


def test_close_and_cancel_are_final(working, incident_factory, agent):
    services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="fixed", resolution_notes="ok")
    closed = services.incident_close(incident_id=working.id, actor=agent)
    assert closed.status == Status.CLOSED and closed.closed_at is not None
    with pytest.raises(TransitionNotAllowed):
        services.incident_reopen(incident_id=working.id, actor=agent, reason="x")
    other = incident_factory()
    assert services.incident_cancel(incident_id=other.id, actor=agent, reason="Duplicate call").status == "cancelled"
    with pytest.raises(TransitionNotAllowed):
        services.incident_assign(incident_id=other.id, actor=agent, assignee=agent)


def test_a_repeated_transition_changes_nothing(working, agent):
    held = services.incident_hold(incident_id=working.id, actor=agent, hold_reason="awaiting_change")
    again = services.incident_hold(incident_id=working.id, actor=agent, hold_reason="awaiting_change")
    assert again.version == held.version
    assert len([e for e in entries(working, "system") if e.data.get("event") == "held"]) == 1


def test_first_contact_resolution_goes_straight_from_new(incident_factory, agent):
    incident = incident_factory()
    resolved = services.incident_resolve(incident_id=incident.id, actor=agent, resolution_code="user_error",
                                         resolution_notes="Showed how to reset the password.")
    assert resolved.status == Status.RESOLVED


# --- stale versions -------------------------------------------------------------------------------

def test_a_stale_version_is_refused_and_nothing_is_overwritten(working, agent, make_user):
    other = make_user("agent", username="oscar", first_name="Oscar", last_name="Other", teams=["Service Desk"])
    read_version = working.version
    services.incident_update(incident_id=working.id, actor=other, version=read_version, title="Printer fixed?")
    with pytest.raises(StaleVersion) as stale:
        services.incident_update(incident_id=working.id, actor=agent, version=read_version, title="Mine")
    assert "was changed by Oscar Other at" in stale.value.message
    assert "reload it" in stale.value.message
    assert reload(working).title == "Printer fixed?"


# --- requester replies ----------------------------------------------------------------------------

def test_a_requester_reply_reopens_a_resolved_incident(working, agent, requester):
    services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="fixed", resolution_notes="ok")
    services.incident_comment_add(incident=working, author=requester, body="Still broken, sorry.")
    incident = reload(working)
    assert (incident.status, incident.reopen_count) == ("in_progress", 1)


def test_a_requester_reply_resumes_a_hold_awaiting_the_caller_only(working, agent, requester):
    services.incident_hold(incident_id=working.id, actor=agent, hold_reason="awaiting_vendor")
    services.incident_comment_add(incident=working, author=requester, body="Any news?")
    assert reload(working).status == "on_hold"
    services.incident_hold(incident_id=working.id, actor=agent, hold_reason="awaiting_caller")
    services.incident_comment_add(incident=working, author=requester, body="Here is the log.")
    assert reload(working).status == "in_progress"


def test_the_first_public_agent_reply_stamps_first_response(incident_factory, agent):
    incident = incident_factory()
    services.incident_comment_add(incident=incident, author=agent, body="note", internal=True)
    assert reload(incident).first_responded_at is None
    services.incident_comment_add(incident=incident, author=agent, body="On it")
    assert reload(incident).first_responded_at is not None


# --- major incidents and children -----------------------------------------------------------------

def test_resolving_a_parent_resolves_its_open_children(incident_factory, agent, make_user, working):
    other = make_user("requester", username="carol")
    child_new = incident_factory(title="Me too", requester=other)
    child_held = incident_factory(title="Same here")
    services.incident_assign(incident_id=child_held.id, actor=agent, assignee=agent)
    services.incident_hold(incident_id=child_held.id, actor=agent, hold_reason="awaiting_caller")
    for child in (child_new, child_held):
        services.incident_update(incident_id=child.id, actor=agent, parent=working)
    services.incident_update(incident_id=working.id, actor=agent, major=True)
    services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="fixed",
                              resolution_notes="Core switch replaced.")
    for child in (child_new, child_held):
        child = reload(child)
        assert child.status == "resolved"
        assert child.resolution_code == "fixed"
        assert child.resolution_notes == f"Resolved with {working.number}: Core switch replaced."


def test_a_parent_cycle_is_refused(incident_factory, agent):
    a, b = incident_factory(title="a"), incident_factory(title="b")
    services.incident_update(incident_id=b.id, actor=agent, parent=a)
    with pytest.raises(InvalidInput, match="is already a child of"):
        services.incident_update(incident_id=a.id, actor=agent, parent=reload(b))
    with pytest.raises(InvalidInput, match="cannot be its own parent"):
        services.incident_update(incident_id=a.id, actor=agent, parent=a)


# --- routing and assignment -----------------------------------------------------------------------

def test_rules_route_by_keyword_category_and_service(incident_factory, make_user):
    network, apps = Team.objects.create(name="Network"), Team.objects.create(name="Apps")
    hardware = Category.objects.create(name="Hardware")
    laptop = Category.objects.create(name="Laptop", parent=hardware)
    erp = Service.objects.create(name="ERP")
    AssignmentRule.objects.create(name="vpn words", order=1, keywords="vpn, tunnel", team=network)
    AssignmentRule.objects.create(name="hardware", order=2, category=hardware, team=apps)
    AssignmentRule.objects.create(name="erp", order=3, service=erp, team=apps)
    assert incident_factory(title="VPN tunnel drops").assignment_group == network
    assert incident_factory(title="Screen flickers", category=laptop).assignment_group == apps
    assert incident_factory(title="Slow", service=erp).assignment_group == apps
    assert incident_factory(title="Nothing matches").assignment_group is None


def test_round_robin_skips_away_agents(incident_factory, make_user):
    team = Team.objects.create(name="Desk", assignment_strategy=Team.Strategy.ROUND_ROBIN)
    a, b, c = (make_user("agent", username=n, teams=["Desk"]) for n in ("ann", "ben", "cat"))
    Profile.objects.filter(user=b).update(away=True)
    picked = [incident_factory(title=f"t{n}", assignment_group=team).assignee for n in range(4)]
    assert [u.username for u in picked] == ["ann", "cat", "ann", "cat"]
    assert not TeamMembership.objects.filter(user=b, last_assigned_at__isnull=False).exists()


def test_least_loaded_picks_the_agent_with_fewest_open_incidents(incident_factory, make_user, agent):
    team = Team.objects.create(name="Desk", assignment_strategy=Team.Strategy.LEAST_LOADED)
    busy, free = make_user("agent", username="busy", teams=["Desk"]), make_user("agent", username="free", teams=["Desk"])
    for n in range(2):
        inc = incident_factory(title=f"x{n}")
        services.incident_assign(incident_id=inc.id, actor=agent, assignee=busy)
    assert incident_factory(title="new one", assignment_group=team).assignee == free


def test_an_assignee_must_belong_to_the_group(incident_factory, agent, make_user):
    team = Team.objects.create(name="Network")
    incident = incident_factory()
    with pytest.raises(InvalidInput, match="agnes is not a member of Network"):
        services.incident_assign(incident_id=incident.id, actor=agent, assignment_group=team, assignee=agent)


# --- auto close -----------------------------------------------------------------------------------

def test_auto_close_closes_only_resolved_incidents_past_the_configured_days(working, incident_factory, agent):
    IncidentSettings.objects.update_or_create(pk=1, defaults={"auto_close_days": 3})
    now = timezone.now()
    services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="fixed", resolution_notes="ok",
                              now=now - timedelta(days=4))
    recent = incident_factory(title="recent")
    services.incident_resolve(incident_id=recent.id, actor=agent, resolution_code="fixed", resolution_notes="ok",
                              now=now - timedelta(days=1))
    assert services.incidents_auto_close(now=now) == 1
    assert reload(working).status == "closed" and reload(recent).status == "resolved"
    assert services.incidents_auto_close(now=now) == 0  # idempotent


def test_the_auto_close_task_runs(working, agent):
    from incidents.tasks import incidents_auto_close

    IncidentSettings.objects.update_or_create(pk=1, defaults={"auto_close_days": 1})
    services.incident_resolve(incident_id=working.id, actor=agent, resolution_code="fixed", resolution_notes="ok",
                              now=timezone.now() - timedelta(days=2))
    assert incidents_auto_close.apply().get() == 1


# --- canned responses -----------------------------------------------------------------------------

def test_canned_responses_fill_placeholders_and_keep_unknown_ones(working, agent):
    text = "Hi {requester_first_name}, {number} ({priority}) is with {agent_name}. {unknown}"
    assert services.canned_render(text, incident=working, agent=agent) == (
        f"Hi Alice, {working.number} (P5) is with Agnes Agent. {{unknown}}"
    )


# --- saved views ----------------------------------------------------------------------------------

def test_saved_views_are_per_owner_and_names_unique_per_owner(agent, make_user):
    from incidents.models import SavedView

    other = make_user("agent", username="otto")
    view = services.saved_view_create(owner=agent, name="P1 network", query="priority=1&queue=all")
    services.saved_view_create(owner=other, name="P1 network", query="")  # same name, another owner: fine
    with pytest.raises(InvalidInput, match="name: you already have a view with this name"):
        services.saved_view_create(owner=agent, name="P1 network", query="")
    with pytest.raises(SavedView.DoesNotExist):
        services.saved_view_delete(owner=other, view_id=view.id)
    assert services.saved_view_delete(owner=agent, view_id=view.id).name == "P1 network"
    assert not SavedView.objects.filter(owner=agent).exists()
