"""Idempotency-Key on creating POSTs (incidents here): a retry returns the first response, never a second
ticket. Real PostgreSQL, real tokens, the real API."""

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from incidents.models import Incident
from servicedesk import idempotency
from servicedesk.models import IdempotencyKey, OutboxMessage

pytestmark = pytest.mark.django_db

URL = "/api/v1/incidents/"
BODY = {"title": "Printer jams on every page", "urgency": 2}


def post(client, body=BODY, key="key-1", **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(URL, body, format="json", **headers)


def test_a_retry_with_the_same_key_and_body_returns_the_first_response_and_creates_nothing(
    requester, client_for
):
    client = client_for(requester)
    first = post(client)
    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first.headers
    side_effects = OutboxMessage.objects.count()
    again = post(client, body={"urgency": 2, "title": "Printer jams on every page"})  # same body, other order
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Incident.objects.count() == 1
    assert OutboxMessage.objects.count() == side_effects  # no second mail, no second webhook


def test_the_same_key_with_another_body_is_422_naming_the_header(requester, client_for):
    client = client_for(requester)
    assert post(client).status_code == 201
    other = post(client, body={**BODY, "title": "Scanner jams too"})
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()
    assert "different request" in other.json()["detail"]
    assert Incident.objects.count() == 1


def test_without_a_key_every_post_creates(requester, client_for):
    client = client_for(requester)
    assert post(client, key=None).status_code == 201
    assert post(client, key=None).status_code == 201
    assert Incident.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


def test_two_users_with_the_same_key_do_not_collide(requester, other_requester, client_for):
    first = post(client_for(requester))
    second = post(client_for(other_requester))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["number"] != second.json()["number"]
    assert "Idempotent-Replayed" not in second.headers
    assert Incident.objects.count() == 2


def test_a_refused_request_is_not_stored_so_the_fixed_body_may_reuse_the_key(requester, client_for):
    client = client_for(requester)
    bad = post(client, body={"title": "", "urgency": 9})
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()
    assert post(client).status_code == 201


def test_a_key_expires_after_its_time_to_live(requester, client_for, settings):
    client = client_for(requester)
    first = post(client)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS,
                                                                          minutes=1))
    later = post(client)
    assert later.status_code == 201
    assert "Idempotent-Replayed" not in later.headers
    assert later.json()["number"] != first.json()["number"]
    assert IdempotencyKey.objects.count() == 1


def test_the_purge_forgets_keys_older_than_a_day(requester, client_for):
    client = client_for(requester)
    post(client, key="old")
    post(client, key="new", body={**BODY, "title": "Another"})
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency.idempotency_keys_purge() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_a_key_longer_than_255_characters_is_refused_naming_the_header(requester, client_for):
    response = post(client_for(requester), key="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Incident.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_arriving_while_the_first_is_still_running_is_409(requester, client_for):
    client = client_for(requester)
    holding, release = threading.Event(), threading.Event()

    def first_request_in_flight():
        # Exactly what the first request holds while its create runs: the key's transaction lock.
        try:
            with transaction.atomic():
                assert idempotency._lock(f"user:{requester.pk}", "key-1")
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_request_in_flight)
    thread.start()
    try:
        assert holding.wait(timeout=10)
        response = post(client)
        assert response.status_code == 409
        assert "still being processed" in response.json()["detail"]
        assert not Incident.objects.exists()
    finally:
        release.set()
        thread.join(timeout=30)
    assert post(client).status_code == 201  # once the first is over, the key works


def test_the_openapi_schema_documents_the_header(agent, client_for):
    schema = client_for(agent).get("/api/schema/", {"format": "json"}).json()
    post_op = schema["paths"]["/api/v1/incidents/"]["post"]
    names = {(p["name"], p["in"]) for p in post_op.get("parameters", [])}
    assert ("Idempotency-Key", "header") in names
