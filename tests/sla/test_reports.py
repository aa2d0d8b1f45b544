"""SLA compliance report: the figures against a fixture computed by hand, permissions, parameters, constant
queries, the breached list (named through the incidents adapter), the CSV export and the workspace page."""

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.services import incident_assign, incident_resolve
from servicedesk.models import Team
from sla.clock import Calendar
from sla.models import BusinessCalendar, ClockState, SlaClock, SlaPolicy, SlaTarget
from sla.reports import ReportParams, due_of, percentile_cont, report_params, sla_report

pytestmark = pytest.mark.django_db

URL = "/api/v1/sla/report/"
PAGE = "/agent/sla/report/"
MARCH = "from=2026-03-01&to=2026-03-31"


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    """An instant in March 2026 (or `month`), in the site's time zone, whose days the report counts."""
    return timezone.make_aware(datetime(2026, month, day, hour))


@pytest.fixture
def always(db):
    return BusinessCalendar.objects.create(name="Always", is_24x7=True)


@pytest.fixture
def teams(db):
    return Team.objects.get_or_create(name="Network")[0], Team.objects.get_or_create(name="Desk")[0]


_ids = iter(range(10_000, 1_000_000))


def clock(calendar, kind, state, elapsed=0.0, *, stopped=None, team=None, priority=3, policy="Standard",
          breached=None, ticket_type="incident", target=1800, ticket_id=None, segments=None):
    """A clock row written as the clocks would leave it (stopped, or still open)."""
    if state == ClockState.BREACHED and breached is None:
        breached = stopped
    return SlaClock.objects.create(
        ticket_type=ticket_type, ticket_id=ticket_id or next(_ids), kind=kind, state=state, team=team,
        calendar=calendar, priority=priority, target_seconds=target, policy_name=policy,
        started_at=(stopped or breached or at(1)) - timedelta(seconds=elapsed), elapsed_seconds=elapsed,
        stopped_at=stopped, breached_at=breached,
        running_since=(stopped or at(20)) if state == ClockState.RUNNING else None, segments=segments or [],
    )


@pytest.fixture
def march(always, teams):
    """The hand fixture. In March: Network's first responses 600 s, 1200 s, 1800 s met and 3600 s breached;
    its resolutions 7200 s met and 18000 s breached; Desk's first response 300 s met and one resolution still
    running that breached on the 10th; a resolution without team breached at 9000 s. Left out: clocks stopped
    just outside March, a cancelled clock, an OLA clock, a clock of an unregistered ticket type and an open
    clock that breached in April."""
    network, desk = teams
    fr, res = "first_response", "resolution"
    met, late = ClockState.MET, ClockState.BREACHED
    for elapsed, state, priority in ((600, met, 2), (1200, met, 2), (1800, met, 3), (3600, late, 1)):
        clock(always, fr, state, elapsed, stopped=at(5), team=network, priority=priority)
    clock(always, res, met, 7200, stopped=at(1, 0), team=network, priority=2, policy="Gold")
    clock(always, res, late, 18000, stopped=at(31, 23), team=network, priority=1, policy="Gold")
    clock(always, fr, met, 300, stopped=at(12), team=desk, priority=3)
    clock(always, res, ClockState.RUNNING, 0, breached=at(10), team=desk, priority=3)
    clock(always, res, late, 9000, stopped=at(20), team=None, priority=3)
    # Outside the report:
    clock(always, fr, met, 60, stopped=at(28, 23, month=2), team=network)
    clock(always, fr, met, 60, stopped=at(1, 0, month=4), team=network)
    clock(always, fr, ClockState.CANCELLED, 60, stopped=at(6), team=network)
    clock(always, "ola", late, 99999, stopped=at(6), team=network)
    clock(always, fr, late, 99999, stopped=at(6), team=network, ticket_type="change")
    clock(always, res, ClockState.PAUSED, 0, breached=at(2, month=4), team=desk)
    return network, desk


def figures(stopped, met, breached, compliance, mean, p90, open_breached=0):
    return {"stopped": stopped, "met": met, "breached": breached, "compliance": compliance,
            "mean_seconds": mean, "p90_seconds": p90, "open_breached": open_breached}


NO_FIGURES = figures(0, 0, 0, None, None, None)


@pytest.fixture
def manager(make_user):
    return make_user("manager", username="maria", first_name="Maria", last_name="Manager", teams=["Network"])


# --- figures --------------------------------------------------------------------------------------------


def test_it_reports_each_team_against_the_hand_computed_figures(client_for, manager, march):
    network, desk = march
    body = client_for(manager).get(f"{URL}?{MARCH}&group_by=team").json()

    assert body["from"] == "2026-03-01" and body["to"] == "2026-03-31" and body["group_by"] == "team"
    assert body["kinds"] == ["first_response", "resolution"] and body["ticket_types"] == ["incident", "request"]  # every registered type
    assert body["groups"] == [
        {"key": desk.id, "label": "Desk",
         "first_response": figures(1, 1, 0, 100.0, 300.0, 300.0),
         "resolution": figures(0, 0, 0, None, None, None, open_breached=1)},
        # p90 of 600, 1200, 1800, 3600: position 2.7 -> 1800 + 0.7 * 1800; of 7200, 18000: 7200 + 0.9 * 10800.
        {"key": network.id, "label": "Network",
         "first_response": figures(4, 3, 1, 75.0, 1800.0, 3060.0),
         "resolution": figures(2, 1, 1, 50.0, 12600.0, 16920.0)},
        {"key": None, "label": "No team",
         "first_response": NO_FIGURES,
         "resolution": figures(1, 0, 1, 0.0, 9000.0, 9000.0)},
    ]
    # Of 300, 600, 1200, 1800, 3600: position 3.6 -> 1800 + 0.6 * 1800; of 7200, 9000, 18000: 9000 + 0.8 * 9000.
    assert body["totals"] == {
        "first_response": figures(5, 4, 1, 80.0, 1500.0, 2880.0),
        "resolution": figures(3, 1, 2, 33.3, 11400.0, 16200.0, open_breached=1),
    }


def test_it_groups_by_priority_and_by_policy_name(client_for, manager, march):
    client = client_for(manager)
    by_priority = client.get(f"{URL}?{MARCH}&group_by=priority").json()["groups"]
    assert [(g["key"], g["label"]) for g in by_priority] == [(1, "P1"), (2, "P2"), (3, "P3")]
    p1, p2, p3 = by_priority
    assert p1["first_response"] == figures(1, 0, 1, 0.0, 3600.0, 3600.0)
    assert p2["first_response"] == figures(2, 2, 0, 100.0, 900.0, 1140.0)  # 600 + 0.9 * 600
    assert p3["resolution"] == figures(1, 0, 1, 0.0, 9000.0, 9000.0, open_breached=1)

    by_policy = client.get(f"{URL}?{MARCH}&group_by=policy").json()["groups"]
    assert [g["label"] for g in by_policy] == ["Gold", "Standard"]
    assert by_policy[0]["resolution"] == figures(2, 1, 1, 50.0, 12600.0, 16920.0)
    assert by_policy[0]["first_response"] == NO_FIGURES
    assert by_policy[1]["first_response"] == figures(5, 4, 1, 80.0, 1500.0, 2880.0)


def test_one_kind_asked_for_is_the_only_one_reported(client_for, manager, march):
    body = client_for(manager).get(f"{URL}?{MARCH}&group_by=team&kind=resolution").json()
    assert body["kinds"] == ["resolution"]
    assert all(set(g) == {"key", "label", "resolution"} for g in body["groups"])
    assert [g["label"] for g in body["groups"]] == ["Desk", "Network", "No team"]  # Desk by its open breach
    assert set(body["totals"]) == {"resolution"}


def test_the_sqlite_fallback_gives_the_same_percentiles_as_postgresql(march):
    params = ReportParams(datetime(2026, 3, 1).date(), datetime(2026, 3, 31).date(), "team",
                          ticket_types=("incident",))
    in_sql = sla_report(params, sql_percentile=True)
    in_python = sla_report(params, sql_percentile=False)
    assert connection.vendor == "postgresql"
    assert [g.as_dict(params.kinds) for g in in_sql.groups] == [g.as_dict(params.kinds) for g in in_python.groups]
    assert {k: f.as_dict() for k, f in in_sql.totals.items()} == {k: f.as_dict() for k, f in in_python.totals.items()}
    assert in_python.totals["first_response"].p90_seconds == pytest.approx(2880.0)


@pytest.mark.parametrize("values, expected", [
    ([], None), ([5.0], 5.0), ([1.0, 2.0], 1.9), ([10.0, 20.0, 30.0, 40.0, 50.0], 46.0),
])
def test_percentile_cont_interpolates_like_postgresql(values, expected):
    assert percentile_cont(values, 0.9) == pytest.approx(expected) if expected is not None else \
        percentile_cont(values, 0.9) is None


def test_the_period_is_whole_days_in_the_site_time_zone(settings, always, teams):
    settings.TIME_ZONE = "Europe/Paris"
    paris = ZoneInfo("Europe/Paris")
    with timezone.override(paris):
        clock(always, "first_response", ClockState.MET, 60, stopped=datetime(2026, 3, 1, 0, 30, tzinfo=paris))
        clock(always, "first_response", ClockState.MET, 60, stopped=datetime(2026, 2, 28, 23, 30, tzinfo=paris))
        params = report_params({"from": "2026-03-01", "to": "2026-03-01", "group_by": "team"})
        assert params.start == datetime(2026, 3, 1, tzinfo=paris)
        report = sla_report(params)
    assert report.totals["first_response"].met == 1


# --- permissions ----------------------------------------------------------------------------------------


def test_requesters_and_agents_get_403_managers_and_admins_200(client_for, requester, agent, manager,
                                                                admin_user):
    path = f"{URL}?{MARCH}&group_by=team"
    assert client_for(requester).get(path).status_code == 403
    assert client_for(agent).get(path).status_code == 403
    assert client_for(manager).get(path).status_code == 200
    assert client_for(admin_user).get(path).status_code == 200


def test_anonymous_callers_get_401(api_client):
    assert api_client.get(f"{URL}?{MARCH}&group_by=team").status_code == 401


def test_the_page_and_its_csv_are_for_managers_and_admins_only(client, requester, agent, manager, admin_user):
    for user, status in ((requester, 403), (agent, 403), (manager, 200), (admin_user, 200)):
        client.force_login(user)
        assert client.get(PAGE).status_code == status, user.username
        assert client.get(f"{PAGE}?format=csv").status_code == status, user.username


def test_the_reports_link_is_in_the_sidebar_of_managers_only(client, agent, manager):
    client.force_login(agent)
    page = client.get("/agent/").content.decode()
    assert 'data-testid="nav-sla-report"' not in page and 'id="nav-reports"' not in page
    client.force_login(manager)
    page = client.get("/agent/").content.decode()
    assert 'data-testid="nav-sla-report"' in page and f'href="{PAGE}"' in page


# --- parameters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("query, field", [
    ("to=2026-03-31&group_by=team", "from"),
    ("from=2026-03-01&group_by=team", "to"),
    (MARCH, "group_by"),
    (f"{MARCH}&group_by=service", "group_by"),
    ("from=2026-3-1&to=2026-03-31&group_by=team", "from"),
    ("from=2026-03-01&to=2026-02-30&group_by=team", "to"),
    ("from=2026-03-31&to=2026-03-01&group_by=team", "to"),
    ("from=2025-01-01&to=2026-01-02&group_by=team", "to"),
    (f"{MARCH}&group_by=team&kind=ola", "kind"),
    (f"{MARCH}&group_by=team&ticket_type=change", "ticket_type"),
])
def test_a_bad_or_missing_parameter_is_a_400_naming_it(client_for, manager, query, field):
    response = client_for(manager).get(f"{URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [field], response.json()


def test_a_period_of_366_days_is_accepted_and_the_to_before_from_message_says_so(client_for, manager):
    client = client_for(manager)
    assert client.get(f"{URL}?from=2024-01-01&to=2024-12-31&group_by=team").status_code == 200  # leap year
    message = client.get(f"{URL}?from=2026-03-31&to=2026-03-01&group_by=team").json()["to"][0]
    assert "before from" in message


def test_the_page_shows_bad_parameters_with_a_400_and_defaults_to_the_last_30_days(client, manager):
    client.force_login(manager)
    response = client.get(f"{PAGE}?from=2026-03-31&to=2026-03-01")
    assert response.status_code == 400
    assert 'data-testid="report-errors"' in response.content.decode()
    response = client.get(PAGE)
    today = timezone.localdate()
    assert response.status_code == 200
    assert response.context["params"].date_to == today
    assert response.context["params"].date_from == today - timedelta(days=29)
    assert response.context["params"].group_by == "team"


# --- queries --------------------------------------------------------------------------------------------


def _groups_of(n, always):
    for i in range(n):
        team = Team.objects.create(name=f"Bulk {n}-{i}")
        for state in (ClockState.MET, ClockState.BREACHED):
            for kind in ("first_response", "resolution"):
                clock(always, kind, state, 100 * (i + 1), stopped=at(3), team=team)
        clock(always, "resolution", ClockState.RUNNING, 0, breached=at(4), team=team)


def _count(client, path) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries), response


@pytest.mark.parametrize("group_by", ["team", "priority", "policy"])
def test_the_report_costs_the_same_queries_for_2_and_20_groups(client_for, manager, always, group_by):
    client = client_for(manager)
    path = f"{URL}?{MARCH}&group_by={group_by}&page_size=50"
    _groups_of(2, always)
    few, _ = _count(client, path)
    _groups_of(18, always)
    many, response = _count(client, path)
    assert many == few
    if group_by == "team":
        assert len(response.json()["groups"]) == 20
    assert response.json()["breached"]["count"] == 60 and len(response.json()["breached"]["results"]) == 50


def test_the_page_costs_the_same_queries_for_2_and_20_groups(client, manager, always):
    client.force_login(manager)
    _groups_of(2, always)
    few, _ = _count(client, f"{PAGE}?{MARCH}")
    _groups_of(18, always)
    many, response = _count(client, f"{PAGE}?{MARCH}")
    assert many == few
    assert len(response.context["rows"]) == 20 and len(response.context["breached"]) == 25


def test_it_reads_stopped_clocks_through_the_stopped_index(always, teams):
    _groups_of(3, always)
    params = report_params({"from": "2026-03-01", "to": "2026-03-31", "group_by": "team"})
    from sla.reports import stopped_clocks

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a handful of rows: make the planner show what it can use
        plan = stopped_clocks(params).explain()
        cursor.execute("RESET enable_seqscan")
    assert "sla_clock_stopped_idx" in plan


# --- breached tickets -----------------------------------------------------------------------------------


@pytest.fixture
def office_policy(office):
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Office 4h", order=1, calendar=office)
    SlaTarget.objects.bulk_create([
        SlaTarget(policy=policy, priority=p, first_response_minutes=60, resolution_minutes=240) for p in range(1, 6)
    ])
    return policy


def test_breached_tickets_are_named_by_the_adapter_with_their_due_instant(client_for, manager, agent,
                                                                          office_policy, incident_factory):
    london = ZoneInfo("Europe/London")
    incident = incident_factory(title="VPN down", now=datetime(2026, 3, 2, 9, 0, tzinfo=london))  # a Monday
    desk = Team.objects.get(name="Service Desk")
    incident_assign(incident_id=incident.id, actor=agent, assignment_group=desk)
    # Resolved on Tuesday 13:00: 12 business hours, past both targets (1 h and 4 h).
    incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="Done",
                     now=datetime(2026, 3, 3, 13, 0, tzinfo=london))

    body = client_for(manager).get(f"{URL}?{MARCH}&group_by=team").json()

    rows = sorted(body["breached"]["results"], key=lambda r: r["kind"])
    assert [(r["number"], r["kind"], r["state"], r["team"], r["policy"]) for r in rows] == [
        (incident.number, "first_response", "breached", "Service Desk", "Office 4h"),
        (incident.number, "resolution", "breached", "Service Desk", "Office 4h"),
    ]
    assert rows[0]["ticket_type"] == "incident" and rows[0]["ticket_id"] == incident.id
    assert rows[0]["title"] == "VPN down" and rows[0]["url"] == f"/agent/incidents/{incident.number}/"
    due = {r["kind"]: datetime.fromisoformat(r["due_at"]) for r in rows}
    assert due == {"first_response": datetime(2026, 3, 2, 10, 0, tzinfo=london),
                   "resolution": datetime(2026, 3, 2, 13, 0, tzinfo=london)}
    assert datetime.fromisoformat(rows[0]["breached_at"]) == datetime(2026, 3, 3, 13, 0, tzinfo=london)
    [group] = body["groups"]
    assert group["label"] == "Service Desk"
    assert group["resolution"]["breached"] == 1 and group["resolution"]["mean_seconds"] == 12 * 3600


def test_the_due_instant_is_where_the_running_time_passed_the_target(always):
    cal = Calendar.always("UTC")
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("UTC"))

    def hours(n):
        return (t0 + timedelta(hours=n)).isoformat()

    ran_1h = {"state": "running", "from": hours(0), "to": hours(1), "seconds": 3600}
    paused = {"state": "paused", "from": hours(1), "to": hours(5), "seconds": 14400}
    # Paused after 1 h of a 30 min target: due 30 min in.
    late_then_paused = clock(always, "resolution", ClockState.PAUSED, 3600, breached=at(2), target=1800,
                             segments=[ran_1h, {**paused, "to": None, "seconds": None}])
    assert due_of(late_then_paused, cal) == t0 + timedelta(minutes=30)
    # Stopped late after 1 h, a 4 h pause, then 1 h more, with a 90 min target: due 30 min after the pause.
    stopped = clock(always, "resolution", ClockState.BREACHED, 7200, stopped=at(3), target=5400, segments=[
        ran_1h, paused, {"state": "running", "from": hours(5), "to": hours(6), "seconds": 3600}])
    assert due_of(stopped, cal) == t0 + timedelta(hours=5, minutes=30)
    # Still running: the due instant it keeps.
    running = clock(always, "resolution", ClockState.RUNNING, 3600, breached=at(2), target=1800,
                    segments=[ran_1h])
    running.due_at = t0 + timedelta(minutes=30)
    assert due_of(running, cal) == running.due_at


def test_the_breached_list_is_paged_latest_breach_first(client_for, manager, march):
    client = client_for(manager)
    first = client.get(f"{URL}?{MARCH}&group_by=team&page_size=2").json()["breached"]
    # Breached in March: 3600 s (5th), 18000 s (31st), 9000 s (20th), and the open one (10th).
    assert first["count"] == 4 and first["next"] and first["previous"] is None
    assert [r["breached_at"][:10] for r in first["results"]] == ["2026-03-31", "2026-03-20"]
    second = client.get(first["next"].replace("http://testserver", "")).json()["breached"]
    assert [r["breached_at"][:10] for r in second["results"]] == ["2026-03-10", "2026-03-05"]
    assert [r["state"] for r in second["results"]] == ["running", "breached"]
    assert second["results"][0]["stopped_at"] is None and second["results"][1]["stopped_at"][:10] == "2026-03-05"


# --- CSV --------------------------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_csv_export_holds_the_groups_table_and_every_breached_clock(client_for, manager, march):
    response = client_for(manager).get(f"{URL}?{MARCH}&group_by=team&format=csv")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="sla-report-team-2026-03-01-2026-03-31.csv"'
    rows = _csv(response)
    assert rows[0][:8] == ["Team", "first response stopped", "first response met", "first response breached",
                           "first response compliance %", "first response mean minutes",
                           "first response p90 minutes", "first response open breached"]
    assert rows[1:5] == [
        ["Desk", "1", "1", "0", "100.0", "5.0", "5.0", "0", "0", "0", "0", "", "", "", "1"],
        ["Network", "4", "3", "1", "75.0", "30.0", "51.0", "0", "2", "1", "1", "50.0", "210.0", "282.0", "0"],
        ["No team", "0", "0", "0", "", "", "", "0", "1", "0", "1", "0.0", "150.0", "150.0", "0"],
        ["All", "5", "4", "1", "80.0", "25.0", "48.0", "0", "3", "1", "2", "33.3", "190.0", "270.0", "1"],
    ]
    assert rows[5] == []
    assert rows[6][:4] == ["ticket type", "ticket id", "number", "clock"]
    assert len(rows[7:]) == 4 and {r[3] for r in rows[7:]} == {"first_response", "resolution"}


def test_the_page_csv_is_the_same_stream_and_a_csv_refusal_is_said_in_json(client, client_for, manager, agent,
                                                                           march):
    client.force_login(manager)
    response = client.get(f"{PAGE}?{MARCH}&group_by=priority&format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert [r[0] for r in _csv(response)[:5]] == ["Priority", "P1", "P2", "P3", "All"]
    refused = client_for(agent).get(f"{URL}?{MARCH}&group_by=team&format=csv")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/json"
    bad = client_for(manager).get(f"{URL}?{MARCH}&format=csv")
    assert bad.status_code == 400 and list(bad.json()) == ["group_by"]


def test_csv_cells_never_start_a_formula(client_for, manager, always):
    team = Team.objects.create(name="=HYPERLINK(\"x\")")
    clock(always, "first_response", ClockState.MET, 60, stopped=at(3), team=team)
    rows = _csv(client_for(manager).get(f"{URL}?{MARCH}&group_by=team&format=csv"))
    assert rows[1][0] == "'=HYPERLINK(\"x\")"


# --- the page -------------------------------------------------------------------------------------------


def test_the_page_draws_the_table_the_chart_data_and_links_each_breached_ticket(client, manager, march):
    client.force_login(manager)
    response = client.get(f"{PAGE}?{MARCH}&group_by=team")
    page = response.content.decode()
    assert response.status_code == 200
    assert response.context["chart"] == {
        "labels": ["Desk", "Network", "No team"],
        "series": [{"kind": "first_response", "label": "First response", "values": [100.0, 75.0, None]},
                   {"kind": "resolution", "label": "Resolution", "values": [None, 50.0, 0.0]}],
    }
    assert '<script id="sla-chart-data" type="application/json">' in page
    assert "vendor/chartjs/chart.umd.min.js" in page and "js/sla_report.js" in page
    assert "30 min / 51 min" in page  # Network's first responses: mean and p90 in words
    assert "3 h 30 min / 4 h 42 min" in page  # Network's resolutions
    assert page.count('data-testid="breached-row"') == 4
    assert 'aria-current="page"' in page and "SLA compliance" in page


def test_dates_outside_the_calendar_the_report_can_hold_are_refused_naming_the_field():
    from sla.reports import ReportParamsError

    with pytest.raises(ReportParamsError) as error:
        report_params({"from": "0001-01-01", "to": "9999-12-31", "group_by": "team"})
    assert set(error.value.errors) == {"from", "to"}
    assert "out of range" in error.value.errors["to"]
