"""Service insights dashboard: its figures at 10k and 1M incidents over the same two years of history, against
a raw-SQL baseline that computes the same figures from the tickets directly (no rollup), in the same run.

Prints, per size: the rollup's full rebuild and one beat run (recent + changed days), the dashboard's figures
(insights.dashboard.dashboard_data: every tile, chart and table of /agent/insights/) and, once the page is
there, the whole page, for the last 30 days as an admin and as a one-team agent; the raw baseline; and the
1M / 10k ratio. Both sizes are kept at once (a database each, generated once) and measured in alternating rounds
(bench/common.py: interleave), with the spread and the per-round ratios. Before timing, the dashboard's
incidents opened per service are compared with the baseline's (the rollup must give the raw figures). Not a
pass/fail test.
    python3 dev.py bench bench/bench_insights.py      (SD_BENCH_LARGE=200000 for a quicker run)
"""

import os
import time
from datetime import timedelta

from common import SizeDatabases, interleave, machine_load

SIZES = [10_000, int(os.environ.get("SD_BENCH_LARGE", "1000000"))]
print(f"machine at start: {machine_load()}")
dbs = SizeDatabases("servicedesk_bench_insights", SIZES)

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from incidents.models import Category, Incident  # noqa: E402
from insights.dashboard import dashboard_data  # noqa: E402
from insights.models import DailyFacet, DailyRollup  # noqa: E402
from insights.rollup import rollup_rebuild, rollup_run  # noqa: E402
from insights.scope import scope_for  # noqa: E402
from servicedesk.demo import seed_base  # noqa: E402
from servicedesk.models import Service, Team  # noqa: E402

HISTORY_DAYS = 730
ROUNDS = int(os.environ.get("SD_BENCH_ROUNDS", "5"))
REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "3"))

INSERT = """
INSERT INTO incidents_incident (number, title, description, created_at, updated_at, version, channel, impact,
    urgency, priority, status, hold_reason, major, resolution_code, resolution_notes, first_responded_at,
    resolved_at, closed_at, reopen_count, assignee_id, assignment_group_id, category_id, requester_id,
    service_id, first_contact)
SELECT 'INC' || lpad(g::text, 10, '0'), 'Bench incident ' || g, '', c, c + interval '2 hours', 1,
       CASE WHEN ch < 0.05 THEN 'monitoring' WHEN ch < 0.55 THEN 'portal' WHEN ch < 0.7 THEN 'email'
            WHEN ch < 0.85 THEN 'phone' ELSE 'api' END,
       imp, urg, LEAST(5, imp + urg - 1), st, CASE WHEN st = 'on_hold' THEN 'awaiting_vendor' ELSE '' END, false,
       CASE WHEN st IN ('resolved', 'closed') THEN 'fixed' ELSE '' END, '',
       CASE WHEN st <> 'new' THEN c + make_interval(mins => 5 + (a * 235)::int) END,
       CASE WHEN st IN ('resolved', 'closed') THEN c + make_interval(hours => 1 + (b * 71)::int) END,
       CASE WHEN st = 'closed' THEN c + make_interval(days => 4 + (b * 6)::int) END,
       CASE WHEN st IN ('resolved', 'closed') AND f >= 0.33 AND f < 0.39 THEN 1 ELSE 0 END,
       CASE WHEN st <> 'new' THEN (%(agents)s::int[])[1 + (a * 1000)::int %% cardinality(%(agents)s::int[])] END,
       (%(service_teams)s::bigint[])[1 + k],
       (%(categories)s::bigint[])[1 + (b * 1000)::int %% cardinality(%(categories)s::bigint[])],
       (%(requesters)s::int[])[1 + g %% cardinality(%(requesters)s::int[])],
       (%(services)s::bigint[])[1 + k],
       st IN ('resolved', 'closed') AND f < 0.33
FROM (
    SELECT g, c, ch, imp, urg, a, b, f, (floor(sv * 1000)::int %% cardinality(%(services)s::bigint[])) AS k,
           CASE WHEN now() - c > interval '21 days' THEN CASE WHEN s < 0.04 THEN 'cancelled' ELSE 'closed' END
                ELSE (ARRAY['new', 'in_progress', 'in_progress', 'on_hold', 'resolved', 'closed', 'closed'])
                     [1 + floor(s * 7)::int] END AS st
    FROM (
        SELECT g, now() - make_interval(secs => random() * %(history)s) AS c, random() AS ch,
               1 + floor(random() * 3)::int AS imp, 1 + floor(random() * 3)::int AS urg, random() AS a,
               random() AS b, random() AS f, random() AS s, random() AS sv
        FROM generate_series(1, %(n)s) g
    ) r
) t
ORDER BY c  -- a desk's table grows in time order: rows of a day lie together, as in production
"""

RATINGS = """
INSERT INTO servicedesk_rating (content_type_id, object_id, number, score, comment, by_id, created_at, updated_at)
SELECT %(ct)s, id, number, 1 + floor(random() * 5)::int, '', requester_id, resolved_at + interval '3 hours',
       resolved_at + interval '3 hours'
FROM incidents_incident WHERE resolved_at IS NOT NULL AND random() < 0.1
"""

# The same figures straight from the tickets: the per-day series, the backlog at the end, the rates, the
# exact times by priority, the breakdowns and the ratings (what the dashboard would cost with no rollup).
RAW = [
    """SELECT date_trunc('day', created_at) d, count(*) FROM incidents_incident
       WHERE created_at >= %(s)s AND created_at < %(e)s {team} GROUP BY 1""",
    """SELECT date_trunc('day', resolved_at) d, count(*), count(*) FILTER (WHERE first_contact AND reopen_count = 0),
              count(*) FILTER (WHERE reopen_count > 0) FROM incidents_incident
       WHERE status IN ('resolved', 'closed') AND resolved_at >= %(s)s AND resolved_at < %(e)s {team} GROUP BY 1""",
    """SELECT count(*) FROM incidents_incident WHERE created_at < %(e)s {team}
       AND NOT (status IN ('resolved', 'closed') AND resolved_at < %(e)s)
       AND NOT (status = 'cancelled' AND updated_at < %(e)s)""",
    """SELECT priority, percentile_cont(0.9) WITHIN GROUP (ORDER BY resolved_at - created_at), avg(resolved_at - created_at)
       FROM incidents_incident WHERE status IN ('resolved', 'closed') AND resolved_at >= %(s)s AND resolved_at < %(e)s
       {team} GROUP BY priority""",
    """SELECT priority, percentile_cont(0.9) WITHIN GROUP (ORDER BY first_responded_at - created_at)
       FROM incidents_incident WHERE first_responded_at >= %(s)s AND first_responded_at < %(e)s {team}
       GROUP BY priority""",
    """SELECT service_id, channel, category_id, count(*) FROM incidents_incident
       WHERE created_at >= %(s)s AND created_at < %(e)s {team} GROUP BY GROUPING SETS ((service_id), (channel),
       (category_id))""",
    """SELECT count(*), avg(r.score) FROM servicedesk_rating r JOIN incidents_incident i ON i.id = r.object_id
       WHERE r.created_at >= %(s)s AND r.created_at < %(e)s {team_i}""",
]


def raw_baseline(scope, team_id):
    params = {"s": scope.start, "e": scope.end, "t": team_id}
    team = "AND assignment_group_id = %(t)s" if team_id else ""
    team_i = "AND i.assignment_group_id = %(t)s" if team_id else ""

    def run():
        found = []
        with connection.cursor() as cursor:
            for sql in RAW:
                cursor.execute(sql.format(team=team, team_i=team_i), params)
                found.append(cursor.fetchall())
        return found
    return run


def reset(size: int, ids: dict) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE incidents_incident, servicedesk_rating, insights_dailyrollup, insights_dailyfacet, "
                       "insights_rollupstate, servicedesk_timelineentry, sla_slaclock CASCADE")
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(INSERT, {**ids, "n": size, "history": HISTORY_DAYS * 86400})
        cursor.execute(RATINGS, {"ct": ContentType.objects.get_for_model(Incident).id})
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load in production
    return time.perf_counter() - started


def prepare(size: int) -> None:
    seed_base()
    User = get_user_model()
    if Incident.objects.count() != size:
        agents = list(User.objects.filter(groups__name="agent").values_list("id", flat=True)) or \
            list(User.objects.values_list("id", flat=True))
        services = list(Service.objects.values_list("id", "owner_team_id"))
        # Tickets go to the team that owns their service, as the desk's routing sends them.
        ids = {"agents": agents, "service_teams": [team for _, team in services],
               "categories": list(Category.objects.values_list("id", flat=True)) or [None],
               "requesters": list(User.objects.values_list("id", flat=True)),
               "services": [service for service, _ in services]}
        seconds = reset(size, ids)
        started = time.perf_counter()
        days = rollup_rebuild()
        print(f"{size:,}: inserted in {seconds:.1f} s; rollup rebuild: {days} days in "
              f"{time.perf_counter() - started:.1f} s")
    print(f"== {Incident.objects.count():,} incidents over {HISTORY_DAYS} days "
          f"({Incident.objects.filter(status__in=['new', 'in_progress', 'on_hold']).count():,} open; "
          f"{DailyRollup.objects.count():,} rollup rows, {DailyFacet.objects.count():,} facet rows)")
    started = time.perf_counter()
    days = rollup_run(now=timezone.now() + timedelta(seconds=1))
    print(f"   rollup beat run (recent + changed days, standard windows' times): {days} days in "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")


def views(size: int) -> list:
    """(label, user, query) of the three dashboards measured, in the database in use."""
    User = get_user_model()
    admin = User.objects.filter(is_superuser=True).first() or User.objects.get(username="admin")
    team = Team.objects.filter(memberships__isnull=False).order_by("name").first()
    member = User.objects.filter(memberships__team=team, groups__name="agent").order_by("id").first()
    yesterday = timezone.localdate() - timedelta(days=1)
    custom = {"from": (yesterday - timedelta(days=29)).isoformat(), "to": yesterday.isoformat()}
    return [("admin, all teams", admin, {}), (f"agent, team {team.name}", member, {"team": str(team.id)}),
            ("admin, 30 days to yesterday", admin, custom)]


for size in SIZES:
    dbs.use(size)
    prepare(size)
    for who, user, query in views(size):
        scope = scope_for(user, query)
        with CaptureQueriesContext(connection) as captured:
            board = dashboard_data(scope)
        ours = {row.key: row.opened for row in board.by_service}
        grouped = raw_baseline(scope, scope.team_id)()[5]
        theirs = {str(service): n for service, channel, category, n in grouped
                  if service is not None and channel is None and category is None}
        theirs = {k: v for k, v in theirs.items() if v}
        same = ours == theirs
        print(f"   {who}: incidents opened per service, dashboard vs raw SQL: "
              f"{'the same' if same else 'DIFFERENT'} ({sum(ours.values()):,} vs {sum(theirs.values()):,}); "
              f"the figures take {len(captured)} queries")

cases = {}
for i, label in enumerate(["admin, all teams", "agent, one team", "admin, 30 days to yesterday"]):
    def figures(size, i=i):
        _, user, query = views(size)[i]
        scope = scope_for(user, query)
        return (lambda: dashboard_data(scope)), raw_baseline(scope, scope.team_id)

    def page(size, i=i):
        _, user, query = views(size)[i]
        browser = Client()
        browser.force_login(user)

        def get():
            response = browser.get("/agent/insights/", query)
            assert response.status_code == 200, response.status_code
        return get, None

    cases[f"dashboard figures, {label}"] = figures
    cases[f"dashboard page,    {label}"] = page
results = interleave(cases, sizes=SIZES, use=dbs.use, rounds=ROUNDS, repeat=REPEAT)
results.print("insights dashboard")
print(f"machine at the end: {machine_load()}")
