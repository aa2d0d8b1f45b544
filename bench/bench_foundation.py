"""Foundation figures: ticket numbers per second (sequence vs raw SQL baseline) and bulk seeding speed.

The numbering figure is taken in rounds (SD_BENCH_ROUNDS, default 5), ours and the raw `nextval` alternating
with the order flipping every round, after a discarded warm-up; it prints the median rate with its min-max across
rounds and the per-round ratio."""

import os
import threading
import time

from common import machine_load, setup_bench_database, spread

setup_bench_database()

from django.db import connection  # noqa: E402

from incidents.demo import seed_incidents, seed_tickets  # noqa: E402
from incidents.models import Incident  # noqa: E402
from servicedesk.demo import seed_base  # noqa: E402
from servicedesk.numbering import number_next  # noqa: E402

N = 5000


def numbers_per_second(fn, n=N) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - started)


def raw_nextval():
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('sd_number_inc')")
        cursor.fetchone()


print(f"machine at start: {machine_load()}")
ROUNDS = int(os.environ.get("SD_BENCH_ROUNDS", "5"))
numbers_per_second(lambda: number_next("INC"), 500)  # warm-up, discarded
numbers_per_second(raw_nextval, 500)
ours, raw = [], []
for r in range(ROUNDS):
    for which in (("ours", "raw") if r % 2 == 0 else ("raw", "ours")):
        if which == "ours":
            ours.append(numbers_per_second(lambda: number_next("INC")))
        else:
            raw.append(numbers_per_second(raw_nextval))
print(f"numbering, 1 thread : {spread(ours, '.0f')} numbers/s   raw SQL nextval {spread(raw, '.0f')}/s   "
      f"ratio {spread([a / b for a, b in zip(ours, raw, strict=True)])}   ({ROUNDS} rounds: median [min-max])")

threads, per_thread = 8, 1000


def worker():
    for _ in range(per_thread):
        number_next("INC")
    connection.close()


started = time.perf_counter()
pool = [threading.Thread(target=worker) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
print(f"numbering, {threads} threads: {threads * per_thread / (time.perf_counter() - started):9.0f} numbers/s")

seed_base()
seed_incidents()  # categories, canned responses and rules the generated incidents use
Incident.objects.all().delete()
for total in (10_000,):
    started = time.perf_counter()
    made = seed_tickets(total)
    took = time.perf_counter() - started
    print(f"seed_demo --tickets {total}: {made} incidents + timelines in {took:.2f}s ({made / took:,.0f} incidents/s)")
print(f"machine at the end: {machine_load()}")
