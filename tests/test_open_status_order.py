"""The open statuses reach SQL in the order of the partial indexes' predicates, in every process.

PostgreSQL drops a WHERE clause that repeats a partial index's predicate only when the IN list is the same list
in the same order. `OPEN` used to be a frozenset, whose order changes with each process's string hashing
(PYTHONHASHSEED): in some gunicorn workers the sidebar counts at a million incidents then went through a
BitmapAnd and the heap (66 ms) instead of the covering index alone (10 ms); docs/benchmarks.md has the plans.
"""

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import workspace as incident_workspace
from incidents.models import Incident
from incidents.states import OPEN as INCIDENT_OPEN
from requests_app import workspace as request_workspace
from requests_app.models import ServiceRequest
from requests_app.states import OPEN as REQUEST_OPEN

ROOT = Path(__file__).resolve().parents[1]


def open_index_predicates(model) -> list[tuple[str, list]]:
    """(index name, the status list of its condition) of every partial index on the open statuses."""
    found = []
    for index in model._meta.indexes:
        condition = index.condition
        if condition is None:
            continue
        for child in condition.children:
            if isinstance(child, tuple) and child[0] == "status__in":
                found.append((index.name, [str(s) for s in child[1]]))
    return found


def in_list(statuses) -> str:
    return "IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def test_every_open_partial_index_lists_the_statuses_in_the_order_of_open():
    incident_indexes = open_index_predicates(Incident)
    request_indexes = open_index_predicates(ServiceRequest)
    assert {name for name, _ in incident_indexes} >= {"incident_open_queue_cov_idx", "incident_open_sla_due_idx"}
    assert {name for name, _ in request_indexes} >= {"request_open_sla_due_idx", "request_open_assignee_idx"}
    for name, statuses in incident_indexes:
        assert statuses == [str(s) for s in INCIDENT_OPEN], name
    for name, statuses in request_indexes:
        assert statuses == [str(s) for s in REQUEST_OPEN], name


def test_the_sidebar_counts_query_repeats_the_index_predicate_word_for_word(agent, db):
    with CaptureQueriesContext(connection) as captured:
        incident_workspace.queue_counts(agent)
    incident_sql = captured.captured_queries[-1]["sql"]
    with CaptureQueriesContext(connection) as captured:
        request_workspace.queue_counts(agent)
    request_sql = captured.captured_queries[-1]["sql"]
    _, incident_predicate = next(p for p in open_index_predicates(Incident) if p[0] == "incident_open_queue_cov_idx")
    _, request_predicate = next(p for p in open_index_predicates(ServiceRequest)
                                if p[0] == "request_open_assignee_idx")
    assert f'WHERE "incidents_incident"."status" {in_list(incident_predicate)}' in incident_sql
    assert f'"requests_app_servicerequest"."status" {in_list(request_predicate)}' in request_sql


def test_the_order_is_the_same_whatever_the_process_string_hashing():
    """Six processes with six hash seeds (what six gunicorn workers get): one order."""
    code = ("from incidents.states import OPEN as I; from requests_app.states import OPEN as R; "
            "print(','.join(I), ','.join(R))")
    seen = set()
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60, check=True)
        seen.add(out.stdout.strip())
    assert seen == {",".join(INCIDENT_OPEN) + " " + ",".join(REQUEST_OPEN)}
