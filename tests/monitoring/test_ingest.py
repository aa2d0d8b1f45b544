"""Ingestion: authentication, validation that names what is wrong and stores nothing, 202 with stored ids, the
outbox message queued in the same transaction, rate limits."""

import copy

import pytest
from rest_framework.test import APIClient

from monitoring.models import Event, EventSource
from monitoring.sources import event_source_rotate
from servicedesk.models import OutboxMessage
from tests.monitoring.conftest import fixture

EVENTS = "/api/v1/events/"
AM = "/api/v1/integrations/alertmanager/"
GRAFANA = "/api/v1/integrations/grafana/"


def post(url, body, token=None, header="Token", **extra):
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"{header} {token}")
    return client.post(url, body, format="json", **extra)


def event(**fields):
    return {"source_id": "disk-web-1", "status": "firing", "severity": "major", "summary": "Disk 95% full",
            "service": "checkout", "labels": {"host": "web-1"}, "occurred_at": "2026-11-29T18:00:00Z", **fields}


@pytest.mark.django_db
class TestAuthentication:
    @pytest.mark.parametrize("url", [EVENTS, AM, GRAFANA])
    def test_missing_token_is_401(self, url):
        response = post(url, event())
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")
        assert Event.objects.count() == 0

    def test_wrong_token_is_401(self, generic_source):
        response = post(EVENTS, event(), token=generic_source.token + "x")
        assert response.status_code == 401
        assert "token" in response.json()["detail"].lower()

    def test_disabled_source_is_401(self, generic_source):
        EventSource.objects.filter(id=generic_source.id).update(enabled=False)
        assert post(EVENTS, event(), token=generic_source.token).status_code == 401

    def test_rotated_token_stops_working(self, generic_source):
        _, new = event_source_rotate(source_id=generic_source.id)
        assert post(EVENTS, event(), token=generic_source.token).status_code == 401
        assert post(EVENTS, event(), token=new).status_code == 202

    def test_bearer_header_and_query_token(self, am_source):
        assert post(AM, fixture("alertmanager-firing.json"), token=am_source.token, header="Bearer").status_code == 202
        assert post(f"{AM}?token={am_source.token}", fixture("alertmanager-firing.json")).status_code == 202

    def test_a_users_api_token_is_not_a_source_token(self, agent):
        from servicedesk.tokens import api_token_issue

        _, user_token = api_token_issue(user=agent)
        assert post(EVENTS, event(), token=user_token).status_code == 401


@pytest.mark.django_db
class TestGeneric:
    def test_one_event_is_stored_and_queued(self, generic_source):
        response = post(EVENTS, event(), token=generic_source.token)
        assert response.status_code == 202, response.json()
        body = response.json()
        assert body["accepted"] == 1
        stored = Event.objects.get(id=body["ids"][0])
        assert (stored.status, stored.severity, stored.summary, stored.service_name) == (
            "firing", "major", "Disk 95% full", "checkout")
        assert stored.fingerprint == "disk-web-1" and stored.processed_at is None
        message = OutboxMessage.objects.get(handler="monitoring.process")
        assert message.payload == {"event_ids": body["ids"]}

    def test_batch_is_stored_in_one_go(self, generic_source, django_assert_max_num_queries):
        batch = {"events": [event(source_id=f"a{i}") for i in range(500)]}
        with django_assert_max_num_queries(12):
            response = post(EVENTS, batch, token=generic_source.token)
        assert response.status_code == 202
        assert response.json()["accepted"] == 500 == Event.objects.count()
        assert OutboxMessage.objects.filter(handler="monitoring.process").count() == 1

    def test_oversize_batch_is_413_and_stores_nothing(self, generic_source):
        response = post(EVENTS, {"events": [event(source_id=f"a{i}") for i in range(1001)]},
                        token=generic_source.token)
        assert response.status_code == 413
        assert "at most 1000" in response.json()["errors"]["events"]
        assert Event.objects.count() == 0

    @pytest.mark.parametrize(("fields", "path", "words"), [
        ({"status": "broken"}, "status", "firing or resolved"),
        ({"severity": "apocalyptic"}, "severity", "one of critical"),
        ({"occurred_at": "yesterday"}, "occurred_at", "not an ISO 8601"),
        ({"occurred_at": "2026-11-29T18:00:00"}, "occurred_at", "no time zone"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", "future"),
        ({"occurred_at": 1764439242}, "occurred_at", "must be an ISO 8601 string"),
        ({"labels": ["a"]}, "labels", "object"),
        ({"labels": {"n": 5}}, "labels.n", "string"),
        ({"summary": 12}, "summary", "string"),
        ({"colour": "red"}, "colour", "unknown field"),
    ])
    def test_bad_event_names_the_field(self, generic_source, fields, path, words):
        response = post(EVENTS, event(**fields), token=generic_source.token)
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert path in errors and words in errors[path], errors
        assert path in response.json()["detail"]
        assert Event.objects.count() == 0 and not OutboxMessage.objects.exists()

    def test_one_bad_event_rejects_the_whole_batch(self, generic_source):
        batch = {"events": [event(source_id="ok-1"), event(source_id="ok-2", status=None), event(source_id="ok-3")]}
        response = post(EVENTS, batch, token=generic_source.token)
        assert response.status_code == 400
        assert list(response.json()["errors"]) == ["events[1].status"]
        assert Event.objects.count() == 0

    def test_duplicate_event_in_a_batch(self, generic_source):
        batch = {"events": [event(), event(summary="again")]}
        response = post(EVENTS, batch, token=generic_source.token)
        assert response.status_code == 400
        assert "the same event as events[0]" in response.json()["errors"]["events[1]"]
        assert Event.objects.count() == 0

    def test_firing_without_id_needs_a_summary(self, generic_source):
        response = post(EVENTS, {"status": "firing", "severity": "minor"}, token=generic_source.token)
        assert response.status_code == 400 and "summary" in response.json()["errors"]

    def test_not_json_and_not_an_object(self, generic_source):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {generic_source.token}")
        response = client.post(EVENTS, "{nope", content_type="application/json")
        assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]
        assert post(EVENTS, [event()], token=generic_source.token).status_code == 400
        assert post(EVENTS, {"events": []}, token=generic_source.token).status_code == 400
        assert post(EVENTS, {"events": [], "extra": 1}, token=generic_source.token).status_code == 400

    def test_derived_fingerprint_is_stable(self, generic_source):
        one = {"status": "firing", "summary": "Ping lost", "labels": {"host": "sw-3", "check": "icmp"}}
        two = {"status": "firing", "summary": "Ping lost again", "labels": {"check": "icmp", "host": "sw-3"},
               "occurred_at": "2026-11-29T18:05:00Z"}
        post(EVENTS, one, token=generic_source.token)
        post(EVENTS, two, token=generic_source.token)
        first, second = Event.objects.order_by("id")
        assert first.fingerprint == second.fingerprint and len(first.fingerprint) == 32


@pytest.mark.django_db
class TestAlertmanager:
    def test_fixture_firing_becomes_one_event(self, am_source):
        response = post(AM, fixture("alertmanager-firing.json"), token=am_source.token)
        assert response.status_code == 202
        stored = Event.objects.get()
        assert stored.status == "firing" and stored.severity == "critical"
        assert stored.summary == "5xx rate above 5%" and stored.service_name == "checkout"
        assert stored.ci_name == "web-1" and stored.fingerprint == "b1c11497b32ce15e"
        assert stored.group_key == '{}:{alertname="HighErrorRate", service="checkout"}'
        assert stored.starts_at.isoformat().startswith("2026-11-29T18:00:42.617226")
        assert stored.raw["generatorURL"].startswith("http://prometheus.local")

    def test_fixture_resolved_occurs_at_ends_at(self, am_source):
        post(AM, fixture("alertmanager-resolved.json"), token=am_source.token)
        stored = Event.objects.get()
        assert stored.status == "resolved" and stored.occurred_at.isoformat() == "2026-11-29T18:00:45+00:00"

    def test_several_alerts_in_one_notification(self, am_source):
        body = fixture("alertmanager-firing.json")
        second = copy.deepcopy(body["alerts"][0])
        second["labels"]["instance"], second["fingerprint"] = "web-2", "c2d22508c43df26f"
        body["alerts"].append(second)
        response = post(AM, body, token=am_source.token)
        assert response.json()["accepted"] == 2
        assert sorted(Event.objects.values_list("ci_name", flat=True)) == ["web-1", "web-2"]

    @pytest.mark.parametrize(("change", "path"), [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.pop("alerts"), "alerts"),
        (lambda b: b["alerts"][0].update(startsAt="soon"), "alerts[0].startsAt"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts[0].status"),
        (lambda b: b["alerts"][0].update(labels={"severity": 1}), "alerts[0].labels.severity"),
    ])
    def test_bad_notification_names_the_field(self, am_source, change, path):
        body = fixture("alertmanager-firing.json")
        change(body)
        response = post(AM, body, token=am_source.token)
        assert response.status_code == 400
        assert path in response.json()["errors"], response.json()
        assert Event.objects.count() == 0

    def test_grafana_webhook(self, generic_source):
        body = {
            "receiver": "servicedesk", "status": "firing", "orgId": 1, "version": "1", "groupKey": "{}:{}",
            "title": "[FIRING:1] DiskFull", "state": "alerting", "message": "Disk full",
            "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "severity": "warning",
                                                       "service": "checkout"},
                        "annotations": {"summary": "Disk above 90%"}, "startsAt": "2026-11-29T17:00:00Z",
                        "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "0a1b2c3d", "values": {"A": 91.5}}],
        }
        response = post(GRAFANA, body, token=generic_source.token)
        assert response.status_code == 202, response.json()
        stored = Event.objects.get()
        assert (stored.summary, stored.severity, stored.fingerprint) == ("Disk above 90%", "warning", "0a1b2c3d")


@pytest.mark.django_db
class TestRateLimit:
    def test_over_the_rate_is_429_with_retry_after(self, generic_source):
        EventSource.objects.filter(id=generic_source.id).update(rate_limit_per_minute=3)
        codes = [post(EVENTS, event(source_id=f"r{i}"), token=generic_source.token).status_code for i in range(5)]
        assert codes == [202, 202, 202, 429, 429]
        response = post(EVENTS, event(source_id="r9"), token=generic_source.token)
        assert 1 <= int(response["Retry-After"]) <= 60
        assert "per minute" in response.json()["detail"]
        assert Event.objects.count() == 3

    def test_a_batch_counts_each_event(self, generic_source):
        EventSource.objects.filter(id=generic_source.id).update(rate_limit_per_minute=10)
        batch = {"events": [event(source_id=f"b{i}") for i in range(11)]}
        assert post(EVENTS, batch, token=generic_source.token).status_code == 429

    def test_openapi_lists_the_endpoints(self, agent_client):
        schema = agent_client.get("/api/schema/?format=json").json()
        for path in ("/api/v1/events/", "/api/v1/integrations/alertmanager/", "/api/v1/integrations/grafana/"):
            assert "post" in schema["paths"][path], path
        assert "eventSourceToken" in schema["components"]["securitySchemes"]
