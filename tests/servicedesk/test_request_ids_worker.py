"""A request's id reaches the log lines of the real Celery worker that does the work it caused, whether the
outbox message was handed off on commit (Celery headers and the message's column) or re-driven later by the
relay from beat (the column only). The worker logs JSON (LOG_FORMAT=json)."""

import json
import urllib.request

import pytest
from django.conf import settings
from knox.models import AuthToken

from servicedesk.celery import app as celery_app
from servicedesk.models import OutboxMessage
from tests.peers import free_port
from tests.workers import celery_broker, celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def json_worker(smtp, tmp_path):
    celery_app.control.purge()
    with celery_worker(broker_url=settings.CELERY_BROKER_URL, smtp_port=smtp.port, tmp_path=tmp_path,
                       extra_env={"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}):
        yield tmp_path / "worker.log"


def json_lines(path) -> list[dict]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def post_incident(live_server, user, request_id: str) -> dict:
    _, token = AuthToken.objects.create(user)
    body = json.dumps({"title": "Laptop will not boot", "requester": user.username, "impact": 3, "urgency": 3})
    request = urllib.request.Request(f"{live_server.url}/api/v1/incidents/", data=body.encode(), method="POST",
                                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json",
                                              "X-Request-ID": request_id})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        assert response.headers["X-Request-ID"] == request_id
        return json.loads(response.read())


def ran_lines(path, request_id: str) -> list[dict]:
    return [r for r in json_lines(path) if r.get("request_id") == request_id
            and r["logger"] == "servicedesk.outbox" and " ran: " in r["event"]]


def test_work_handed_off_on_commit_logs_under_the_requests_id(live_server, json_worker, agent):
    post_incident(live_server, agent, "req-worker-direct")
    messages = OutboxMessage.objects.filter(request_id="req-worker-direct")
    assert messages.exists()
    assert wait_for(lambda: not messages.filter(state=OutboxMessage.State.PENDING).exists(), timeout=60), \
        json_worker.read_text()[-3000:]
    assert wait_for(lambda: len(ran_lines(json_worker, "req-worker-direct")) >= messages.count(), timeout=20), \
        json_worker.read_text()[-3000:]
    # The Celery task itself started under the id too (django-structlog's headers, set when it was published).
    started = [r for r in json_lines(json_worker) if r["event"] == "task_started"
               and r.get("request_id") == "req-worker-direct"]
    assert started and all(r["task_id"] for r in started)


def test_work_the_relay_re_drives_later_still_logs_under_the_requests_id(live_server, json_worker, agent):
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):  # the broker is away at commit: nothing published
        post_incident(live_server, agent, "req-worker-relay")
    messages = OutboxMessage.objects.filter(request_id="req-worker-relay")
    assert messages.exists() and not messages.exclude(state=OutboxMessage.State.PENDING).exists()

    # Beat's relay, published from here with no request around it.
    celery_app.send_task("servicedesk.tasks.outbox_relay", kwargs={"min_age_seconds": 0})
    assert wait_for(lambda: not messages.filter(state=OutboxMessage.State.PENDING).exists(), timeout=60), \
        json_worker.read_text()[-3000:]
    lines = ran_lines(json_worker, "req-worker-relay")
    assert len(lines) == messages.count()
    relay_started = [r for r in json_lines(json_worker) if r["event"] == "task_started"
                     and r.get("task") == "servicedesk.tasks.outbox_relay"]
    assert relay_started and "request_id" not in relay_started[0]  # the relay's own line: no request caused it
