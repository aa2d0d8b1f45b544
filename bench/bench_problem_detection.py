"""Problem detection (problems.detection.candidates_detect): how long does finding clusters of recurring
incidents take over 10k and 100k stored incidents, and what does it cost beside the bare grouping written by
hand in SQL in the same run?

The incidents are generated with bulk_create over the last 365 days: titles of 4-6 words drawn from a 3,000
word vocabulary (so two of them are rarely alike), 70 % with one of 200 services, 20 % with one of 30
categories. Planted on top: 5 clusters of 6 incidents with the same service and category, and 5 clusters of
6 incidents with alike titles ("VPN gateway drops the session (3)"...), all in the last week.

Two windows: the default 30 days (about 8 % of the incidents are looked at) and 365 days (every incident is:
the worst case). For each: the detector's full run (both rules, the candidates upserted; the first run writes
them, the next ones find nothing new), and the raw SQL baseline of the same grouping (GROUP BY service /
CI and category HAVING count, and the pg_trgm self-join) without the clustering and the upsert. Both sizes are
kept at once (a database each); the 30-day window's steady run and its baseline are measured in alternating
rounds with their spread (bench/common.py: interleave); the 365-day worst case, minutes a run at 100k, once per
size. Figures, not a pass/fail test.
"""

import os
import random
import string
import time
from datetime import timedelta

os.environ["CELERY_BROKER_URL"] = "memory://"  # before Django and Celery read it

from common import SizeDatabases, interleave, machine_load, summary, timed  # noqa: E402

SIZES = [10_000, int(os.environ.get("SD_BENCH_PROBLEMS_LARGE", "100000"))]
print(f"machine at start: {machine_load()}")
dbs = SizeDatabases("servicedesk_bench_problems", SIZES)

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from incidents.models import Category, Incident  # noqa: E402
from problems.detection import PAIRS_SQL, candidates_detect  # noqa: E402
from problems.models import DetectionSettings, ProblemCandidate  # noqa: E402
from servicedesk.models import Service  # noqa: E402
from servicedesk.services import user_provision  # noqa: E402

ROUNDS = int(os.environ.get("SD_BENCH_ROUNDS", "3"))
REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "2"))
PLANTED = 5
PLANTED_SIZE = 6
TOPICS = ["VPN gateway drops the session", "Payroll export misses overtime", "SAP login page times out",
          "Badge reader rejects new cards", "Mail relay bounces invoices"]


def vocabulary(rng) -> list[str]:
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(3000)]


def fill(total: int, requester, services, categories, words) -> None:
    """Stored incidents up to `total` (the noise), generated with bulk_create; the planted ones are replaced."""
    # Raw deletes: bulk-created incidents have no timeline or clocks to cascade to, and the ORM would delete
    # 90k rows one relation at a time.
    ProblemCandidate.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM problems_problemcandidate_incidents")
        cursor.execute("DELETE FROM incidents_incident WHERE number LIKE 'INCP%%' "
                       "OR (number LIKE 'INCB%%' AND number >= %s)", [f"INCB{total:08d}"])
        if cursor.rowcount > 100:
            # A desk never loses 90 % of its incidents: rebuild the indexes so the smaller size is measured on
            # a table that never held the larger one (a GIN index keeps its emptied pages).
            cursor.execute("REINDEX TABLE incidents_incident")
    have = Incident.objects.filter(number__startswith="INCB").count()
    rng = random.Random(have)
    now = timezone.now()
    batch = []
    for n in range(have, total):
        batch.append(Incident(
            number=f"INCB{n:08d}", title=" ".join(rng.sample(words, rng.randint(4, 6))).capitalize(),
            requester=requester, created_at=now - timedelta(minutes=rng.randint(0, 365 * 24 * 60)),
            service=rng.choice(services) if rng.random() < .7 else None,
            category=rng.choice(categories) if rng.random() < .2 else None,
            status=rng.choice(["new", "in_progress", "resolved", "closed"])))
        if len(batch) == 5000:
            Incident.objects.bulk_create(batch)
            batch = []
    if batch:
        Incident.objects.bulk_create(batch)
    planted = []
    for c in range(PLANTED):
        for n in range(PLANTED_SIZE):
            planted.append(Incident(number=f"INCPS{c}{n:02d}", title=" ".join(rng.sample(words, 5)).capitalize(),
                                    requester=requester, created_at=now - timedelta(days=n + 1),
                                    service=services[c], category=categories[c], status="new"))
            planted.append(Incident(number=f"INCPT{c}{n:02d}",
                                    title=f"{TOPICS[c]} ({n + 1})",
                                    requester=requester, created_at=now - timedelta(days=n + 1), status="new"))
    Incident.objects.bulk_create(planted)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE incidents_incident")


GROUP_SQL = """
SELECT {column}, category_id, count(*), min(created_at), max(created_at), array_agg(id ORDER BY id)
FROM incidents_incident i
WHERE created_at >= %(since)s AND status <> 'cancelled' AND {column} IS NOT NULL AND category_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM problems_problemincident l WHERE l.incident_id = i.id)
GROUP BY {column}, category_id HAVING count(*) >= %(min)s
"""


def baseline(since, config):
    with transaction.atomic(), connection.cursor() as cursor:
        groups = 0
        for column in ("service_id", "configuration_item_id"):
            cursor.execute(GROUP_SQL.format(column=column), {"since": since, "min": config.min_incidents})
            groups += len(cursor.fetchall())
        cursor.execute("SELECT set_config('pg_trgm.similarity_threshold', %s, true)", [str(config.similarity)])
        cursor.execute(PAIRS_SQL, {"since": since})
        pairs = len(cursor.fetchall())
    return groups, pairs


def main():
    words = vocabulary(random.Random(7))
    configs = {}
    for total in SIZES:
        dbs.use(total)
        requester, _ = user_provision(username="bench-requester", role="requester", email="bench@example.com")
        services = [Service.objects.get_or_create(name=f"Bench service {n}")[0] for n in range(200)]
        categories = [Category.objects.get_or_create(name=f"Bench category {n}", parent=None)[0] for n in range(30)]
        config = configs[total] = DetectionSettings.get()
        config.min_incidents, config.similarity = 3, 0.5
        started = time.perf_counter()
        fill(total, requester, services, categories, words)
        stored = Incident.objects.count()
        print(f"\n== {stored:,} incidents stored (ready in {time.perf_counter() - started:.1f}s)")
        for window in (365, 30):  # the 30-day window stays set for the rounds below
            config.window_days = window
            config.save()
            since = timezone.now() - timedelta(days=window)
            looked = Incident.objects.filter(created_at__gte=since).count()
            ProblemCandidate.objects.all().delete()
            first_started = time.perf_counter()
            result = candidates_detect()
            first = (time.perf_counter() - first_started) * 1000
            planted = ProblemCandidate.objects.filter(incidents__number__startswith="INCP").distinct().count()
            groups, pairs = baseline(since, config)
            print(f"  window {window} days: {looked:,} incidents looked at; {result.found} clusters "
                  f"({planted} of the {2 * PLANTED} planted found; raw grouping: {groups} groups, {pairs:,} alike pairs)")
            print(f"    detector, first run (writes candidates) {first:9.1f} ms")
            if window == 365:
                rounds = ROUNDS if looked <= 20_000 else 1  # the worst case takes minutes a run
                print(f"    detector, steady run      {summary(timed(candidates_detect, rounds))}")
                print(f"    raw SQL baseline          "
                      f"{summary(timed(lambda since=since, config=config: baseline(since, config), rounds))}")

    def case(size):
        config = configs[size]
        return candidates_detect, lambda: baseline(timezone.now() - timedelta(days=30), config)

    results = interleave({"detector steady run, 30-day window (raw: the bare grouping)": case},
                         sizes=SIZES, use=dbs.use, rounds=ROUNDS, repeat=REPEAT)
    results.print("problem detection")
    print(f"machine at the end: {machine_load()}")


main()
