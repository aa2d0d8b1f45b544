"""Load test: the desk under a day's traffic, at 10k and at 1M tickets in the same run (bench/locust_desk.py).

For each size, one after the other, this starts everything on 127.0.0.1 and stops it again:
- a database of that size (`seed_demo --tickets N` once, kept between runs: sd..._load_<N>),
- Debian's pgbouncer in transaction mode (tests.peers.PgBouncer, a throwaway ini) in front of PostgreSQL,
- gunicorn (SD_LOAD_WEB_WORKERS processes x SD_LOAD_WEB_THREADS threads, default 4 x 4) with
  DATABASE_POOLER=pgbouncer, two Celery workers (every queue, concurrency SD_LOAD_WORKER_CONCURRENCY, default 2)
  and one beat, all through pgbouncer, on the broker's Redis (CELERY_BROKER_URL),
- locust, headless, for SD_LOAD_SECONDS (default 150) after every simulated person has started: 200 agents,
  50 portal users, 100 events/s (see bench/locust_desk.py for what each does, and its SD_LOAD_* settings).
Then it prints, per request type and size: requests, requests/s, failures, p50/p95/p99; the events taken in
and processed; the CPU each part used; and what else ran on the machine.

The simulated people are signed in before the run (sessions made as Django's login makes them; a password
hash costs ~0.3 s of CPU each, and 250 of them would be a load test of PBKDF2), and the statistics are reset
once all have started. Loopback only; bounded in time; leaves no process running.
    python3 dev.py bench bench/bench_load.py
    SD_LOAD_SIZES=10000 SD_LOAD_SECONDS=60 python3 dev.py bench bench/bench_load.py     for a quick look
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="No directory at")  # static files are not collected for a bench

from common import BIN, ROOT, SizeDatabases, free_port, machine_load, tree_cpu_seconds  # noqa: E402

SIZES = [int(s) for s in os.environ.get("SD_LOAD_SIZES", "10000,1000000").split(",")]
SECONDS = int(os.environ.get("SD_LOAD_SECONDS", "150"))
WEB_WORKERS = os.environ.get("SD_LOAD_WEB_WORKERS", "4")
WEB_THREADS = os.environ.get("SD_LOAD_WEB_THREADS", "4")
WORKER_CONCURRENCY = os.environ.get("SD_LOAD_WORKER_CONCURRENCY", "2")
POOL_SIZE = int(os.environ.get("SD_LOAD_POOL_SIZE", "20"))
AGENTS = int(os.environ.setdefault("SD_LOAD_AGENTS", "200"))
PORTAL = int(os.environ.setdefault("SD_LOAD_PORTAL", "50"))
EVENTS_PER_S = float(os.environ.setdefault("SD_LOAD_EVENTS_PER_S", "100"))
EVENT_BATCH = int(os.environ.setdefault("SD_LOAD_EVENT_BATCH", "5"))
SENDERS = max(1, round(EVENTS_PER_S / EVENT_BATCH / 2))  # as bench/locust_desk.py counts them
GOAL_P95_MS = 500

print(f"machine at start: {machine_load()}", flush=True)
dbs = SizeDatabases("servicedesk_bench_load", SIZES)

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.middleware.csrf import _get_new_csrf_string  # noqa: E402
from django.test import Client  # noqa: E402

from incidents.models import Incident  # noqa: E402
from monitoring.models import Event, EventSource  # noqa: E402
from monitoring.sources import event_source_create  # noqa: E402
from requests_app.models import CatalogItem  # noqa: E402
from servicedesk.celery import app as celery_app  # noqa: E402
from servicedesk.models import OutboxMessage, Service, Team, TeamMembership  # noqa: E402
from servicedesk.services import user_provision  # noqa: E402
from tests.peers import PGBOUNCER_BINARY, PGBOUNCER_CONFIG  # noqa: E402


class PgBouncer:
    """Debian's pgbouncer in transaction mode on a free port, with the tests' throwaway ini (tests.peers) plus
    connection logging off; its output goes to a file in `work` (a pipe nobody reads would fill and stall it)."""

    def __init__(self, work: Path, pool_size: int):
        # A directory of its own: pgbouncer runs as the postgres user, who cannot enter `work` (mode 700).
        self.root = Path(tempfile.mkdtemp(prefix="sd-bench-pgbouncer-"))
        self.pool_size, self.port, self.proc, self.stderr = pool_size, free_port(), None, work / "pgbouncer.stderr"

    def url(self, user: str, database: str) -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"

    def __enter__(self):
        import pwd
        import socket

        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(PGBOUNCER_CONFIG.format(
            root=self.root, port=self.port, db_host="127.0.0.1", db_port=5432, pool_size=self.pool_size,
            admin="postgres") + "log_connections = 0\nlog_disconnections = 0\n")
        argv = [PGBOUNCER_BINARY]
        if os.getuid() == 0:  # pgbouncer refuses to run as root: it drops to the postgres system user
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.root / "userlist.txt", self.root / "pgbouncer.ini"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            argv += ["-u", "postgres"]
        self.proc = subprocess.Popen([*argv, str(self.root / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                                     stderr=open(self.stderr, "w"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"pgbouncer exited with {self.proc.returncode}: {self.stderr.read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit("pgbouncer did not listen")

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        else:
            print(f"pgbouncer had exited with {self.proc.returncode}: {self.stderr.read_text()[-500:]}")
        shutil.rmtree(self.root, ignore_errors=True)


def prepare(size: int) -> str:
    started = time.perf_counter()
    have = Incident.objects.count()
    if have < size:
        print(f"seeding {size:,} tickets (seed_demo --tickets {size}; kept for the next runs)...", flush=True)
        call_command("seed_demo", tickets=size, quiet_logins=True)
    vacuumed = vacuum_if_no_autovacuum()
    open_count = Incident.objects.filter(status__in=["new", "in_progress", "on_hold"]).count()
    return (f"{Incident.objects.count():,} incidents ({open_count:,} open), "
            f"{Event.objects.count():,} events stored{vacuumed} (ready in {time.perf_counter() - started:.0f} s)")


# The tables the desk reads on every page; their visibility maps decide whether the covering indexes answer
# alone (an index-only scan) or read the heap too.
VACUUMED = ["incidents_incident", "requests_app_servicerequest", "servicedesk_timelineentry", "sla_slaclock",
            "monitoring_alert", "monitoring_event", "django_session"]


def vacuum_if_no_autovacuum() -> str:
    """On a server with autovacuum off (test servers turn it off), do what it would have done after the seed
    and the previous runs: VACUUM (ANALYZE) the desk's busy tables. A bulk-loaded table has no visibility map
    until a vacuum, and every index-only scan then reads the heap as well."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] == "on":
            return ""
        started = time.perf_counter()
        for table in VACUUMED:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    return f"; autovacuum is off on this server: VACUUM (ANALYZE) of the busy tables took {time.perf_counter() - started:.0f} s"


def people(size: int, path: Path) -> None:
    """The simulated agents (members of every team, so they may take any incident) and portal users, each with
    a session made as Django's login makes it; the event source (no rate limit below 100/s); what a portal user
    can order without answering anything."""
    teams = list(Team.objects.all())
    agents, portal = [], []
    for n in range(AGENTS):
        user, _ = user_provision(username=f"load-agent-{n}", role="agent", email=f"load-agent-{n}@example.com")
        for team in teams:
            TeamMembership.objects.get_or_create(team=team, user=user)
        agents.append(user)
    for n in range(PORTAL):
        user, _ = user_provision(username=f"load-user-{n}", role="requester", email=f"load-user-{n}@example.com")
        portal.append(user)
    # A password kept here, as a desk's own accounts have: without one, every "Reset my password" a portal user
    # orders fails (rightly: the account lives elsewhere) and mails the failure to all 200 agents of the team.
    # One hash for everyone (each costs ~0.3 s of PBKDF2); nobody signs in with it.
    # Before the sessions below: a session holds a hash of the password it was opened with.
    hashed = make_password("Load-test-2026!")
    get_user_model().objects.filter(pk__in=[u.pk for u in agents + portal]).update(password=hashed)
    for user in agents + portal:
        user.password = hashed

    def seat(user):
        client = Client()
        client.force_login(user)
        return {"id": user.id, "username": user.username, "session": client.cookies["sessionid"].value, "csrf": _get_new_csrf_string()}

    EventSource.objects.filter(name="Load test").delete()
    _, token = event_source_create(name="Load test", kind="generic", rate_limit_per_minute=0)
    items = [item.id for item in CatalogItem.objects.filter(active=True, audience="everyone")
             if not item.fields.filter(required=True).exists()]
    services = list(Service.objects.filter(active=True).values_list("id", "name"))
    path.write_text(json.dumps({
        "agents": [seat(u) for u in agents], "portal": [seat(u) for u in portal], "event_token": token,
        "catalog_items": items, "services": [s[0] for s in services], "service_names": [s[1] for s in services],
    }))


def counts() -> dict:
    return {"events": Event.objects.count(), "unprocessed": Event.objects.filter(processed_at__isnull=True).count(),
            "incidents": Incident.objects.count(),
            "outbox pending": OutboxMessage.objects.filter(state="pending").count()}


def start(name, argv, env, log_dir):
    log = open(log_dir / f"{name}.log", "a")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(procs: dict) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_up(url: str, proc, seconds=180) -> None:
    import urllib.error
    import urllib.request

    deadline, last = time.monotonic() + seconds, "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(f"{url}/login/", timeout=10):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}: {error.read()[:300]!r}"
        except OSError as error:
            last = str(error)
        time.sleep(0.5)
    raise SystemExit(f"gunicorn did not answer within {seconds} s: {last}")


def check_signed_in(url: str, people_file: Path) -> None:
    """The simulated people's sessions work on this server: an agent's dashboard and a portal user's home answer
    200, not a redirect to the sign-in page (which locust would follow and count as a fast success)."""
    import urllib.parse
    import urllib.request

    seats = json.loads(people_file.read_text())
    for seat, path in ((seats["agents"][0], "/agent/"), (seats["portal"][0], "/portal/")):
        opener = urllib.request.build_opener(urllib.request.HTTPRedirectHandler())
        opener.addheaders = [("Cookie", f"sessionid={seat['session']}")]
        with opener.open(f"{url}{path}", timeout=30) as response:  # noqa: S310 - loopback
            if urllib.parse.urlparse(response.geturl()).path != path:
                raise SystemExit(f"{seat['username']}'s session is not signed in on the server: {path} led to "
                                 f"{response.geturl()}")


def read_stats(prefix: str) -> list[dict]:
    with open(f"{prefix}_stats.csv") as handle:
        return list(csv.DictReader(handle))


def read_failures(prefix: str) -> list[dict]:
    try:
        with open(f"{prefix}_failures.csv") as handle:
            return list(csv.DictReader(handle))
    except OSError:
        return []


def run_size(size: int, bouncer: PgBouncer, work: Path) -> dict:
    dbs.use(size)
    print(f"\n######## {size:,} tickets: {prepare(size)}", flush=True)
    people_file = work / f"people-{size}.json"
    people(size, people_file)
    connection.close()
    url = bouncer.url("postgres", dbs.names[size])
    env = {**os.environ, "DATABASE_URL": url, "DATABASE_POOLER": "pgbouncer", "DEBUG": "0", "LOG_LEVEL": "WARNING",
           "CACHE_KEY_PREFIX": f"sd-load-{size}-{os.getpid()}", "BEAT_LOCK_KEY": f"sd-load-beat-{os.getpid()}",
           "SD_LOAD_PEOPLE": str(people_file), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    celery = str(BIN / "celery")
    procs = {
        "web": start("web", [str(BIN / "gunicorn"), "servicedesk.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
                             WEB_WORKERS, "--threads", WEB_THREADS, "--log-level", "warning"], env, work),
        **{f"worker{n}": start(f"worker{n}", [celery, "-A", "servicedesk", "worker", "--loglevel", "warning",
                                             "--concurrency", WORKER_CONCURRENCY, "--without-gossip",
                                             "--without-mingle", "--hostname", f"load{n}-{os.getpid()}@%h"],
                               env, work) for n in (1, 2)},
        "beat": start("beat", [celery, "-A", "servicedesk", "beat", "--loglevel", "warning", "--schedule",
                               str(work / "celerybeat-schedule"), "--pidfile", str(work / f"beat-{size}.pid")],
                      env, work),
    }
    try:
        wait_up(base, procs["web"])
        check_signed_in(base, people_file)
        before = counts()
        cpu_before = {name: tree_cpu_seconds(p.pid) for name, p in procs.items()}
        prefix = str(work / f"locust-{size}")
        users = AGENTS + PORTAL + SENDERS
        locust = [str(BIN / "locust"), "-f", str(ROOT / "bench" / "locust_desk.py"), "--headless", "-u", str(users),
                  "-r", "25", "--run-time", f"{SECONDS + users // 25 + 2}s", "--host", base, "--csv", prefix,
                  "--reset-stats", "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING"]
        loads = []

        def sample_load():
            time.sleep(SECONDS / 2)
            loads.append(machine_load(2.0))

        sampler = threading.Thread(target=sample_load, daemon=True)
        started = time.monotonic()
        sampler.start()
        runner = subprocess.Popen(locust, cwd=ROOT, env=env, stdout=open(work / f"locust-{size}.log", "w"),
                                  stderr=subprocess.STDOUT)
        locust_cpu = 0.0
        while runner.poll() is None:
            locust_cpu = max(locust_cpu, tree_cpu_seconds(runner.pid))
            time.sleep(1)
            if time.monotonic() - started > SECONDS + 180:
                runner.terminate()
        elapsed = time.monotonic() - started
        cpu = {name: tree_cpu_seconds(p.pid) - cpu_before[name] for name, p in procs.items()}
        cpu["locust"] = locust_cpu
        sampler.join(timeout=5)
        dbs.use(size)
        after = counts()
        time.sleep(10)  # what the workers still do once the load stops: the backlog they had
        drained = counts()
        connection.close()
    finally:
        stop(procs)
        celery_app.control.purge()  # nothing of this size's queues is left for the next size's workers
    return {"stats": read_stats(prefix), "failures": read_failures(prefix), "before": before, "after": after,
            "drained": drained, "cpu": cpu, "elapsed": elapsed, "load": loads[0] if loads else "not sampled"}


def report(size: int, result: dict) -> None:
    stats = result["stats"]
    print(f"\n== {size:,} tickets: {SECONDS} s of load after {AGENTS + PORTAL + SENDERS} simulated people started "
          f"({AGENTS} agents, {PORTAL} portal users, {SENDERS} event senders at {EVENTS_PER_S:.0f} events/s)")
    print(f"{'request':<58}{'count':>7}{'req/s':>8}{'fail':>6}{'p50':>7}{'p95':>7}{'p99':>7}  ms")
    for row in stats:
        name = row["Name"] if row["Name"] != "Aggregated" else "ALL"
        print(f"{(row['Type'] + ' ' + name).strip()[:57]:<58}{int(row['Request Count']):>7}"
              f"{float(row['Requests/s']):>8.1f}{int(row['Failure Count']):>6}{row['50%']:>7}{row['95%']:>7}"
              f"{row['99%']:>7}")
    for failure in result["failures"][:10]:
        print(f"  failure: {failure['Method']} {failure['Name']}: {failure['Error'][:150]} (x{failure['Occurrences']})")
    before, after, drained = result["before"], result["after"], result["drained"]
    taken = after["events"] - before["events"]
    processed = taken - (after["unprocessed"] - before["unprocessed"])
    print(f"events: {taken:,} taken in (over the measured {SECONDS} s and the start-up), {processed:,} of them "
          f"processed during the run; left unprocessed at the end {after['unprocessed']:,}, 10 s later {drained['unprocessed']:,}; "
          f"outbox pending {after['outbox pending']:,}; incidents {after['incidents'] - before['incidents']:+,}")
    cpu = result["cpu"]
    print("CPU used (seconds over the run, all processes of each): " + ", ".join(
        f"{name} {seconds:.0f}" for name, seconds in cpu.items()) + f" in {result['elapsed']:.0f} s of wall time "
        f"(2 CPUs give {2 * result['elapsed']:.0f})")
    print(f"machine mid-run: {result['load']}")
    total = next((r for r in stats if r["Name"] == "Aggregated"), None)
    if total:
        p95 = float(total["95%"])
        print(f"goal (no errors, p95 < {GOAL_P95_MS} ms): errors {total['Failure Count']}, p95 {p95:.0f} ms -> "
              f"{'met' if int(total['Failure Count']) == 0 and p95 < GOAL_P95_MS else 'NOT met'}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="sd-bench-load-"))
    results = {}
    with PgBouncer(work, POOL_SIZE) as bouncer:
        for size in SIZES:
            results[size] = run_size(size, bouncer, work)
            report(size, results[size])
            if bouncer.proc.poll() is not None:
                raise SystemExit(f"pgbouncer exited ({bouncer.proc.returncode}) during the run: see {work}")
    if len(SIZES) > 1:
        small, large = SIZES[0], SIZES[-1]
        print(f"\n== p95 by request type, {small:,} vs {large:,} tickets (ms)")
        by_name = {size: {r["Name"]: r for r in results[size]["stats"]} for size in SIZES}
        for name, row in by_name[small].items():
            other = by_name[large].get(name)
            if other:
                print(f"{name[:58]:<60}{row['95%']:>8}{other['95%']:>8}")
    print(f"\nlogs and locust's CSV files: {work}")
    print(f"machine at the end: {machine_load()}")
    print("(the load generator, the servers, the workers and PostgreSQL share the machine's CPUs: what locust "
          "uses, above, is CPU the desk did not have)")
    sys.stdout.flush()


main()
