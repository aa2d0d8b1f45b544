"""The software_install handler against a real local HTTP receiver: the signed job it POSTs (checked on the
receiver's side), retries on 5xx and an unreachable tool, failure on 4xx, the signed one-time callback
(done, failed, replay, bad signature, bad token, stale timestamp) and the sweep of runs whose callback never
came."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from requests_app.fulfilment import fulfilment_sweep
from requests_app.models import FulfilmentRun
from requests_app.services import request_submit
from requests_app.states import Status
from servicedesk.models import OutboxMessage
from tests.peers import HttpReceiver, free_port
from tests.requests_app.factories import item
from tests.requests_app.fulfilment_helpers import mails, run_pending, timeline

pytestmark = pytest.mark.django_db

SECRET = "install-tool-shared-secret-1"
LATER = timedelta(hours=1)
PRODUCT = [{"name": "product", "label": "Product", "type": "choice", "required": True,
            "choices": "Tableau Desktop\nMicrosoft Visio"}]


def install_item(url: str, **settings):
    return item("Install software", handler="software_install", fields=PRODUCT, handler_settings={
        "url": url, "secret": SECRET, "timeout_minutes": 30, "package_field": "product", **settings})


def order(thing, user):
    return request_submit(item=thing, answers={"product": "Tableau Desktop"}, requester=user, created_by=user)


def verify(record: dict, secret: str = SECRET) -> dict:
    """What a tool does with our POST: check the signature over timestamp + body, then read it."""
    headers = {k.lower(): v for k, v in record["headers"].items()}
    timestamp = headers["x-servicedesk-timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + record["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-servicedesk-signature"], f"sha256={expected}")
    assert abs(time.time() - int(timestamp)) < 60
    return json.loads(record["body"])


def call_back(job: dict, payload: dict, *, secret: str = SECRET, timestamp: int | None = None, url=None):
    """The tool's callback: POST the JSON to the callback URL, signed like our webhooks."""
    body = json.dumps(payload).encode()
    stamp = str(timestamp or int(time.time()))
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    path = "/" + (url or job["callback_url"]).split("://", 1)[1].split("/", 1)[1]
    return APIClient().post(path, body, content_type="application/json",
                            HTTP_X_SERVICEDESK_TIMESTAMP=stamp, HTTP_X_SERVICEDESK_SIGNATURE=f"sha256={signature}")


@pytest.fixture
def tool():
    with HttpReceiver(status=202, reply=b'{"reference": "JOB-42"}') as receiver:
        yield receiver


def test_the_job_is_posted_signed_and_the_run_waits_for_the_callback(tool, requester):
    made = order(install_item(tool.url), requester)
    assert run_pending() == ["done"]
    [record] = tool.requests
    job = verify(record)
    assert job["request"] == made.number and job["delivery"] == f"{made.number}.1"
    assert job["package"] == "Tableau Desktop" and job["answers"] == {"product": "Tableau Desktop"}
    assert job["requester"] == {"username": "alice", "email": "alice@example.com", "name": "Alice Able"}
    assert "/api/v1/requests/fulfilment/callback/" in job["callback_url"]
    assert {k.lower(): v for k, v in record["headers"].items()}["x-servicedesk-delivery"] == f"{made.number}.1"
    run = FulfilmentRun.objects.get(request=made)
    assert run.state == "waiting" and run.external_ref == "JOB-42"
    assert timedelta(minutes=29) < run.deadline - timezone.now() <= timedelta(minutes=30)
    made.refresh_from_db()
    assert made.status == Status.IN_FULFILMENT
    assert "Sent to the installation tool (Tableau Desktop); waiting for it to finish." in timeline(made)


def test_a_done_callback_fulfils_the_request_once_and_a_replay_is_refused(tool, requester):
    made = order(install_item(tool.url), requester)
    run_pending()
    job = verify(tool.requests[0])
    response = call_back(job, {"status": "done", "message": "Tableau Desktop 2026.1 installed on PC-0042"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "fulfilled"
    made.refresh_from_db()
    assert made.status == Status.FULFILLED
    assert "Fulfilled: Tableau Desktop 2026.1 installed on PC-0042" in timeline(made, internal=False)
    assert any("The tool called back: done" in line for line in timeline(made, internal=True))
    assert mails("request_fulfilled")[0].payload["to"] == ["alice@example.com"]
    replay = call_back(job, {"status": "done", "message": "again"})
    assert replay.status_code == 409
    assert len(mails("request_fulfilled")) == 1


def test_a_failed_callback_fails_the_request_to_the_team(tool, requester, agent):
    made = order(install_item(tool.url), requester)
    run_pending()
    response = call_back(verify(tool.requests[0]), {"status": "failed", "message": "disk full on PC-0042"})
    assert response.status_code == 200
    made.refresh_from_db()
    assert made.status == Status.FAILED and made.assignment_group.name == "Service Desk"
    assert any("the tool reported a failure: disk full on PC-0042" in line for line in timeline(made, internal=True))
    assert mails("request_failed")[0].payload["to"] == [agent.email]


@pytest.mark.parametrize("how", ["wrong secret", "stale timestamp", "tampered body"])
def test_a_callback_with_a_bad_signature_is_refused_and_changes_nothing(tool, requester, how):
    made = order(install_item(tool.url), requester)
    run_pending()
    job = verify(tool.requests[0])
    if how == "wrong secret":
        response = call_back(job, {"status": "done"}, secret="not-the-secret-at-all")
    elif how == "stale timestamp":
        response = call_back(job, {"status": "done"}, timestamp=int(time.time()) - 3600)
    else:
        stamp = str(int(time.time()))
        signed = hmac.new(SECRET.encode(), stamp.encode() + b'.{"status": "failed"}', hashlib.sha256).hexdigest()
        path = "/" + job["callback_url"].split("://", 1)[1].split("/", 1)[1]
        response = APIClient().post(path, b'{"status": "done"}', content_type="application/json",
                                    HTTP_X_SERVICEDESK_TIMESTAMP=stamp,
                                    HTTP_X_SERVICEDESK_SIGNATURE=f"sha256={signed}")
    assert response.status_code == 403
    made.refresh_from_db()
    assert made.status == Status.IN_FULFILMENT
    assert FulfilmentRun.objects.get(request=made).state == "waiting"


def test_a_callback_url_we_did_not_sign_is_not_found(tool, requester):
    made = order(install_item(tool.url), requester)
    run_pending()
    job = verify(tool.requests[0])
    forged = job["callback_url"].rstrip("/")[:-3] + "AAA/"
    assert call_back(job, {"status": "done"}, url=forged).status_code == 404
    made.refresh_from_db()
    assert made.status == Status.IN_FULFILMENT


def test_a_callback_with_a_bad_status_names_the_field(tool, requester):
    order(install_item(tool.url), requester)
    run_pending()
    response = call_back(verify(tool.requests[0]), {"status": "maybe"})
    assert response.status_code == 400 and "status" in response.json()


def test_a_5xx_is_retried_with_the_same_delivery_id(requester):
    with HttpReceiver(status=[503, 202]) as tool:
        made = order(install_item(tool.url), requester)
        assert run_pending() == ["pending"]
        message = OutboxMessage.objects.get(handler="request.fulfil")
        assert "HTTP 503" in message.last_error
        assert message.next_attempt_at > timezone.now()
        assert run_pending(later=LATER) == ["done"]
        first, second = (verify(r) for r in tool.requests)
    assert first["delivery"] == second["delivery"] == f"{made.number}.1"
    assert FulfilmentRun.objects.get(request=made).state == "waiting"
    assert any("Attempt 1 of 6 failed: the tool answered HTTP 503" in line for line in timeline(made, internal=True))


def test_an_unreachable_tool_is_retried_then_the_request_fails(requester):
    made = order(install_item(f"http://127.0.0.1:{free_port()}/jobs"), requester)
    outcomes = [run_pending(later=LATER)[0] for _ in range(6)]
    assert outcomes == ["pending"] * 5 + ["failed"]
    made.refresh_from_db()
    assert made.status == Status.FAILED
    assert any("gave up after 6 attempts: the tool could not be reached" in line
               for line in timeline(made, internal=True))


def test_a_4xx_fails_at_once(requester):
    with HttpReceiver(status=422, reply=b"unknown package") as tool:
        made = order(install_item(tool.url), requester)
        assert run_pending() == ["done"]
        assert len(tool.requests) == 1
    made.refresh_from_db()
    assert made.status == Status.FAILED
    assert any("the tool answered HTTP 422: unknown package" in line for line in timeline(made, internal=True))


def test_the_secret_may_come_from_the_environment(monkeypatch, requester):
    monkeypatch.setenv("SD_TEST_INSTALL_SECRET", "from-the-environment-123")
    with HttpReceiver(status=200) as tool:
        thing = item("Install from env", handler="software_install", fields=PRODUCT, handler_settings={
            "url": tool.url, "secret_env": "SD_TEST_INSTALL_SECRET"})
        thing.full_clean()
        order(thing, requester)
        run_pending()
        job = verify(tool.requests[0], secret="from-the-environment-123")
    assert call_back(job, {"status": "done"}, secret="from-the-environment-123").status_code == 200


def test_the_sweep_fails_runs_whose_callback_never_came_and_touches_no_other(tool, requester, other_requester):
    late = order(install_item(tool.url), requester)
    run_pending()
    on_time = request_submit(item=late.item, answers={"product": "Microsoft Visio"}, requester=other_requester,
                             created_by=other_requester)
    run_pending()
    FulfilmentRun.objects.filter(request=late).update(deadline=timezone.now() - timedelta(minutes=1))
    with CaptureQueriesContext(connection) as nothing_due:
        assert fulfilment_sweep(now=timezone.now() - timedelta(minutes=2)) == 0
    assert len(nothing_due) == 1  # one indexed read of what is due, nothing else
    assert fulfilment_sweep() == 1
    assert fulfilment_sweep() == 0  # a second sweep finds nothing left
    late.refresh_from_db()
    on_time.refresh_from_db()
    assert late.status == Status.FAILED and on_time.status == Status.IN_FULFILMENT
    assert any("no callback from the tool by the deadline" in line for line in timeline(late, internal=True))
    # The tool calling back after all is too late.
    assert call_back(verify(tool.requests[0]), {"status": "done"}).status_code == 409


def test_the_sweep_reads_due_runs_through_the_partial_deadline_index():
    from requests_app.models import FulfilmentRun as Run

    [index] = [i for i in Run._meta.indexes if i.name == "fulfilment_run_waiting_idx"]
    assert index.fields == ["deadline"] and str(index.condition) == "(AND: ('state', 'waiting'))"


def test_a_retry_after_failure_posts_a_new_round_with_a_new_callback(tool, requester, agent):
    from requests_app.services import request_retry

    made = order(install_item(tool.url), requester)
    run_pending()
    first = verify(tool.requests[0])
    call_back(first, {"status": "failed", "message": "licence server down"})
    made.refresh_from_db()
    request_retry(request_id=made.id, actor=agent, version=made.version)
    run_pending()
    second = verify(tool.requests[1])
    assert second["delivery"] == f"{made.number}.2" and second["callback_url"] != first["callback_url"]
    assert call_back(first, {"status": "done"}).status_code == 409  # the old round's URL is spent
    assert call_back(second, {"status": "done", "message": "Installed"}).status_code == 200
    made.refresh_from_db()
    assert made.status == Status.FULFILLED
