"""Foundation figures: ticket numbers per second (sequence vs raw SQL baseline) and bulk seeding speed."""

import threading
import time

from common import setup_bench_database

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


ours = numbers_per_second(lambda: number_next("INC"))
raw = numbers_per_second(raw_nextval)
print(f"numbering, 1 thread : {ours:9.0f} numbers/s   raw SQL nextval {raw:9.0f}/s   ratio {ours / raw:.2f}")

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
