from datetime import timedelta

import pytest
from django.utils import timezone

from servicedesk.models import Heartbeat
from servicedesk.tasks import worker_heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_is_green_when_database_broker_and_worker_heartbeat_are_there(client):
    worker_heartbeat.apply()  # the real task, run in this process
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["database"] == "ok" and body["broker"] == "ok" and body["worker"] == "ok"
    assert body["down"] == []
    assert 0 <= body["worker_heartbeat_age_seconds"] < 5


def test_healthz_is_503_naming_the_broker_when_it_is_down(client, settings):
    worker_heartbeat.apply()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["broker"].startswith("down:")
    assert body["database"] == "ok"


def test_healthz_is_503_naming_the_worker_when_its_heartbeat_is_stale(client, settings):
    Heartbeat.objects.create(name="worker", seen_at=timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE + 30))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["worker"]
    assert "last heartbeat" in response.json()["worker"]


def test_healthz_is_503_when_no_worker_ever_reported(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "no heartbeat yet" in response.json()["worker"]
