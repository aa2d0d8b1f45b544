"""A million tickets: the pages that must stay flat, timed through the HTTP stack (Django's test client, so
middleware, templates and serializers count) on databases seeded by `seed_demo --tickets N`.

    DATABASE_URL=postgres://.../sd_10k  python bench/bench_million.py
    DATABASE_URL=postgres://.../sd_1m   python bench/bench_million.py

Each figure: a warm-up, then SD_BENCH_REPEAT (15) requests; prints the median and min-max in ms and the queries
per request. Figures: the "all open" queue page 1 and a deep page (the cursor of the row halfway down the
queue), incident search for a common word ("slow", one incident in eight) and a rare one (a workstation
name, a few per million), and the incident and request list APIs (page 1 and page 20 through `next`).
Run the two sizes one after the other on an otherwise quiet machine; docs/large-installations.md has the
figures. Not a pass/fail test.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
os.environ["DEBUG"] = "0"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from incidents.models import Incident  # noqa: E402
from incidents.states import OPEN  # noqa: E402
from incidents.workspace import queue_queryset  # noqa: E402
from servicedesk.keyset import _encode, _salt, _terms  # noqa: E402

REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "15"))


def measure(label, call):
    call()
    samples, queries = [], 0
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = call()
            samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (label, response.status_code)
        queries = len(captured.captured_queries)
    print(f"{label:<34} median {statistics.median(samples):7.1f} ms   "
          f"min-max {min(samples):6.1f}-{max(samples):6.1f}   {queries} queries")


def deep_cursor(agent):
    """The cursor of the row halfway down the "all open" queue (found once with OFFSET, outside the timing)."""
    queryset, terms = _terms(queue_queryset(agent, "all", "priority"))
    half = Incident.objects.filter(status__in=OPEN).count() // 2
    row = queryset[half]
    # Signed as the queue signs its cursors (servicedesk.keyset): a cursor it cannot read would show page 1.
    return _encode([getattr(row, t.name) for t in terms], False, _salt(queryset, terms)), row.number, half


def main():
    agent = get_user_model().objects.get(username="agent")
    web = Client()
    web.force_login(agent)
    api = APIClient()
    api.force_authenticate(agent)
    total = Incident.objects.count()
    rare = (Incident.objects.filter(description__contains="workstation WS").order_by("id")
            .values_list("description", flat=True).first() or "WS00001.").split("workstation ")[1].rstrip(".")
    cursor, after, half = deep_cursor(agent)
    deep = web.get("/agent/queue/all/", {"cursor": cursor}).content.decode()
    first = deep.split('data-testid="incident-row" data-number="', 1)[1][:10]
    if first == web.get("/agent/queue/all/").content.decode().split('data-number="', 1)[1][:10]:
        raise SystemExit(f"the deep cursor (after {after}) gave page 1: the queue did not read it")
    print(f"{total:,} incidents, {Incident.objects.filter(status__in=OPEN).count():,} open; "
          f"rare word {rare}; deep page at row {half:,}")
    measure("queue all open, page 1", lambda: web.get("/agent/queue/all/"))
    measure("queue all open, deep page", lambda: web.get("/agent/queue/all/", {"cursor": cursor}))
    measure("dashboard", lambda: web.get("/agent/"))
    measure("search common word (slow)", lambda: web.get("/agent/search/", {"q": "slow"}))
    measure(f"search rare word ({rare})", lambda: web.get("/agent/search/", {"q": rare}))
    measure("API incidents, page 1", lambda: api.get("/api/v1/incidents/"))
    page = api.get("/api/v1/incidents/").json()
    for _ in range(19):
        page = api.get(page["next"]).json()
    measure("API incidents, page 20", lambda: api.get(page["next"]))
    measure("API incidents ?q=slow", lambda: api.get("/api/v1/incidents/", {"q": "slow"}))
    measure("API requests, page 1", lambda: api.get("/api/v1/requests/"))
    measure("requests queue all open", lambda: web.get("/agent/requests/queue/all/"))


if __name__ == "__main__":
    main()
