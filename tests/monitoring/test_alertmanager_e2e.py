"""End to end with the real Prometheus Alertmanager (Debian's prometheus-alertmanager, tests/monitoring/peers.py):
an alert posted to Alertmanager's API reaches our webhook endpoint on a live test server (Alertmanager sends it,
with the source's token in `Authorization`), the events are stored, a real Celery worker processes them and
an incident opens on channel monitoring; the same alert posted again as ended makes Alertmanager send the
resolved notification, which clears the alert and resolves the incident. Skipped, saying so, when the program
is not installed."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from incidents.models import Channel, Incident
from incidents.states import Status as IncidentStatus
from monitoring.models import Alert, Event
from monitoring.sources import event_source_create
from servicedesk.outbox import outbox_relay
from tests.monitoring.peers import Alertmanager, FlakyProxy, alertmanager_binary, later, now
from tests.peers import HttpReceiver, free_port
from tests.workers import celery_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_alertmanager():
    alertmanager_binary()


@pytest.fixture(autouse=True)
def _resolution_code(db):
    """Recoveries resolve with code "fixed", seeded by incidents' migration; a transactional test starts from an
    emptied database, so bring it back."""
    from incidents.models import ResolutionCode

    ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})


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


def fire_then_resolve(am: Alertmanager, source, *, timeout: float = 60.0):
    """Post an alert to Alertmanager, wait for its incident; post it ended, wait for the incident to resolve.
    Returns (incident, alert) as they ended up."""
    started = now()
    labels = {"service": "checkout", "severity": "critical", "instance": "web-1"}
    am.post_alerts([am.alert("HighErrorRate", starts_at=started, ends_at=later(hours=1),
                             summary="5xx rate above 5%", **labels)])
    assert wait_for(lambda: Incident.objects.filter(channel=Channel.MONITORING).exists(), timeout=timeout), (
        f"no incident opened; events: {list(Event.objects.values_list('status', 'outcome', 'error'))}\n"
        f"{am.log()[-2000:]}")
    incident = Incident.objects.get(channel=Channel.MONITORING)
    alert = Alert.objects.get(source=source)
    assert (alert.status, alert.incident_id, alert.classification) == ("firing", incident.id, "exception")
    assert incident.status != IncidentStatus.RESOLVED
    assert incident.title and ("5xx rate above 5%" in incident.title or "HighErrorRate" in incident.title)

    am.post_alerts([am.alert("HighErrorRate", starts_at=started, ends_at=now(), summary="5xx rate above 5%",
                             **labels)])
    assert wait_for(lambda: Incident.objects.filter(id=incident.id, status=IncidentStatus.RESOLVED).exists(),
                    timeout=timeout), (
        f"the incident did not resolve; events: {list(Event.objects.values_list('status', 'outcome', 'error'))}\n"
        f"{am.log()[-2000:]}")
    incident.refresh_from_db()
    alert.refresh_from_db()
    return incident, alert


@pytest.mark.worker
def test_an_alert_posted_to_alertmanager_opens_an_incident_and_its_resolution_resolves_it_through_a_real_worker(
        live_server, worker, tmp_path):
    source, token = event_source_create(name="prometheus", kind="alertmanager")
    url = f"{live_server.url}/api/v1/integrations/alertmanager/"
    with Alertmanager(tmp_path, webhook_url=url, token=token) as am:
        incident, alert = fire_then_resolve(am, source)
        assert am.notifications_sent() >= 2

    assert alert.status == "resolved" and alert.cleared_at is not None
    assert incident.channel == Channel.MONITORING
    assert Incident.objects.count() == 1  # one incident, however many notifications Alertmanager sent
    assert Alert.objects.count() == 1
    events = Event.objects.filter(source=source)
    assert set(events.values_list("status", flat=True)) == {"firing", "resolved"}
    assert not events.filter(processed_at__isnull=True).exists()
    assert not events.filter(outcome=Event.Outcome.ERROR).exists()


def test_with_no_broker_at_all_the_outbox_relay_in_this_process_does_the_same(live_server, tmp_path):
    """No worker and a dead broker: Alertmanager is still answered 202, and the relay (as beat runs it) opens
    and then resolves the incident from what was stored."""
    source, token = event_source_create(name="prometheus", kind="alertmanager")
    url = f"{live_server.url}/api/v1/integrations/alertmanager/"
    stop = threading.Event()

    def relay():  # beat's job, every 200 ms instead of every 30 s
        while not stop.is_set():
            try:
                outbox_relay(min_age=timedelta(0))
            finally:
                connection.close()
            stop.wait(0.2)

    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"), \
            Alertmanager(tmp_path, webhook_url=url, token=token) as am:
        thread = threading.Thread(target=relay, daemon=True)
        thread.start()
        try:
            incident, alert = fire_then_resolve(am, source)
        finally:
            stop.set()
            thread.join(timeout=30)
        assert am.notifications_sent() >= 2
    assert alert.status == "resolved"
    assert Incident.objects.count() == 1
    assert not Event.objects.filter(processed_at__isnull=True).exists()


def test_the_harness_proxy_makes_alertmanager_send_the_same_notification_again(tmp_path):
    with HttpReceiver(status=200) as receiver, FlakyProxy(receiver.url, fail_first=1) as proxy, \
            Alertmanager(tmp_path, webhook_url=proxy.url, token="sdev_harness") as am:
        am.post_alerts([am.alert("DiskFull", starts_at=now(), ends_at=later(hours=1), service="checkout",
                                 severity="critical")])
        assert wait_for(lambda: len(receiver.requests) >= 2, timeout=30), am.log()[-3000:]
    first, second = receiver.json_bodies()[:2]
    assert first == second  # the very same notification, re-sent after the 503
    assert [f["status"] for f in proxy.forwarded[:2]] == [200, 200]


def test_a_notification_alertmanager_sends_again_after_a_5xx_changes_nothing(live_server, tmp_path):
    """Our endpoint stored the notification but Alertmanager heard 503 (a proxy in between) and sent it again:
    the second copy is stored as received and changes nothing (one alert counted once, one incident)."""
    source, token = event_source_create(name="prometheus", kind="alertmanager")
    url = f"{live_server.url}/api/v1/integrations/alertmanager/"
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"), FlakyProxy(url, fail_first=1) as proxy, \
            Alertmanager(tmp_path, webhook_url=proxy.url, token=token) as am:
        am.post_alerts([am.alert("HighErrorRate", starts_at=now(), ends_at=later(hours=1), summary="5xx above 5%",
                                 service="checkout", severity="critical")])
        assert wait_for(lambda: len(proxy.forwarded) >= 2, timeout=30), am.log()[-3000:]
        assert [f["status"] for f in proxy.forwarded[:2]] == [202, 202]
        assert proxy.forwarded[0]["body"] == proxy.forwarded[1]["body"]
        outbox_relay(min_age=timedelta(0))

    events = Event.objects.filter(source=source).order_by("id")
    assert events.count() == 2
    assert sorted(events.values_list("outcome", flat=True)) == sorted(
        [Event.Outcome.ALERT_OPENED, Event.Outcome.DUPLICATE])
    alert = Alert.objects.get(source=source)
    assert alert.count == 1
    assert Incident.objects.filter(channel=Channel.MONITORING).count() == 1
