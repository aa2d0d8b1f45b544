"""Two workers processing at once: the same outage becomes one alert and one incident, every event is
processed once, whatever the interleaving (row locks on the alerts, the partial unique index on live alerts,
advisory locks on correlation, retries on deadlock)."""

import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connections

from incidents.models import Incident
from monitoring.ingest import ingest
from monitoring.models import Alert, Event
from monitoring.processing import process_events
from monitoring.sources import event_source_create
from servicedesk.models import Service
from tests.monitoring.test_processing import T0


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_one_outage_make_one_alert_per_fingerprint_and_one_incident():
    Service.objects.create(name="checkout")
    source, _ = event_source_create(name="Prometheus", kind="generic")
    batches = []
    for worker in range(2):
        events = [{"source_id": f"check-{n % 5}", "status": "firing", "severity": "critical",
                   "summary": f"Check {n % 5} failing", "service": "checkout",
                   "occurred_at": (T0 + timedelta(seconds=worker * 100 + n)).isoformat()} for n in range(60)]
        batches.append(ingest(source, {"events": events}, kind="generic", now=T0 + timedelta(minutes=5)))
    barrier, errors = threading.Barrier(2), []

    def work(ids):
        try:
            barrier.wait()
            for _attempt in range(5):  # what the outbox does on a deadlock: retry the message
                try:
                    process_events(ids, now=T0 + timedelta(minutes=5))
                    break
                except OperationalError:
                    continue
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(ids,)) for ids in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert not Event.objects.filter(processed_at__isnull=True).exists()
    assert Event.objects.filter(outcome="error").count() == 0
    assert Alert.objects.count() == 5
    assert sum(Alert.objects.values_list("count", flat=True)) == 120
    assert Incident.objects.count() == 1
    assert set(Alert.objects.values_list("incident_id", flat=True)) == {Incident.objects.get().id}
