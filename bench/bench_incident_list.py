"""Incident list API and agent queue pages: latency at 1k and 100k incidents, against a raw-SQL baseline that
fetches what the page shows, and the same pages through gunicorn with a signed-in session.

Each size has a database of its own (kept between runs); rounds alternate between the sizes and the spread is
printed (bench/common.py: `interleave`). Before anything is timed, every baseline is checked to return the
same incidents in the same order with the same count of matches as the page or API it stands beside:

- HTML pages (dashboard, queues, search): the page's capped count of matches (`SELECT count(*)` over at most
  LIST_COUNT_CAP + 1 matches: exact up to the cap, "1,000+" beyond, servicedesk.keyset.count_capped), its
  keyset page (the row's columns, the four names a row shows, the count of child incidents; the page's
  ORDER BY with id last and LIMIT page size + 1, the extra row saying whether there is a next page), the SLA
  clocks of those rows, and the incident sidebar's queue counts (exact, over the open incidents).
- API list: the rows (every column but the search document, the six related names) in the cursor's order
  (created_at, id newest first), one more row than the page to know there is a next one (what DRF's cursor
  does), and the rows' SLA clocks; no count (the API has none).

What the baseline leaves out (sessions, permissions, other practices' sidebar counts, rendering) is what the
"ours / raw" ratio shows. The "large / small" ratio is taken round by round, and its median and min-max are
printed. Not a pass/fail test.
    python3 dev.py bench bench/bench_incident_list.py
    SD_BENCH_LARGE=20000 SD_BENCH_ROUNDS=3 SD_BENCH_SCENARIOS=steady ...   for a quicker run
"""

import json
import os
import time
import warnings

warnings.filterwarnings("ignore", message="No directory at")  # static files are not collected for a bench

from common import Gunicorn, HttpClient, SizeDatabases, check_same, http_sign_in, interleave, machine_load  # noqa: E402

SIZES = [int(os.environ.get("SD_BENCH_SMALL", "1000")), int(os.environ.get("SD_BENCH_LARGE", "100000"))]
ROUNDS = int(os.environ.get("SD_BENCH_ROUNDS", "6"))
REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "10"))
SCENARIOS = [
    # key, incidents a day (None: the demo's steady desk of 50 a day, so history grows, open work does not;
    # "demo": `seed_demo --tickets N`, server-side, over up to three years: the databases bench_load.py uses)
    ("steady", None, "steady desk: 50 incidents/day, history grows, open work stays"),
    ("stress", 90, "stress: every size squeezed into 90 days (~10% open)"),
    ("demo", "demo", "seed_demo --tickets N (the load test's databases; SD_BENCH_SCENARIOS=demo)"),
]
PREFIXES = {"demo": "servicedesk_bench_load"}
WANTED = set(os.environ.get("SD_BENCH_SCENARIOS", "steady,stress").split(","))
if "demo" in WANTED:  # the demo databases are the load test's, 10k and 1M unless told otherwise
    SIZES = [int(os.environ.get("SD_BENCH_SMALL", "10000")), int(os.environ.get("SD_BENCH_LARGE", "1000000"))]
HTTP = os.environ.get("SD_BENCH_HTTP", "1") == "1"

print(f"machine at start: {machine_load()}")
databases = {key: SizeDatabases(PREFIXES.get(key, f"servicedesk_bench_list_{key}"), SIZES)
             for key, _, _ in SCENARIOS if key in WANTED}

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment, teardown_test_environment  # noqa: E402

from incidents.demo import seed_incidents, seed_tickets  # noqa: E402
from incidents.models import Incident  # noqa: E402
from servicedesk.demo import DEMO_PASSWORD, seed_base  # noqa: E402
from servicedesk.tokens import api_token_issue  # noqa: E402

OPEN = "('new', 'in_progress', 'on_hold')"
# The columns the queue row reads (incidents.selectors.ROW_FIELDS) and the API list reads (all but the search
# document), from the model: the baseline never reads less than the page does.
ROW_COLUMNS = ", ".join(f"i.{Incident._meta.get_field(f).column}" for f in
                        ("id", "number", "title", "priority", "status", "hold_reason", "major", "created_at",
                         "updated_at", "version", "requester", "assignee", "assignment_group", "service"))
API_COLUMNS = ", ".join(f"i.{f.column}" for f in Incident._meta.concrete_fields if f.name != "search_vector")
NAMES = """r.username, r.first_name, r.last_name, r.email, a.username, a.first_name, a.last_name, a.email,
       t.name, s.name"""
JOINS = """JOIN auth_user r ON r.id = i.requester_id
LEFT JOIN auth_user a ON a.id = i.assignee_id
LEFT JOIN servicedesk_team t ON t.id = i.assignment_group_id
LEFT JOIN servicedesk_service s ON s.id = i.service_id"""
QUEUE_ROWS = f"""
SELECT {ROW_COLUMNS}, {NAMES},
       COALESCE((SELECT count(*) FROM incidents_incident c WHERE c.parent_id = i.id), 0) AS children
FROM incidents_incident i
{JOINS}
WHERE {{where}} ORDER BY {{order}} LIMIT %(limit)s"""
API_ROWS = f"""
SELECT {API_COLUMNS}, {NAMES}, ci.name, cat.name, cat.parent_id
FROM incidents_incident i
{JOINS}
LEFT JOIN servicedesk_configurationitem ci ON ci.id = i.configuration_item_id
LEFT JOIN incidents_category cat ON cat.id = i.category_id
WHERE {{where}} ORDER BY i.created_at DESC, i.id DESC LIMIT %(limit)s"""
# The page's count, capped as servicedesk.keyset.count_capped caps it: at most cap + 1 matches are read.
COUNT = "SELECT count(*) FROM (SELECT i.id FROM incidents_incident i WHERE {where} LIMIT %(cap)s) AS matches"
CAP = settings.LIST_COUNT_CAP
CLOCKS = """
SELECT c.*, cal.name, cal.timezone, tm.name FROM sla_slaclock c
LEFT JOIN sla_businesscalendar cal ON cal.id = c.calendar_id LEFT JOIN servicedesk_team tm ON tm.id = c.team_id
WHERE c.ticket_type = 'incident' AND c.ticket_id = ANY(%s)"""
SIDEBAR = f"""
SELECT count(*) FILTER (WHERE i.sla_due_at <= now() + interval '1 hour'),
       count(*) FILTER (WHERE i.assignee_id = %(me)s),
       count(*) FILTER (WHERE i.assignee_id IS NULL AND i.assignment_group_id IN
                        (SELECT m.team_id FROM servicedesk_teammembership m WHERE m.user_id = %(me)s)),
       count(*) FILTER (WHERE i.assignee_id IS NULL), count(*), count(*) FILTER (WHERE i.status = 'on_hold'),
       count(*) FILTER (WHERE i.major), count(*) FILTER (WHERE i.priority <= 2)
FROM incidents_incident i WHERE i.status IN {OPEN}"""
BY_PRIORITY = "i.priority ASC, i.updated_at DESC, i.id DESC"
BY_CHANGE = "i.updated_at DESC, i.id DESC"
FULL_TEXT = "i.search_vector @@ websearch_to_tsquery('english', 'slow')"


def page_sql(where: str, order: str, limit: int, me: int):
    """What an HTML queue page shows, by hand: the capped count, the keyset page's rows (one more than the page:
    is there a next page), the rows' clocks, the sidebar's counts."""
    def run():
        with connection.cursor() as cursor:
            cursor.execute(COUNT.format(where=where), {"cap": CAP + 1})
            found = cursor.fetchone()[0]
            cursor.execute(QUEUE_ROWS.format(where=where, order=order), {"limit": limit + 1})
            rows = cursor.fetchall()[:limit]
            cursor.execute(CLOCKS, [[row[0] for row in rows]])
            cursor.fetchall()
            cursor.execute(SIDEBAR, {"me": me})
            cursor.fetchall()
        return [row[1] for row in rows], (min(found, CAP), found > CAP)
    return run


def api_sql(where: str, page_size: int = 50, params=None):
    """What the API list shows, by hand: page_size + 1 rows in the cursor's order (the extra one tells whether
    there is a next page), their clocks; no count."""
    def run():
        with connection.cursor() as cursor:
            cursor.execute(API_ROWS.format(where=where), {"limit": page_size + 1, **(params or {})})
            rows = cursor.fetchall()[:page_size]
            cursor.execute(CLOCKS, [[row[0] for row in rows]])
            cursor.fetchall()
        return [row[1] for row in rows], None
    return run


def shown_html(response):
    """The rows and the capped count the page shows (a keyset page: servicedesk.keyset.KeysetPage)."""
    page = response.context["page"]
    return [i.number for i in page.object_list], (page.count.value, page.count.capped)


def shown_api(response):
    return [row["number"] for row in response.json()["results"]], None


def get(client, path, **headers):
    def run():
        response = client.get(path, **headers)
        assert response.status_code == 200, (path, response.status_code)
        return response
    return run


def prepare(size: int, squeeze_days) -> str:
    """The size's incidents, generated once and kept (a database per size and scenario)."""
    seed_base()
    seed_incidents()  # categories, canned responses and rules the generated incidents use
    started = time.perf_counter()
    if squeeze_days == "demo":
        if Incident.objects.count() < size:
            call_command("seed_demo", tickets=size, quiet_logins=True)
    elif Incident.objects.count() != size:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE incidents_incident, servicedesk_timelineentry, servicedesk_auditlog CASCADE")
        seed_tickets(size, intake_per_day=size / squeeze_days) if squeeze_days else seed_tickets(size)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load in production
    open_count = Incident.objects.filter(status__in=["new", "in_progress", "on_hold"]).count()
    return (f"{Incident.objects.count():,} incidents, {open_count:,} open "
            f"(ready in {time.perf_counter() - started:.1f}s)")


def cases_for(size: int) -> dict:
    """name -> (request, shown, baseline) for the database in use."""
    agent = get_user_model().objects.get(username="agent")
    _, token = api_token_issue(user=agent)
    api, browser = Client(), Client()
    browser.force_login(agent)
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    me = agent.id
    return {
        "API  list (50, newest first)": (
            get(api, "/api/v1/incidents/?page_size=50", **auth), shown_api, api_sql("true")),
        "API  list status=new,in_progress": (
            get(api, "/api/v1/incidents/?page_size=50&status=new&status=in_progress", **auth), shown_api,
            api_sql("i.status IN ('new', 'in_progress')")),
        "API  list assignee=agent": (
            get(api, "/api/v1/incidents/?page_size=50&assignee=agent", **auth), shown_api,
            api_sql("i.assignee_id = %(me)s", params={"me": me})),
        "API  full text q=slow": (
            get(api, "/api/v1/incidents/?page_size=50&q=slow", **auth), shown_api, api_sql(FULL_TEXT)),
        "HTML agent dashboard (25 open, by priority)": (
            get(browser, "/agent/"), shown_html, page_sql(f"i.status IN {OPEN}", BY_PRIORITY, 25, me)),
        "HTML queue: all open (50/page)": (
            get(browser, "/agent/queue/all/?per_page=50"), shown_html,
            page_sql(f"i.status IN {OPEN}", BY_PRIORITY, 50, me)),
        "HTML queue: unassigned (50/page)": (
            get(browser, "/agent/queue/unassigned/?per_page=50"), shown_html,
            page_sql(f"i.status IN {OPEN} AND i.assignee_id IS NULL", BY_PRIORITY, 50, me)),
        "HTML search: q=slow (25, by last change)": (
            get(browser, "/agent/search/?q=slow"), shown_html, page_sql(FULL_TEXT, BY_CHANGE, 25, me)),
    }


def verify(dbs: SizeDatabases, made: dict) -> dict:
    """Check every baseline against its page at every size; returns the queries per request."""
    queries = {}
    setup_test_environment()  # the test client then keeps each response's template context
    try:
        for size in dbs.sizes:
            dbs.use(size)
            for name, (request, shown, baseline) in made[size].items():
                with CaptureQueriesContext(connection) as captured:
                    response = request()
                queries[(name, size)] = len(captured)
                check_same(f"{name} at {size:,}", shown(response), baseline())
    finally:
        teardown_test_environment()
    return queries


def http_section(dbs: SizeDatabases, made: dict) -> None:
    """The queue page and the list API through gunicorn (2 processes x 4 threads, as the local run) on
    loopback, one kept-alive connection per size with a session signed in through /login/."""
    servers = {size: Gunicorn(dbs.url(size), env={"CACHE_KEY_PREFIX": f"sd-bench-http-{size}-{os.getpid()}"})
               for size in dbs.sizes}
    try:
        clients = {}
        for size, server in servers.items():
            server.__enter__()
            clients[size] = HttpClient(server.base, http_sign_in(server.base, "agent", DEMO_PASSWORD))
        queue, api = "HTML queue: all open (50/page)", "API  list (50, newest first)"

        def http_case(path, name):
            def make(size):
                body = clients[size].get(path)
                expected = made[size][name][2]()[0]
                if name.startswith("API"):
                    check_same(f"HTTP {name} at {size:,}", ([r["number"] for r in json.loads(body)["results"]], None),
                               (expected, None))
                elif expected and expected[0].encode() not in body:
                    raise SystemExit(f"HTTP {path} at {size:,}: {expected[0]} is not on the page")
                return (lambda: clients[size].get(path)), made[size][name][2]
            return make

        results = interleave({
            f"HTTP {queue}": http_case("/agent/queue/all/?per_page=50", queue),
            f"HTTP {api}": http_case("/api/v1/incidents/?page_size=50", api),
        }, sizes=dbs.sizes, use=dbs.use, rounds=ROUNDS, repeat=REPEAT)
        results.print("through gunicorn on 127.0.0.1 (whole request: HTTP, middleware, session, rendering)")
        print(f"(connections re-opened after gunicorn's 2 s keep-alive: "
              f"{sum(c.reconnects for c in clients.values())}, each inside its sample)")
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.stop()


for key, squeeze_days, title in SCENARIOS:
    if key not in databases:
        continue
    dbs = databases[key]
    print(f"\n######## {title}")
    made = {}
    for size in dbs.sizes:
        dbs.use(size)
        print(f"{size:>9,}: {prepare(size, squeeze_days)}")
        made[size] = cases_for(size)
    queries = verify(dbs, made)
    print("every baseline checked: the same incidents in the same order and the same count as its page, at "
          "every size. Queries per request: " + ", ".join(
              f"{name.split(':')[0].split('(')[0].strip()} {'/'.join(str(queries[(name, s)]) for s in dbs.sizes)}"
              for name in made[dbs.sizes[0]]))
    results = interleave({name: (lambda size, name=name, made=made: (made[size][name][0], made[size][name][2]))
                          for name in made[dbs.sizes[0]]},
                         sizes=dbs.sizes, use=dbs.use, rounds=ROUNDS, repeat=REPEAT)
    results.print(f"{title}: Django's test client, in process")
    if HTTP and key in ("steady", "demo"):
        http_section(dbs, made)
    dbs.clear_caches()

print(f"\nmachine at the end: {machine_load()}")
print("(figures from a shared machine: other processes' CPU, above, slows both columns alike within a round;"
      " compare ratios, not absolute milliseconds, across runs)")
