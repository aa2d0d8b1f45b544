"""The read replica (DATABASE_REPLICA_URL, servicedesk.replica): a real second connection to the test database
as a PostgreSQL role that can only read (default_transaction_read_only=on), standing in for a streaming
replica. Reports and exports read through it and give the same figures; writes, and reads inside a write
transaction, stay on default; without a replica everything reads from default."""

import csv
import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.models import Incident
from servicedesk.models import Team
from servicedesk.replica import REPLICA, read_alias, replica_reads
from sla.models import BusinessCalendar, ClockState, SlaClock
from sla.reports import report_params, sla_report

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def replica(transactional_db):
    """A read-only role on the test database, added as the "replica" connection for the test."""
    default = connection.settings_dict
    role = f"{default['NAME']}_reader"[:63]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE ROLE "{role}" LOGIN')
        cursor.execute(f'ALTER ROLE "{role}" SET default_transaction_read_only = on')
        cursor.execute(f'GRANT CONNECT ON DATABASE "{default["NAME"]}" TO "{role}"')
        cursor.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        cursor.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    alias = {**default, "USER": role, "PASSWORD": "", "TEST": dict(default["TEST"])}
    settings.DATABASES[REPLICA] = connections.settings[REPLICA] = alias
    try:
        # Connected here: Django's test case refuses to open connections of aliases it was not told about.
        connections[REPLICA].connect()
        yield connections[REPLICA]
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        settings.DATABASES.pop(REPLICA)  # the same dict as connections.settings
        with connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')  # its grants, here and on the database
            cursor.execute(f'DROP ROLE "{role}"')


def test_without_a_replica_reports_read_from_default():
    assert REPLICA not in connections.settings
    assert read_alias() == "default"
    with replica_reads(), CaptureQueriesContext(connection) as queries:
        Incident.objects.count()
    assert len(queries) == 1


def test_the_replica_connection_can_only_read(replica):
    with pytest.raises(DatabaseError, match="read-only transaction"), replica.cursor() as cursor:
        cursor.execute("INSERT INTO servicedesk_team (name, description) VALUES ('x', '')")


def test_reads_go_to_the_replica_only_when_asked_and_never_inside_a_write_transaction(replica, incident_factory):
    incident_factory(title="Printer jammed")
    assert read_alias() == REPLICA
    with CaptureQueriesContext(replica) as on_replica, CaptureQueriesContext(connection) as on_default:
        assert Incident.objects.count() == 1  # not asked: default
        with replica_reads():
            assert Incident.objects.count() == 1  # asked: the replica
            Team.objects.create(name="Written while reading")  # a write: default (the replica would refuse it)
            with transaction.atomic():
                assert read_alias() == "default"
                assert Team.objects.filter(name="Written while reading").exists()  # in a transaction: default
    assert len(on_replica) == 1 and "COUNT(*)" in on_replica[0]["sql"]
    assert any("INSERT INTO" in q["sql"] for q in on_default)


def test_an_incident_queue_export_reads_its_rows_from_the_replica(replica, agent_client, incident_factory):
    for n in range(3):
        incident_factory(title=f"Laptop {n} will not boot")
    with CaptureQueriesContext(replica) as on_replica:
        response = agent_client.get("/agent/queue/all/", {"export": "csv"})
        body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(body)))
    assert sorted(r[rows[0].index("Title")] for r in rows[1:]) == [f"Laptop {n} will not boot" for n in range(3)]
    assert any("incidents_incident" in q["sql"] for q in on_replica)


def test_the_sla_report_reads_from_the_replica_and_gives_the_same_figures(replica, client_for, make_user):
    manager = make_user("manager", username="maria", teams=["Network"])
    network = Team.objects.get(name="Network")
    always = BusinessCalendar.objects.create(name="Always", is_24x7=True)
    stopped = timezone.now() - timedelta(days=1)
    for n, (elapsed, state) in enumerate(((600, ClockState.MET), (1200, ClockState.MET),
                                          (3600, ClockState.BREACHED))):
        SlaClock.objects.create(
            ticket_type="incident", ticket_id=10_000 + n, kind="first_response", state=state, team=network,
            calendar=always, priority=3, target_seconds=1800, policy_name="Standard",
            started_at=stopped - timedelta(seconds=elapsed), elapsed_seconds=elapsed, stopped_at=stopped,
            breached_at=stopped if state == ClockState.BREACHED else None, segments=[])
    day = timezone.localdate(stopped).isoformat()
    query = {"from": day, "to": day, "group_by": "team", "kind": "first_response"}
    expected = sla_report(report_params(query)).as_dict()  # computed on default, outside the router's reach

    with CaptureQueriesContext(replica) as on_replica:
        body = client_for(manager).get("/api/v1/sla/report/", query).json()
    assert sum("sla_slaclock" in q["sql"] for q in on_replica) >= 3  # the groups, percentiles, breached list
    assert all(q["sql"].startswith("SELECT") for q in on_replica)
    assert body["totals"] == expected["totals"]
    assert body["totals"]["first_response"]["met"] == 2 and body["totals"]["first_response"]["breached"] == 1
    assert body["breached"]["count"] == 1


def test_the_insights_permission_scope_is_read_from_default_and_the_figures_from_the_replica(
        replica, client_for, make_user):
    """@replica_view sends the dashboard's reads to the replica; who may see which team (role, memberships) is
    read from default, which a lagging replica could not hold back."""
    manager = make_user("manager", username="maria", teams=["Network"])
    with CaptureQueriesContext(replica) as on_replica, CaptureQueriesContext(connection) as on_default:
        response = client_for(manager).get("/api/v1/insights/measures/")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["team"] == "My teams"
    assert not [q["sql"] for q in on_replica if "servicedesk_teammembership" in q["sql"]
                or "auth_user_groups" in q["sql"]]
    assert any("servicedesk_teammembership" in q["sql"] for q in on_default)
    assert on_replica  # the figures themselves still come from the replica
