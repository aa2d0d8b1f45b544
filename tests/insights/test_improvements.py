"""The improvement register: services (validation naming fields, versions, status, links, audit), who sees and
who writes, the measure before and after against hand-computed figures, and the pages."""

import re
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents.services import incident_create, incident_resolve
from insights import improvements as svc
from insights.models import Improvement, ImprovementTicket
from servicedesk.errors import InvalidInput, NotAllowed, StaleVersion
from servicedesk.models import AuditLog, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(agent):
    return Team.objects.get(name="Service Desk")


@pytest.fixture
def manager(make_user, desk):
    return make_user("manager", username="mona", first_name="Mona", last_name="Manager", teams=["Service Desk"])


@pytest.fixture
def network(make_user):
    other = make_user("manager", username="nils", first_name="Nils", teams=["Network"])
    return Team.objects.get(name="Network"), other


def record(actor, **kwargs):
    kwargs.setdefault("title", "Answer printer tickets from a known error")
    kwargs.setdefault("why", "Printer incidents take a day; most are the same toner fault.")
    kwargs.setdefault("owner", actor)
    kwargs.setdefault("measure", "resolve_mean")
    if "team" not in kwargs:  # a manager records for one of their teams; only admins for all teams
        kwargs["team"] = Team.objects.get_or_create(name="Service Desk")[0]
    return svc.improvement_create(actor=actor, **kwargs)


def at(day, hour):
    return timezone.make_aware(datetime.combine(day, time(hour)))


# --- services ----------------------------------------------------------------------------------------------


def test_it_records_an_improvement_with_an_audit_row(manager, desk):
    made = record(manager, team=desk, target=4, due_on=timezone.localdate() + timedelta(days=30))
    assert (made.team, made.status, made.version, made.created_by) == (desk, "planned", 1, manager)
    row = AuditLog.objects.get(action="improvement.created", object_id=str(made.id))
    assert row.changes["team"] == "Service Desk" and row.changes["measure"] == "resolve_mean"
    assert made.measured_at is not None  # the before/after figures were stored on save


@pytest.mark.parametrize(("change", "field"), [
    ({"title": "  "}, "title"),
    ({"why": ""}, "why"),
    ({"measure": "happiness"}, "measure"),
    ({"baseline_days": 0}, "baseline_days"),
    ({"target": "a lot"}, "target"),
    ({"due_on": "soon"}, "due_on"),
])
def test_it_names_the_field_at_fault_and_saves_nothing(manager, change, field):
    with pytest.raises(InvalidInput) as refused:
        record(manager, **change)
    assert refused.value.field == field
    assert not Improvement.objects.exists()


def test_the_owner_must_be_staff(manager, requester):
    with pytest.raises(InvalidInput) as refused:
        record(manager, owner=requester)
    assert refused.value.field == "owner"


def test_a_due_date_before_the_start_is_refused(manager):
    today = timezone.localdate()
    with pytest.raises(InvalidInput) as refused:
        record(manager, started_on=today, due_on=today - timedelta(days=1))
    assert refused.value.field == "due_on" and not Improvement.objects.exists()


def test_agents_may_not_record_and_managers_only_for_their_teams_and_only_admins_for_all_teams(
        agent, manager, network, admin_user, desk):
    with pytest.raises(NotAllowed):
        record(agent)
    team, _ = network
    with pytest.raises(InvalidInput) as refused:
        record(manager, team=team)
    assert refused.value.field == "team" and "choose one of your teams" in refused.value.message
    with pytest.raises(InvalidInput) as teamless:
        record(manager, team=None)
    assert teamless.value.field == "team" and "choose one of your teams" in teamless.value.message
    assert not Improvement.objects.exists()
    made = record(admin_user, team=None)
    assert made.team is None
    assert not svc.improvement_can_write(manager, None)
    with pytest.raises(NotAllowed):  # nor change it (the page answers 403 before the service is asked)
        svc.improvement_set_status(improvement_id=made.id, actor=agent, status="dropped")
    with pytest.raises(InvalidInput) as moved:
        svc.improvement_update(improvement_id=record(manager, team=desk).id, actor=manager, version=1, team=None)
    assert moved.value.field == "team"


def test_an_update_with_a_stale_version_is_refused_with_409(manager):
    made = record(manager)
    svc.improvement_update(improvement_id=made.id, actor=manager, version=1, title="Toner known error")
    with pytest.raises(StaleVersion) as stale:
        svc.improvement_update(improvement_id=made.id, actor=manager, version=1, title="Another title")
    assert stale.value.status_code == 409 and stale.value.field == "version"
    made.refresh_from_db()
    assert (made.title, made.version) == ("Toner known error", 2)
    row = AuditLog.objects.get(action="improvement.updated", object_id=str(made.id))
    assert row.changes == {"title": ["Answer printer tickets from a known error", "Toner known error"]}


def test_saving_what_is_there_changes_nothing(manager):
    made = record(manager)
    same = svc.improvement_update(improvement_id=made.id, actor=manager, version=1, title=made.title)
    assert same.version == 1
    assert not AuditLog.objects.filter(action="improvement.updated").exists()


def test_an_unknown_field_is_refused(manager):
    made = record(manager)
    with pytest.raises(InvalidInput) as refused:
        svc.improvement_update(improvement_id=made.id, actor=manager, version=1, status="done")
    assert refused.value.field == "status"


def test_done_sets_done_on_to_today_unless_given_and_reopening_clears_it(manager):
    today = timezone.localdate()
    made = record(manager, started_on=today - timedelta(days=10))
    done = svc.improvement_set_status(improvement_id=made.id, actor=manager, status="done", today=today)
    assert (done.status, done.done_on) == ("done", today)
    again = svc.improvement_set_status(improvement_id=made.id, actor=manager, status="in_progress")
    assert again.done_on is None
    given = svc.improvement_set_status(improvement_id=made.id, actor=manager, status="done",
                                       done_on=today - timedelta(days=3))
    assert given.done_on == today - timedelta(days=3)
    assert AuditLog.objects.filter(action="improvement.status", object_id=str(made.id)).count() == 3
    with pytest.raises(InvalidInput) as refused:
        svc.improvement_set_status(improvement_id=made.id, actor=manager, status="finished")
    assert refused.value.field == "status"


def test_it_links_tickets_by_number_and_names_an_unknown_one(manager, agent, incident_factory):
    first, second = incident_factory(), incident_factory(title="Toner again")
    made = record(manager, tickets=[first.number.lower()])
    assert list(made.tickets.values_list("number", flat=True)) == [first.number]
    linked = svc.improvement_link_tickets(improvement_id=made.id, actor=manager,
                                          tickets=f"{first.number}, {second.number}")
    assert linked == [second.number]
    assert ImprovementTicket.objects.get(number=second.number).title == "Toner again"
    with pytest.raises(InvalidInput) as refused:
        svc.improvement_link_tickets(improvement_id=made.id, actor=manager, tickets="INC9999999")
    assert refused.value.field == "tickets" and "INC9999999" in refused.value.message
    assert made.tickets.count() == 2
    with pytest.raises(NotAllowed):
        svc.improvement_link_tickets(improvement_id=made.id, actor=agent, tickets=first.number)


def test_a_bad_ticket_number_leaves_no_half_written_improvement(manager):
    with pytest.raises(InvalidInput):
        record(manager, tickets=["INC9999999"])
    assert not Improvement.objects.exists()


# --- who sees what -------------------------------------------------------------------------------------------


def test_admins_see_all_managers_their_teams_and_teamless_agents_their_teams(agent, manager, desk, network,
                                                                              admin_user):
    team, nils = network
    ours, teamless, theirs = record(manager, team=desk), record(admin_user, team=None), record(nils, team=team)
    assert set(svc.improvements_visible_to(admin_user)) == {ours, teamless, theirs}
    assert set(svc.improvements_visible_to(manager)) == {ours, teamless}
    assert set(svc.improvements_visible_to(nils)) == {theirs, teamless}
    assert set(svc.improvements_visible_to(agent)) == {ours}


# --- before and after ----------------------------------------------------------------------------------------


def resolved_incident(requester, agent, team, *, opened, hours):
    made = incident_create(title="Printer jammed", requester=requester, created_by=agent, assignment_group=team,
                           now=opened)
    incident_resolve(incident_id=made.id, actor=agent, resolution_code="fixed", resolution_notes="Cleared.",
                     now=opened + timedelta(hours=hours))
    return made


def test_before_and_after_are_the_measure_over_the_two_periods(manager, agent, requester, desk):
    today = timezone.localdate()
    started = today - timedelta(days=20)
    # Before (the 14 days ending the day before the start): resolved in 4 h and 8 h -> 6 h mean.
    resolved_incident(requester, agent, desk, opened=at(started - timedelta(days=10), 9), hours=4)
    resolved_incident(requester, agent, desk, opened=at(started - timedelta(days=3), 9), hours=8)
    # Outside both periods: ignored.
    resolved_incident(requester, agent, desk, opened=at(started - timedelta(days=30), 9), hours=50)
    # After (14 days from done_on): 1 h and 3 h -> 2 h mean.
    done_on = started + timedelta(days=2)
    resolved_incident(requester, agent, desk, opened=at(done_on + timedelta(days=1), 9), hours=1)
    resolved_incident(requester, agent, desk, opened=at(done_on + timedelta(days=5), 9), hours=3)
    made = record(manager, team=desk, started_on=started, baseline_days=14, target=3)
    made = svc.improvement_set_status(improvement_id=made.id, actor=manager, status="done", done_on=done_on)

    figures = svc.improvement_before_after(made, today=today)
    before_scope, before, after_scope, after, change, verdict = figures
    assert (before_scope.date_from, before_scope.date_to) == (started - timedelta(days=14),
                                                              started - timedelta(days=1))
    assert (after_scope.date_from, after_scope.date_to) == (done_on, done_on + timedelta(days=13))
    assert before == pytest.approx(6.0) and after == pytest.approx(2.0)
    assert change == pytest.approx(-4.0) and verdict == "better"  # lower is better for a time
    assert figures.after_complete and figures.target_met is True
    # What the register lists was stored by the status change.
    made.refresh_from_db()
    assert (made.before_value, made.after_value) == (pytest.approx(6.0), pytest.approx(2.0))


def test_while_in_progress_the_after_period_runs_from_the_start_to_today(manager, agent, requester, desk):
    today = timezone.localdate()
    started = today - timedelta(days=3)
    resolved_incident(requester, agent, desk, opened=at(started - timedelta(days=2), 9), hours=2)
    resolved_incident(requester, agent, desk, opened=at(started, 9), hours=5)
    made = record(manager, team=desk, started_on=started, baseline_days=30)
    figures = svc.improvement_before_after(made, today=today)
    assert (figures.after_scope.date_from, figures.after_scope.date_to) == (started, today)
    assert not figures.after_complete
    assert (figures.before_value, figures.after_value) == (pytest.approx(2.0), pytest.approx(5.0))
    assert figures.verdict == "worse"


def test_nothing_is_measurable_before_the_start_or_without_tickets(manager):
    today = timezone.localdate()
    made = record(manager, started_on=today + timedelta(days=5))
    figures = svc.improvement_before_after(made, today=today)
    assert figures.after_scope is None and figures.verdict == "not yet measurable"


def test_a_count_is_not_compared_until_its_after_period_is_complete():
    from insights.measures import MEASURES

    assert svc.verdict_of(MEASURES["opened"], 10, 4, complete=False) == "not yet measurable"
    assert svc.verdict_of(MEASURES["opened"], 10, 4, complete=True) == "lower"
    assert svc.verdict_of(MEASURES["sla_compliance"], 80, 90) == "better"
    assert svc.verdict_of(MEASURES["sla_compliance"], 80, 80) == "same"
    assert svc.target_met(MEASURES["resolve_mean"], 4, 5) is False
    assert svc.target_met(MEASURES["sla_compliance"], 90, 95) is True


# --- pages ---------------------------------------------------------------------------------------------------


def test_the_register_lists_before_and_after_in_a_constant_number_of_queries(client, manager, desk):
    client.force_login(manager)
    url = reverse("agent:insights_improvements")
    record(manager, team=desk)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        response = client.get(url)
    assert response.status_code == 200
    for n in range(5):
        record(manager, title=f"Improvement {n}", team=desk)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.content.count(b'data-testid="improvement-row"') == 6
    assert len(many) == len(few)


def test_the_register_flags_overdue_and_filters(client, manager, desk):
    today = timezone.localdate()
    late = record(manager, title="Late one", team=desk, started_on=today - timedelta(days=20),
                  due_on=today - timedelta(days=1))
    other = Team.objects.create(name="Apps", lead=manager)
    on_time = record(manager, title="On time", measure="sla_compliance", team=other,
                     due_on=today + timedelta(days=9))
    client.force_login(manager)
    url = reverse("agent:insights_improvements")
    page = client.get(url, {"status": "overdue"}).content.decode()
    assert "Late one" in page and "On time" not in page
    rows = re.findall(r'<tr data-testid="improvement-row" data-id="(\d+)">(.*?)</tr>', page, re.S)
    assert [(int(i), 'data-testid="overdue"' in html) for i, html in rows] == [(late.id, True)]
    page = client.get(url, {"status": "open"}).content.decode()
    flags = {int(i): 'data-testid="overdue"' in html
             for i, html in re.findall(r'<tr data-testid="improvement-row" data-id="(\d+)">(.*?)</tr>', page, re.S)}
    assert flags == {late.id: True, on_time.id: False}  # the flag is on the late one only
    page = client.get(url, {"measure": "sla_compliance"}).content.decode()
    assert "On time" in page and "Late one" not in page
    page = client.get(url, {"team": str(desk.id)}).content.decode()
    assert "Late one" in page and "On time" not in page


def test_a_manager_records_one_in_the_form_and_errors_name_the_field(client, manager, desk):
    client.force_login(manager)
    url = reverse("agent:insights_improvement_new")
    assert client.get(url).status_code == 200
    data = {"title": "", "why": "Slow", "owner": manager.id, "measure": "resolve_mean", "team": desk.id,
            "started_on": timezone.localdate().isoformat(), "baseline_days": 30}
    bad = client.post(url, data)
    assert bad.status_code == 400 and b'data-testid="error-title"' in bad.content
    data["title"] = "Known error for the toner"
    done = client.post(url, data)
    made = Improvement.objects.get()
    assert done.status_code == 302 and done["Location"] == reverse("agent:insights_improvement",
                                                                   kwargs={"improvement_id": made.id})
    assert made.team == desk


def test_agents_read_but_posting_is_403(client, agent, manager, desk):
    made = record(manager, team=desk)
    client.force_login(agent)
    page = client.get(reverse("agent:insights_improvement", kwargs={"improvement_id": made.id}))
    assert page.status_code == 200 and b'data-testid="move-in_progress"' not in page.content
    assert client.post(reverse("agent:insights_improvement_new"), {"title": "x"}).status_code == 403
    response = client.post(reverse("agent:insights_improvement", kwargs={"improvement_id": made.id}),
                           {"action": "status", "status": "done"})
    assert response.status_code == 403
    made.refresh_from_db()
    assert made.status == "planned"


def test_the_detail_page_moves_the_status_links_tickets_and_shows_the_periods(client, manager, desk,
                                                                               incident_factory):
    made = record(manager, team=desk, started_on=timezone.localdate() - timedelta(days=5), baseline_days=14)
    incident = incident_factory()
    client.force_login(manager)
    url = reverse("agent:insights_improvement", kwargs={"improvement_id": made.id})
    page = client.get(url).content.decode()
    before = made.started_on - timedelta(days=14)
    assert f"{before:%-d %b %Y} – {made.started_on - timedelta(days=1):%-d %b %Y}" in page
    assert 'data-testid="improvement-chart-empty"' in page  # nothing resolved in these weeks
    moved = client.post(url, {"action": "status", "status": "in_progress", "version": made.version})
    assert moved.status_code == 302
    made.refresh_from_db()
    assert made.status == "in_progress"
    stale = client.post(url, {"action": "status", "status": "done", "version": 1})
    assert stale.status_code == 409
    unknown = client.post(url, {"action": "link", "tickets": "INC9999999"})
    assert unknown.status_code == 400 and b"INC9999999" in unknown.content
    assert client.post(url, {"action": "link", "tickets": incident.number}).status_code == 302
    page = client.get(url).content.decode()
    assert reverse("agent:incident", kwargs={"number": incident.number}) in page


def test_the_edit_form_saves_through_the_service(client, manager, desk):
    made = record(manager, team=desk)
    client.force_login(manager)
    url = reverse("agent:insights_improvement_edit", kwargs={"improvement_id": made.id})
    assert client.get(url).status_code == 200
    data = {"title": "Renamed", "why": made.why, "owner": manager.id, "measure": "resolve_p90", "team": desk.id,
            "started_on": made.started_on.isoformat(), "baseline_days": 30, "version": made.version}
    assert client.post(url, data).status_code == 302
    made.refresh_from_db()
    assert (made.title, made.measure, made.version) == ("Renamed", "resolve_p90", 2)
    assert client.post(url, data | {"title": "Again"}).status_code == 409


def test_the_register_exports_as_csv(client, manager, desk):
    record(manager, title="Exported improvement", team=desk)
    client.force_login(manager)
    response = client.get(reverse("agent:insights_improvements"), {"export": "csv"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "Exported improvement" in body and "Before" in body.splitlines()[0]
    assert client.get(reverse("agent:insights_improvements"), {"export": "pdf"}).status_code == 400


def test_a_count_from_the_daily_rollup_before_and_after(manager, agent, requester, desk):
    from insights.rollup import rollup_days

    today = timezone.localdate()
    started = today - timedelta(days=20)
    done_on = started + timedelta(days=1)
    for day in (started - timedelta(days=6), started - timedelta(days=4), started - timedelta(days=1)):
        resolved_incident(requester, agent, desk, opened=at(day, 10), hours=1)
    resolved_incident(requester, agent, desk, opened=at(done_on + timedelta(days=2), 10), hours=1)
    rollup_days([started - timedelta(days=n) for n in range(-20, 10)])
    made = record(manager, team=desk, measure="resolved", started_on=started, baseline_days=7)
    made = svc.improvement_set_status(improvement_id=made.id, actor=manager, status="done", done_on=done_on)
    figures = svc.improvement_before_after(made, today=today)
    assert (figures.before_value, figures.after_value, figures.change) == (3, 1, -2)
    assert figures.verdict == "lower"  # a volume: neither better nor worse


def test_admin_lists_improvements_read_only_and_subscriptions(admin_client, manager, desk):
    from insights.subscriptions import subscription_set

    made = record(manager, team=desk, tickets=())
    subscription_set(user=manager)
    page = admin_client.get(reverse("admin:insights_improvement_changelist"))
    assert page.status_code == 200 and made.title.encode() in page.content
    assert admin_client.get(reverse("admin:insights_improvement_change", args=[made.id])).status_code == 200
    assert admin_client.get(reverse("admin:insights_subscription_changelist")).status_code == 200


# --- review fixes: figures only for the viewer's teams ------------------------------------------------------


@pytest.fixture
def mixed(manager, agent, requester, desk, network, admin_user):
    """Three entries the manager sees: their team's, a team-less one (an admin's), and one of Network that the
    Service Desk agent owns (the manager recorded none of Network; an admin did). Each has a figure before."""
    team, _ = network
    started = timezone.localdate() - timedelta(days=5)
    for group in (desk, team):  # resolved in 4 h in both teams, before the start
        resolved_incident(requester, agent, group, opened=at(started - timedelta(days=3), 9), hours=4)
    ours = record(manager, title="Ours", team=desk, started_on=started, baseline_days=14)
    everyone = record(admin_user, title="Everyone", team=None, started_on=started, baseline_days=14)
    theirs = record(admin_user, title="Theirs", team=team, owner=agent, started_on=started, baseline_days=14)
    return {"ours": ours, "everyone": everyone, "theirs": theirs}


def test_figures_are_for_viewers_who_see_the_team_and_team_less_ones_for_admins_only(manager, agent, admin_user,
                                                                                     mixed):
    ours, everyone, theirs = mixed["ours"], mixed["everyone"], mixed["theirs"]
    assert {i.id for i in svc.improvements_visible_to(manager)} == {ours.id, everyone.id}
    assert {i.id for i in svc.improvements_visible_to(agent)} == {ours.id, theirs.id}  # theirs: the owner
    assert [svc.figures_visible(admin_user, i) for i in (ours, everyone, theirs)] == [True, True, True]
    assert [svc.figures_visible(manager, i) for i in (ours, everyone)] == [True, False]
    assert [svc.figures_visible(agent, i) for i in (ours, theirs)] == [True, False]


def rows_of_register(html: str) -> dict[str, str]:
    return {re.search(r'">([^<]+)</a>', row).group(1): re.search(r'data-testid="before-after">(.*?)</td>', row,
                                                                 re.S).group(1)
            for row in re.findall(r'<tr data-testid="improvement-row".*?</tr>', html, re.S)}


def test_the_register_shows_a_dash_and_a_note_where_the_figures_are_not_the_viewers(client, manager, agent,
                                                                                  admin_user, mixed):
    url = reverse("agent:insights_improvements")
    client.force_login(manager)
    page = client.get(url).content.decode()
    cells = rows_of_register(page)
    assert "4 h" in cells["Ours"] and "4 h" not in cells["Everyone"]
    assert "<span>–</span>" in cells["Everyone"] and 'data-testid="figures-hidden"' in cells["Everyone"]
    assert "figures of teams you are not in are not shown" in page
    client.force_login(agent)
    cells = rows_of_register(client.get(url).content.decode())
    assert "4 h" in cells["Ours"] and "4 h" not in cells["Theirs"] and "<span>–</span>" in cells["Theirs"]
    client.force_login(admin_user)
    page = client.get(url).content.decode()
    assert all("4 h" in cell for cell in rows_of_register(page).values())
    assert "figures of teams you are not in" not in page


def test_the_export_leaves_out_the_figures_the_viewer_may_not_read(client, manager, mixed):
    import csv
    import io

    client.force_login(manager)
    response = client.get(reverse("agent:insights_improvements"), {"export": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    by_title = {r["Title"]: r for r in rows}
    assert set(by_title) == {"Ours", "Everyone"}
    assert by_title["Ours"]["Before"] == "4.0" and by_title["Ours"]["Note"] == ""
    hidden = by_title["Everyone"]
    assert (hidden["Before"], hidden["After"], hidden["Verdict"], hidden["Measured at"]) == ("", "", "", "")
    assert hidden["Note"] == "Figures of teams you are not in are not shown"


def test_the_xlsx_export_leaves_them_out_too(client, agent, mixed):
    from tests.export_reading import xlsx_book

    client.force_login(agent)
    sheet = xlsx_book(client.get(reverse("agent:insights_improvements"), {"export": "xlsx"})).active
    rows = list(sheet.iter_rows(values_only=True))
    head = rows[0]
    by_title = {r[0]: dict(zip(head, r, strict=True)) for r in rows[1:]}
    assert by_title["Ours"]["Before"] == 4.0
    assert by_title["Theirs"]["Before"] is None and by_title["Theirs"]["Note"].startswith("Figures of teams")


def test_the_detail_page_shows_no_figure_nor_chart_of_another_team(client, manager, agent, admin_user, mixed):
    def page(user, improvement):
        client.force_login(user)
        return client.get(reverse("agent:insights_improvement", kwargs={"improvement_id": improvement.id})) \
            .content.decode()

    hidden = page(manager, mixed["everyone"])
    assert 'data-testid="figures-hidden"' in hidden and "4 h" not in hidden
    assert 'data-testid="improvement-chart"' not in hidden and 'data-testid="verdict"' not in hidden
    assert re.search(r'data-testid="before-value">–<', hidden)
    owner = page(agent, mixed["theirs"])
    assert 'data-testid="figures-hidden"' in owner and "4 h" not in owner
    shown = page(admin_user, mixed["everyone"])
    assert 'data-testid="figures-hidden"' not in shown and 'data-testid="before-value">4 h<' in shown
    assert 'data-testid="improvement-chart"' in shown


def test_a_manager_gets_400_naming_team_for_an_improvement_of_all_teams_in_the_form(client, manager, desk):
    client.force_login(manager)
    url = reverse("agent:insights_improvement_new")
    data = {"title": "For everyone", "why": "Slow", "owner": manager.id, "measure": "resolve_mean", "team": "",
            "started_on": timezone.localdate().isoformat(), "baseline_days": 30}
    response = client.post(url, data)
    assert response.status_code == 400
    assert re.search(r'data-testid="error-team">[^<]*one of your teams', response.content.decode())
    assert not Improvement.objects.exists()


# --- review fixes: bad input is a field-named 400, never a 500 ------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("started_on", "0001-01-05"),
    ("started_on", "9999-12-31"),
    ("due_on", "9999-12-31"),
    ("due_on", "1999-12-31"),
])
def test_the_form_names_a_date_out_of_range(client, manager, desk, field, value):
    client.force_login(manager)
    data = {"title": "Dates", "why": "Slow", "owner": manager.id, "measure": "resolve_mean", "team": desk.id,
            "started_on": timezone.localdate().isoformat(), "baseline_days": 30, field: value}
    response = client.post(reverse("agent:insights_improvement_new"), data)
    assert response.status_code == 400
    assert f'data-testid="error-{field}"' in response.content.decode()
    assert not Improvement.objects.exists()


def test_the_services_name_a_date_out_of_range(manager, desk):
    from datetime import date

    with pytest.raises(InvalidInput) as early:
        record(manager, started_on=date(1, 1, 5))
    assert early.value.field == "started_on"
    with pytest.raises(InvalidInput) as late:
        record(manager, due_on=date(9999, 12, 31))
    assert late.value.field == "due_on"
    made = record(manager)
    with pytest.raises(InvalidInput) as done:
        svc.improvement_set_status(improvement_id=made.id, actor=manager, status="done", done_on=date(1999, 1, 1))
    assert done.value.field == "done_on"


def test_a_bad_version_is_a_400_naming_version_and_changes_nothing(client, manager, desk):
    made = record(manager, team=desk)
    client.force_login(manager)
    url = reverse("agent:insights_improvement_edit", kwargs={"improvement_id": made.id})
    data = {"title": "Renamed", "why": made.why, "owner": manager.id, "measure": "resolve_mean", "team": desk.id,
            "started_on": made.started_on.isoformat(), "baseline_days": 30, "version": "abc"}
    response = client.post(url, data)
    assert response.status_code == 400 and b"version" in response.content
    detail = reverse("agent:insights_improvement", kwargs={"improvement_id": made.id})
    status = client.post(detail, {"action": "status", "status": "done", "version": "abc"})
    assert status.status_code == 400 and b"<strong>version</strong>" in status.content
    with pytest.raises(InvalidInput) as refused:
        svc.improvement_update(improvement_id=made.id, actor=manager, version="abc", title="Again")
    assert refused.value.field == "version"
    made.refresh_from_db()
    assert (made.title, made.status, made.version) == ("Answer printer tickets from a known error", "planned", 1)


@pytest.mark.parametrize("team", ["²", "٣x", "-", "1e3"])
def test_a_team_filter_that_is_not_a_number_is_ignored(client, manager, desk, team):
    record(manager, team=desk)
    client.force_login(manager)
    response = client.get(reverse("agent:insights_improvements"), {"team": team})
    assert response.status_code == 200 and response.content.count(b'data-testid="improvement-row"') == 1


# --- review fixes: the chart's buckets, the cap on links, the daily refresh -----------------------------------


@pytest.mark.parametrize(("days", "bucket", "per_phase"), [(14, "week", 2), (182, "week", 26), (183, "month", 7),
                                                            (366, "month", 14)])
def test_the_chart_draws_both_phases_in_weeks_or_months_within_a_bounded_number_of_queries(
        client, admin_user, agent, requester, desk, days, bucket, per_phase, django_assert_max_num_queries):

    today = timezone.localdate()
    started = today - timedelta(days=days + 10)
    resolved_incident(requester, agent, desk, opened=at(started - timedelta(days=days), 9), hours=4)  # first day
    resolved_incident(requester, agent, desk, opened=at(started + timedelta(days=days - 2), 9), hours=2)  # last
    made = record(admin_user, team=None, started_on=started, baseline_days=days)
    made = svc.improvement_set_status(improvement_id=made.id, actor=admin_user, status="done", done_on=started)
    client.force_login(admin_user)
    url = reverse("agent:insights_improvement", kwargs={"improvement_id": made.id})
    # The chart is one measure_series per phase (at most two queries each), whatever the number of buckets; the
    # rest of the page (the live before/after, the sidebar, the linked tickets) is a few dozen.
    with django_assert_max_num_queries(45):
        page = client.get(url).content.decode()
    from insights.views_improvements import weekly_points

    got, points = weekly_points(made, svc.improvement_before_after(made, today=today), today=today)
    phases = [p["phase"] for p in points]
    assert got == bucket and f"per {bucket}" in page
    assert page.count('<rect class="imp-bar') == len(points)
    assert points[0]["display"] == "4 h" and points[-1]["display"] == "2 h"  # both ends of both periods drawn
    assert phases.count("before") <= per_phase and phases.count("after") <= per_phase
    assert phases.count("before") >= per_phase - 1 and phases.count("after") >= per_phase - 1
    assert points[0]["from"] == started - timedelta(days=days)  # the whole before period, from its first day
    assert points[-1]["to"] == started + timedelta(days=days - 1)  # and the whole after period


def test_an_improvement_links_at_most_fifty_tickets_in_all(manager, desk, incident_factory):
    made = record(manager, team=desk)
    ImprovementTicket.objects.bulk_create(ImprovementTicket(improvement=made, kind="incident",
                                                            number=f"INC9{n:06d}") for n in range(svc.MAX_TICKETS))
    extra = incident_factory()
    with pytest.raises(InvalidInput) as refused:
        svc.improvement_link_tickets(improvement_id=made.id, actor=manager, tickets=extra.number)
    assert refused.value.field == "tickets" and "at most 50" in refused.value.message
    assert made.tickets.count() == svc.MAX_TICKETS
    ImprovementTicket.objects.filter(improvement=made).first().delete()
    assert svc.improvement_link_tickets(improvement_id=made.id, actor=manager, tickets=extra.number) == [extra.number]
    assert made.tickets.count() == svc.MAX_TICKETS


def test_the_daily_refresh_measures_the_others_when_one_fails(manager, desk, caplog):
    from datetime import date

    broken, fine = record(manager, title="Broken"), record(manager, title="Fine")
    # An invalid row (no service writes it any more): its before period would start before year 1.
    Improvement.objects.filter(id=broken.id).update(started_on=date(1, 1, 5), measured_at=None)
    Improvement.objects.filter(id=fine.id).update(measured_at=None)
    with caplog.at_level("ERROR", logger="insights.improvements"):
        assert svc.improvements_measure_all() == 1
    assert Improvement.objects.get(id=fine.id).measured_at is not None
    assert Improvement.objects.get(id=broken.id).measured_at is None
    assert f"improvement {broken.id} could not be measured" in caplog.text
