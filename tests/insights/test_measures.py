"""Each measure of the insights dashboard against figures computed by hand from a small fixture.

The fixture is a week, D0..D6, three weeks ago (derived from today, so it never goes stale), with incidents
moved through the real services at chosen times (`now=`), ratings given through the kernel's service, and
the few timestamps the services stamp with the real clock (a first reply, a cancel, a rating's day, SLA clock
outcomes) set to chosen times afterwards. Then the rollup counts and the measures are compared with:

  I1 team A, service S1: raised D0 09:00, first reply 09:30, resolved straight from new 11:00   (2 h, FCR)
  I2 team A, service S1: raised D0 10:00, taken on, first reply 12:00, resolved D1 10:00          (24 h)
  I3 team A, service S2: raised D1 09:00, first reply 10:00, resolved D1 13:00, reopened, resolved
                         D2 15:00                                                                 (30 h)
  I4 team B, service S1: raised D2 09:00 by monitoring, open
  I5 team A: raised D0-3 (before the period), open
  I6 team A: raised D3 09:00, cancelled D3 10:00

  opened 5 (I5 is older) · resolved 3 · backlog at the end of D6: 6 raised - 4 ended = 2 (I4, I5)
  time to resolve 2, 24, 30 h: mean 18.67 h, p90 = 24 + 0.8 * (30 - 24) = 28.8 h (percentile_cont)
  time to respond 0.5, 2, 1 h: mean 1.17 h, p90 = 1 + 0.8 * (2 - 1) = 1.8 h
  FCR 1 / 3 = 33.3 % · reopen 1 / 3 = 33.3 % · monitoring 1 / 5 = 20.0 %
  ratings I1 5 ("Quick!"), I2 3: average 4.00 · deflections 3 solved, 1 raised anyway: 75.0 %
  SLA resolution clocks: I1 met, I2 breached, I3 met: 66.7 %
"""


import pytest

from incidents.services import incident_create, incident_transition
from incidents.states import Status
from insights.dashboard import dashboard_data
from insights.measures import measure_values, time_figures
from insights.models import DailyRollup, RollupState
from insights.rollup import rollup_days, rollup_rebuild, rollup_run
from insights.scope import ScopeError, scope_for
from tests.insights.conftest import at

pytestmark = pytest.mark.django_db


def scope_of(user, days, **extra):
    return scope_for(user, {"from": days[0].isoformat(), "to": days[-1].isoformat(), **extra})


def test_it_computes_every_measure_as_by_hand(week):
    rollup_rebuild()
    values = measure_values(scope_of(week["boss"], week["days"]))
    assert values == {
        "opened": 5, "resolved": 3, "backlog": 2,
        "respond_mean": 1.17, "respond_p90": 1.8, "resolve_mean": 18.67, "resolve_p90": 28.8,
        "sla_compliance": 66.7, "fcr_rate": 33.3, "reopen_rate": 33.3, "csat_average": 4.0,
        "deflection_rate": 75.0, "automation_rate": None, "monitoring_share": 20.0,
    }


def test_an_agent_sees_only_the_figures_of_their_teams(week):
    rollup_rebuild()
    values = measure_values(scope_of(week["agent_a"], week["days"]))
    # Team A: I1, I2, I3, I6 raised in the period; I5 and nothing else open at its end; I4 (team B) left out.
    assert (values["opened"], values["resolved"], values["backlog"], values["monitoring_share"]) == (4, 3, 1, 0.0)
    with pytest.raises(ScopeError) as error:
        scope_of(week["agent_a"], week["days"], team=str(week["team_b"].id))
    assert "team" in error.value.errors


def test_a_service_narrows_every_figure(week):
    rollup_rebuild()
    values = measure_values(scope_of(week["boss"], week["days"], service=str(week["s1"].id)))
    # Email: I1, I2 (team A), I4 (team B, monitoring); resolved I1, I2 (2 h and 24 h).
    assert (values["opened"], values["resolved"], values["resolve_mean"], values["monitoring_share"]) == \
        (3, 2, 13.0, 33.3)


def test_the_percentiles_read_in_python_equal_postgresqls(week):
    scope = scope_of(week["boss"], week["days"])
    in_sql = time_figures(scope, sql_percentile=True)
    assert in_sql == time_figures(scope, sql_percentile=False)
    assert in_sql[("incident", None)]["now"]["resolve_p90"] == 28.8
    # The week before the fixture's is empty: nothing resolved, no figure.
    assert in_sql[("incident", None)]["before"] == {"resolved": 0, "resolve_mean": None, "resolve_p90": None,
                                                     "responded": 0, "respond_mean": None, "respond_p90": None}


def test_the_dashboard_draws_the_same_figures(week):
    rollup_rebuild()
    d = dashboard_data(scope_of(week["boss"], week["days"]))
    assert [(p.opened, p.ended, p.backlog) for p in d.backlog] == [
        (2, 1, 2), (1, 1, 2), (1, 1, 2), (1, 1, 2), (0, 0, 2), (0, 0, 2), (0, 0, 2)]
    assert [(p.met, p.breached) for p in d.sla] == [(1, 0), (0, 1), (1, 0), (0, 0), (0, 0), (0, 0), (0, 0)]
    assert d.satisfaction.distribution == (0, 0, 1, 0, 1)
    assert [c.comment for c in d.satisfaction.comments] == ["Quick!"]
    assert [(r.label, r.opened) for r in d.by_source] == [("Portal", 4), ("Monitoring", 1)]
    assert [(r.label, r.opened, r.resolved) for r in d.by_service] == [("Email", 3, 2), ("No service", 1, 0),
                                                                        ("VPN", 1, 1)]
    # I5 is assigned to agent_a now; nobody resolved anything assigned to them.
    assert [(r.name, r.open_now, r.resolved) for r in d.workload] == [("agent_a", 1, 0)]
    tiles = {t.measure.key: t for t in d.tiles}
    assert tiles["resolve_p90"].display == "28 h 48 min"
    assert tiles["fcr_rate"].detail == "1 of 3 incidents raised by people resolved"


def test_a_rerun_changes_nothing_and_a_reopen_is_counted_on_the_next_run(week):
    rollup_run()
    first = sorted(DailyRollup.objects.values_list("day", "kind", "team_id", "service_id", "opened", "resolved"))
    rollup_run()
    assert sorted(DailyRollup.objects.values_list("day", "kind", "team_id", "service_id", "opened",
                                                  "resolved")) == first
    scope = scope_of(week["boss"], week["days"])
    assert measure_values(scope)["resolved"] == 3
    # I1 is reopened now: its resolution of D0 no longer counts, and the next run sees it (changed since).
    i1 = week["incidents"][0]
    incident_transition(incident_id=i1.id, to=Status.IN_PROGRESS, actor=week["boss"], reason="Back again")
    rollup_run()
    assert measure_values(scope)["resolved"] == 2
    assert RollupState.objects.get().last_run_days >= 1


def test_a_rollup_of_some_days_leaves_the_others_alone(week):
    rollup_rebuild()
    other = DailyRollup.objects.filter(day=week["days"][0]).count()
    assert rollup_days([week["days"][1]]) == 1
    assert DailyRollup.objects.filter(day=week["days"][0]).count() == other


def test_the_dashboard_runs_the_same_queries_for_a_day_or_a_thousand_tickets(week):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rollup_rebuild()
    scope = scope_of(week["boss"], week["days"])
    with CaptureQueriesContext(connection) as few:
        dashboard_data(scope)
    boss, team = week["boss"], week["team_a"]
    for n in range(60):
        day = week["days"][n % 7]
        incident_create(title=f"More {n}", requester=boss, created_by=boss, assignment_group=team,
                        now=at(day, 8 + n % 10))
    rollup_rebuild()
    with CaptureQueriesContext(connection) as many:
        dashboard_data(scope)
    assert len(many) == len(few)
    assert len(few) <= 25


def test_a_series_of_periods_gives_each_periods_own_figures(week):
    from insights.measures import MEASURES, measure_series

    rollup_rebuild()
    days, boss = week["days"], week["boss"]
    ranges = [(days[0], days[0]), (days[1], days[2]), (days[3], days[6])]
    scope = scope_of(boss, days)
    for key in MEASURES:
        expected = [measure_values(scope_for(boss, {"from": a.isoformat(), "to": b.isoformat()}))[key]
                    for a, b in ranges]
        assert measure_series(scope, key, ranges) == expected, key
    # D0: I1 (2 h); D1-D2: I2 and I3 (24 h, 30 h: 24 + 0.9 * 6 = 29.4 h); D3-D6: nothing resolved.
    assert measure_series(scope, "resolve_p90", ranges) == [2.0, 29.4, None]
