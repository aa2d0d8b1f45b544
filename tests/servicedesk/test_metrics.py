"""/metrics: who may read it, and each of our figures against a state built for it (servicedesk.metrics)."""

import re
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.ingest import ingest
from monitoring.processing import process_events
from monitoring.sources import event_source_create
from servicedesk.models import Heartbeat, OutboxMessage
from sla.models import ClockState, SlaClock
from tests.peers import free_port

from .test_settings import settings_in_subprocess

pytestmark = pytest.mark.django_db

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(client, **headers) -> dict[str, float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def parse(text: str) -> dict[str, float]:
    """{'name{labels}': value} of every sample line."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match, f"not a Prometheus sample line: {line!r}"
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


# --- access ----------------------------------------------------------------------------------------------------


def test_it_answers_a_loopback_scrape_without_session_or_token(client):
    client.get("/healthz")  # a request django-prometheus counts (scrapes are answered before its counters)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    samples = parse(response.content.decode())
    assert samples["servicedesk_broker_up"] == 1.0
    assert "django_http_requests_total_by_method_total{method=\"GET\"}" in samples  # django-prometheus's


def test_with_a_token_set_it_refuses_a_missing_or_wrong_one_and_accepts_the_bearer(client, settings):
    settings.METRICS_TOKEN = "m3trics-s3cret"
    missing = client.get("/metrics")
    assert missing.status_code == 403 and b"METRICS_TOKEN" in missing.content
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token m3trics-s3cret").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer m3trics-s3cret-and-more").status_code == 403
    assert b"servicedesk_" not in missing.content
    assert "servicedesk_outbox_pending" in scrape(client, HTTP_AUTHORIZATION="Bearer m3trics-s3cret")


def test_an_address_outside_the_allowed_networks_gets_a_404_even_with_the_token(client, settings):
    settings.METRICS_TOKEN = "m3trics-s3cret"
    outside = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer m3trics-s3cret")
    assert outside.status_code == 404 and b"servicedesk_" not in outside.content

    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9",
                      HTTP_AUTHORIZATION="Bearer m3trics-s3cret").status_code == 200
    # Loopback is no longer in the list: refused too.
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer m3trics-s3cret").status_code == 404


def test_behind_a_local_proxy_the_client_address_is_the_one_the_proxy_saw(client, settings):
    """A reverse proxy on the same host connects from 127.0.0.1: with TRUSTED_PROXY_COUNT=1 the address it
    appended to X-Forwarded-For is judged, so the internet does not count as loopback."""
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200


def test_a_scrape_by_container_address_is_answered_whatever_its_host_and_never_redirected(client, settings):
    """Prometheus scrapes each web container by IP (dns_sd_configs): that Host is in no ALLOWED_HOSTS, and an
    http scrape of a production container (SECURE_SSL_REDIRECT) must not be sent to https."""
    settings.SECURE_SSL_REDIRECT = True  # before the client's first request: the middleware reads it once
    settings.ALLOWED_HOSTS = ["desk.example.com"]
    settings.METRICS_ALLOWED_NETWORKS = ["172.16.0.0/12"]
    settings.METRICS_TOKEN = "m3trics-s3cret"
    scrape = client.get("/metrics", HTTP_HOST="172.18.0.5:8000", REMOTE_ADDR="172.18.0.9",
                        HTTP_AUTHORIZATION="Bearer m3trics-s3cret")
    assert scrape.status_code == 200 and b"servicedesk_outbox_pending" in scrape.content
    # The checks still hold, and every other page still refuses the unknown host or redirects to https.
    assert client.get("/metrics", HTTP_HOST="172.18.0.5:8000", REMOTE_ADDR="172.18.0.9").status_code == 403
    assert client.get("/metrics", HTTP_HOST="172.18.0.5:8000", REMOTE_ADDR="192.0.2.1",
                      HTTP_AUTHORIZATION="Bearer m3trics-s3cret").status_code == 404
    assert client.get("/healthz", HTTP_HOST="172.18.0.5:8000").status_code == 400
    assert client.get("/healthz", HTTP_HOST="desk.example.com").status_code == 301
    assert "^metrics$" in settings.SECURE_REDIRECT_EXEMPT


def test_it_is_a_get_only_page_outside_the_api_schema(client, admin_client):
    assert client.post("/metrics").status_code == 405
    schema = admin_client.get("/api/schema/")
    assert schema.status_code == 200 and b"/metrics" not in schema.content


def test_a_bad_network_or_log_format_stops_start_up_naming_the_setting(tmp_path):
    out = settings_in_subprocess({"SERVICEDESK_VAR_DIR": str(tmp_path), "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,lan"},
                                 "s.METRICS_ALLOWED_NETWORKS")
    assert out.startswith("ERROR: django.core.exceptions.ImproperlyConfigured: METRICS_ALLOWED_NETWORKS: 'lan'")
    out = settings_in_subprocess({"SERVICEDESK_VAR_DIR": str(tmp_path), "LOG_FORMAT": "xml"}, "s.LOG_FORMAT")
    assert out.startswith("ERROR: django.core.exceptions.ImproperlyConfigured: LOG_FORMAT='xml'")
    out = settings_in_subprocess({"SERVICEDESK_VAR_DIR": str(tmp_path)},
                                 "(s.LOG_FORMAT, s.METRICS_TOKEN, s.METRICS_ALLOWED_NETWORKS)")
    assert out == "('plain', '', ['127.0.0.0/8', '::1/128'])"


# --- our figures -----------------------------------------------------------------------------------------------


def test_the_outbox_backlog_counts_pending_messages_and_ages_the_oldest_due_one(client):
    now = timezone.now()
    OutboxMessage.objects.bulk_create([
        OutboxMessage(handler="t.a", created_at=now - timedelta(minutes=5), next_attempt_at=now - timedelta(seconds=120)),
        OutboxMessage(handler="t.b", next_attempt_at=now - timedelta(seconds=10)),
        OutboxMessage(handler="t.c", next_attempt_at=now + timedelta(hours=1)),  # a retry waiting its backoff
        OutboxMessage(handler="t.d", state=OutboxMessage.State.FAILED, processed_at=now),
        OutboxMessage(handler="t.e", state=OutboxMessage.State.DONE, processed_at=now),
    ])
    samples = scrape(client)
    assert samples["servicedesk_outbox_pending"] == 3
    assert samples["servicedesk_outbox_failed"] == 1
    assert 120 <= samples["servicedesk_outbox_oldest_due_age_seconds"] < 150

    OutboxMessage.objects.filter(handler__in=["t.a", "t.b"]).update(state=OutboxMessage.State.DONE)
    samples = scrape(client)
    assert samples["servicedesk_outbox_pending"] == 1
    assert samples["servicedesk_outbox_oldest_due_age_seconds"] == 0  # the one left is not due yet


def test_the_queue_depth_is_read_per_queue_from_redis_priorities_included(client, settings):
    settings.SERVICEDESK_QUEUES = ["obs-test-events", "obs-test-sla"]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = ["obs-test-events", "obs-test-events\x06\x163", "obs-test-sla"]
    broker.delete(*keys)
    try:
        broker.rpush("obs-test-events", "m1", "m2")
        broker.rpush("obs-test-events\x06\x163", "m3")  # kombu keeps priority 3 under its own key
        samples = scrape(client)
    finally:
        broker.delete(*keys)
    assert samples['servicedesk_celery_queue_length{queue="obs-test-events"}'] == 3
    assert samples['servicedesk_celery_queue_length{queue="obs-test-sla"}'] == 0
    assert samples["servicedesk_broker_up"] == 1


def test_without_the_scale_settings_the_default_queue_is_read(client, settings):
    assert not hasattr(settings, "SERVICEDESK_QUEUES") or settings.SERVICEDESK_QUEUES
    if hasattr(settings, "SERVICEDESK_QUEUES"):
        del settings.SERVICEDESK_QUEUES
    samples = scrape(client)
    assert f'servicedesk_celery_queue_length{{queue="{settings.CELERY_TASK_DEFAULT_QUEUE}"}}' in samples


def test_a_broker_that_does_not_answer_is_a_figure_not_a_failed_scrape(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    samples = scrape(client)
    assert samples["servicedesk_broker_up"] == 0
    assert not any(name.startswith("servicedesk_celery_queue_length") for name in samples)
    assert samples['servicedesk_metrics_source_up{source="outbox"}'] == 1


def test_the_worker_heartbeat_age_is_reported_and_absent_before_the_first_one(client):
    assert "servicedesk_worker_heartbeat_age_seconds" not in scrape(client)
    Heartbeat.objects.create(name="worker", seen_at=timezone.now() - timedelta(seconds=40))
    assert 40 <= scrape(client)["servicedesk_worker_heartbeat_age_seconds"] < 60


def test_the_sla_sweep_lag_is_the_age_of_the_oldest_deadline_not_yet_marked(client, incident_factory):
    incident_factory()
    incident_factory()
    clocks = SlaClock.objects.filter(state=ClockState.RUNNING).order_by("id")
    assert clocks.count() >= 2
    samples = scrape(client)
    assert samples["servicedesk_sla_sweep_lag_seconds"] == 0 and samples["servicedesk_sla_sweep_backlog"] == 0

    now = timezone.now()
    first, second = clocks[0], clocks[1]
    SlaClock.objects.filter(id=first.id).update(due_at=now - timedelta(seconds=300), warn_at=now - timedelta(seconds=400))
    SlaClock.objects.filter(id=second.id).update(warn_at=now - timedelta(seconds=100))
    samples = scrape(client)
    assert samples["servicedesk_sla_sweep_backlog"] == 3  # one breach and two warnings due
    assert 400 <= samples["servicedesk_sla_sweep_lag_seconds"] < 430

    # The sweep has marked them: nothing is late any more.
    from sla.sweep import sla_sweep

    sla_sweep()
    samples = scrape(client)
    assert samples["servicedesk_sla_sweep_lag_seconds"] == 0 and samples["servicedesk_sla_sweep_backlog"] == 0


def test_events_received_and_processed_are_counted_from_the_database(client):
    source, _ = event_source_create(name="zabbix", kind="generic")
    ids = ingest(source, {"events": [
        {"source_id": f"disk-{n}", "status": "firing", "severity": "info", "summary": f"Disk {n} at 80%"}
        for n in range(3)]}, kind="generic")
    assert len(ids) == 3
    samples = scrape(client)
    assert samples["servicedesk_events_received_max_id"] == max(ids)
    assert samples["servicedesk_events_unprocessed"] == 3
    assert samples["servicedesk_events_processed_estimate"] == max(ids) - 3
    assert samples["servicedesk_events_oldest_unprocessed_age_seconds"] >= 0

    process_events(ids[:2])
    after = scrape(client)
    assert after["servicedesk_events_unprocessed"] == 1
    assert after["servicedesk_events_processed_estimate"] == samples["servicedesk_events_processed_estimate"] + 2
    assert after["servicedesk_events_received_max_id"] == samples["servicedesk_events_received_max_id"]


def test_figures_that_can_step_back_are_gauges_never_counters(client, incident_factory):
    """The highest ids go down when the newest row is deleted (retention) or a lower id commits late; a counter
    that drops is read by Prometheus as a restart, so none of our figures is typed counter."""
    from incidents.models import Incident

    incident_factory()
    newest = incident_factory()
    before = scrape(client)['servicedesk_tickets_created_max_id{kind="incident"}']
    assert before == newest.id
    Incident.objects.filter(pk=newest.pk).delete()
    text = client.get("/metrics").content.decode()
    assert parse(text)['servicedesk_tickets_created_max_id{kind="incident"}'] < before
    for name in ("servicedesk_tickets_created_max_id", "servicedesk_events_received_max_id",
                 "servicedesk_events_processed_estimate"):
        assert f"# TYPE {name} gauge" in text, name
    ours = [line for line in text.splitlines() if line.startswith("# TYPE servicedesk_")]
    assert ours and not [line for line in ours if line.endswith(" counter")], ours


def test_tickets_opened_and_open_are_reported_per_practice(client, incident_factory, agent):
    from incidents.models import Incident
    from incidents.services import incident_cancel

    incident_factory(), incident_factory()
    third = incident_factory()
    incident_cancel(incident_id=third.id, actor=agent, reason="raised twice")
    samples = scrape(client)
    assert samples['servicedesk_tickets_open{kind="incident"}'] == 2
    assert samples['servicedesk_tickets_created_max_id{kind="incident"}'] == Incident.objects.latest("id").id
    assert samples['servicedesk_tickets_open{kind="request"}'] == 0
    assert 'servicedesk_tickets_open{kind="problem"}' in samples
    assert all(samples[f'servicedesk_metrics_source_up{{source="{key}"}}'] == 1
               for key in ("broker", "outbox", "heartbeat", "sla", "events", "tickets-incident", "tickets-request",
                           "tickets-problem"))


def test_a_scrape_runs_the_same_queries_whatever_the_amount_of_data(client, incident_factory):
    def queries_of_a_scrape() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    empty = queries_of_a_scrape()
    now = timezone.now()
    for _ in range(5):
        incident_factory()
    OutboxMessage.objects.bulk_create(OutboxMessage(handler="t.x", next_attempt_at=now - timedelta(seconds=n))
                                      for n in range(300))
    source, _ = event_source_create(name="zabbix", kind="generic")
    ingest(source, {"events": [{"source_id": f"e{n}", "status": "firing", "summary": f"e{n}"} for n in range(200)]},
           kind="generic")
    SlaClock.objects.update(due_at=now - timedelta(minutes=5))
    fuller = queries_of_a_scrape()
    # broker 0, outbox 2, heartbeat 1, events 2, sla 2, three ticket types 2 each
    assert empty == fuller == 13


def test_a_source_that_fails_is_reported_down_and_the_others_still_answer(client, monkeypatch, caplog):
    from servicedesk import registry as registry_module
    from servicedesk.registry import MetricSource

    def broken():
        raise RuntimeError("this source is broken")

    sources = [*registry_module.registry.metric_sources, MetricSource("broken", broken)]
    monkeypatch.setattr(registry_module.registry, "metric_sources", sources)
    samples = scrape(client)
    assert samples['servicedesk_metrics_source_up{source="broken"}'] == 0
    assert samples['servicedesk_metrics_source_up{source="outbox"}'] == 1
    assert "servicedesk_outbox_pending" in samples
    assert "source 'broken' failed" in caplog.text
