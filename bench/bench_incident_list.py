"""Incident list API and agent queue pages: latency at 1k and 100k incidents, against a raw-SQL baseline.

Prints p50/p95 per endpoint and size, the 100k/1k ratio, and queries per request. Not a pass/fail test.
    python3 dev.py bench bench/bench_incident_list.py        (SD_BENCH_LARGE=20000 for a quicker run)
"""

import os
import time

from common import setup_bench_database, summary, timed

setup_bench_database()

from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from incidents.demo import seed_incidents, seed_tickets  # noqa: E402
from incidents.models import Incident  # noqa: E402
from servicedesk.demo import seed_base  # noqa: E402
from servicedesk.tokens import api_token_issue  # noqa: E402

SIZES = [1_000, int(os.environ.get("SD_BENCH_LARGE", "100000"))]
REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "60"))

RAW_SQL = """
SELECT i.id, i.number, i.title, i.priority, i.status, i.updated_at, i.created_at,
       r.username, r.first_name, r.last_name, a.username, t.name, s.name
FROM incidents_incident i
JOIN auth_user r ON r.id = i.requester_id
LEFT JOIN auth_user a ON a.id = i.assignee_id
LEFT JOIN servicedesk_team t ON t.id = i.assignment_group_id
LEFT JOIN servicedesk_service s ON s.id = i.service_id
{where}
ORDER BY {order}
LIMIT 50
"""


def raw(where="", order="i.created_at DESC, i.id DESC", params=()):
    def run():
        with connection.cursor() as cursor:
            cursor.execute(RAW_SQL.format(where=where, order=order), params)
            cursor.fetchall()
    return run


def get(client, path, **headers):
    def run():
        response = client.get(path, **headers)
        assert response.status_code == 200, (path, response.status_code)
    return run


def queries(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


seed_base()
seed_incidents()  # categories, canned responses and rules the generated incidents use
from django.contrib.auth import get_user_model  # noqa: E402

agent = get_user_model().objects.get(username="agent")
_, token = api_token_issue(user=agent)
api = Client()
auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
browser = Client()
browser.force_login(agent)

cases = {
    "API  list (50, newest first)": (get(api, "/api/v1/incidents/?page_size=50", **auth), raw()),
    "API  list status=new,in_progress": (
        get(api, "/api/v1/incidents/?page_size=50&status=new&status=in_progress", **auth),
        raw("WHERE i.status IN ('new', 'in_progress')"),
    ),
    "API  list assignee=agent": (
        get(api, "/api/v1/incidents/?page_size=50&assignee=agent", **auth),
        raw("WHERE i.assignee_id = %s", params=[agent.id]),
    ),
    "API  full text q=slow": (
        get(api, "/api/v1/incidents/?page_size=50&q=slow", **auth),
        raw("WHERE i.search_vector @@ websearch_to_tsquery('english', 'slow')"),
    ),
    "HTML agent dashboard (open, by priority)": (
        get(browser, "/agent/"),
        raw("WHERE i.status IN ('new','in_progress','on_hold')", order="i.priority, i.updated_at DESC, i.id DESC"),
    ),
}
cases["HTML queue: all open (50/page)"] = (
    get(browser, "/agent/queue/all/?per_page=50"),
    raw("WHERE i.status IN ('new','in_progress','on_hold')", order="i.priority, i.updated_at DESC, i.id DESC"),
)
cases["HTML queue: unassigned (50/page)"] = (
    get(browser, "/agent/queue/unassigned/?per_page=50"),
    raw("WHERE i.status IN ('new','in_progress','on_hold') AND i.assignee_id IS NULL",
        order="i.priority, i.updated_at DESC, i.id DESC"),
)
cases["HTML search: q=slow"] = (
    get(browser, "/agent/search/?q=slow"),
    raw("WHERE i.search_vector @@ websearch_to_tsquery('english', 'slow')", order="i.priority, i.updated_at DESC"),
)

def reset_incidents():
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE incidents_incident, servicedesk_timelineentry, servicedesk_auditlog CASCADE")


SCENARIOS = [
    # name, incidents a day (None: the demo's steady desk of 50 a day, so history grows, open work does not)
    ("steady desk: 50 incidents/day, history grows, open work stays", None),
    ("stress: every size squeezed into 90 days (~10% open)", 90),
]
for scenario, squeeze_days in SCENARIOS:
    results = {}
    print(f"\n######## {scenario}")
    for size in SIZES:
        reset_incidents()
        started = time.perf_counter()
        if squeeze_days:
            seed_tickets(size, intake_per_day=size / squeeze_days)
        else:
            seed_tickets(size)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load in production
        open_count = Incident.objects.filter(status__in=["new", "in_progress", "on_hold"]).count()
        print(f"\n== {Incident.objects.count():,} incidents, {open_count:,} open "
              f"(seeded in {time.perf_counter() - started:.1f}s)")
        for name, (ours, baseline) in cases.items():
            for _ in range(5):  # warm: templates compiled, plans cached, pages in PostgreSQL's buffers
                ours()
                baseline()
            reset_queries()
            q = queries(ours)
            a, b = timed(ours, REPEAT), timed(baseline, REPEAT)
            results[(name, size)] = sorted(a)[len(a) // 2]
            ratio = sorted(a)[len(a) // 2] / max(sorted(b)[len(b) // 2], 1e-6)
            print(f"{name:<42} {summary(a)}   {q:2d} queries   raw SQL p50 {sorted(b)[len(b) // 2]:6.2f} ms"
                  f"   x{ratio:.1f}")
    small, large = SIZES
    print(f"\n== p50 at {large:,} / p50 at {small:,} ({scenario})")
    for name in cases:
        print(f"{name:<42} {results[(name, large)] / results[(name, small)]:.2f}x")
