"""End to end with the real Prometheus Alertmanager (Debian's prometheus-alertmanager, tests/monitoring/peers.py):
an alert posted to Alertmanager's API reaches our webhook endpoint on a live test server (Alertmanager sends it,
with the source's token in `Authorization`), the events are stored, a real Celery worker processes them and
an incident opens on channel monitoring; the same alert posted again as ended makes Alertmanager send the
resolved notification, which clears the alert and resolves the incident. Skipped, saying so, when the program
is not installed."""

import pytest

from monitoring.models import Event
from monitoring.sources import event_source_create
from tests.monitoring.peers import Alertmanager, alertmanager_binary, later, now
from tests.peers import HttpReceiver
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_alertmanager():
    alertmanager_binary()


def test_the_harness_alertmanager_sends_firing_then_resolved_with_the_token(tmp_path):
    """The peer itself, against a plain HTTP receiver: what our endpoint will be sent."""
    with HttpReceiver(status=200) as receiver, Alertmanager(tmp_path, webhook_url=receiver.url,
                                                            token="sdev_harness") as am:
        started = now()
        am.post_alerts([am.alert("DiskFull", starts_at=started, ends_at=later(hours=1), summary="Disk 95% full",
                                 service="checkout", severity="critical", instance="db-1")])
        assert wait_for(lambda: len(receiver.requests) >= 1, timeout=20), am.log()[-3000:]
        first = receiver.requests[0]
        assert first["path"] == "/hooks/servicedesk"
        assert first["headers"]["Authorization"] == "Token sdev_harness"
        body = receiver.json_bodies()[0]
        assert (body["version"], body["status"]) == ("4", "firing")
        assert body["groupLabels"] == {"alertname": "DiskFull", "service": "checkout"}
        [alert] = body["alerts"]
        assert alert["labels"] == {"alertname": "DiskFull", "service": "checkout", "severity": "critical",
                                   "instance": "db-1"}
        assert alert["annotations"] == {"summary": "Disk 95% full"}
        assert alert["fingerprint"]

        am.post_alerts([am.alert("DiskFull", starts_at=started, ends_at=now(), summary="Disk 95% full",
                                 service="checkout", severity="critical", instance="db-1")])
        assert wait_for(lambda: any(b["status"] == "resolved" for b in receiver.json_bodies()), timeout=20), \
            am.log()[-3000:]
        resolved = next(b for b in receiver.json_bodies() if b["status"] == "resolved")
        assert resolved["alerts"][0]["status"] == "resolved"
        assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]
        assert resolved["alerts"][0]["startsAt"] == alert["startsAt"]
    assert Event.objects.count() == 0  # nothing reached our endpoint: the receiver took it


def test_alertmanager_delivers_to_our_endpoint_and_the_events_are_stored(live_server, tmp_path):
    source, token = event_source_create(name="prometheus", kind="alertmanager")
    url = f"{live_server.url}/api/v1/integrations/alertmanager/"
    with Alertmanager(tmp_path, webhook_url=url, token=token) as am:
        started = now()
        am.post_alerts([am.alert("HighErrorRate", starts_at=started, ends_at=later(hours=1),
                                 summary="5xx rate above 5%", service="checkout", severity="critical")])
        assert wait_for(lambda: Event.objects.filter(source=source).exists(), timeout=20), am.log()[-3000:]
        assert am.notifications_sent() >= 1
        event = Event.objects.get(source=source)
        assert (event.status, event.severity, event.summary) == ("firing", "critical", "5xx rate above 5%")
        assert event.labels["alertname"] == "HighErrorRate"
        assert event.fingerprint
