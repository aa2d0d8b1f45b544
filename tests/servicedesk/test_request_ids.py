"""Request ids (servicedesk.requestid) and the JSON logs (LOG_FORMAT=json, servicedesk.logs)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from servicedesk.models import OutboxMessage
from servicedesk.outbox import outbox_enqueue

ROOT = Path(__file__).resolve().parents[2]
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_a_safe_incoming_request_id_is_kept_and_echoed(client):
    response = client.get("/favicon.ico", HTTP_X_REQUEST_ID="lb-7f3a:0001_x.y")
    assert response["X-Request-ID"] == "lb-7f3a:0001_x.y"


@pytest.mark.parametrize("unsafe", ["", "has space", "new\nline", "<script>", "x" * 65, "-starts-with-dash",
                                    "ünïcode"])
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_fresh_one(client, unsafe):
    headers = {"HTTP_X_REQUEST_ID": unsafe} if unsafe else {}
    response = client.get("/favicon.ico", **headers)
    assert HEX32.match(response["X-Request-ID"]), response["X-Request-ID"]


def test_every_response_gets_its_own_id(client):
    assert client.get("/favicon.ico")["X-Request-ID"] != client.get("/favicon.ico")["X-Request-ID"]


@pytest.mark.django_db
def test_outbox_messages_written_by_a_request_keep_its_id(client_for, agent, requester):
    api = client_for(agent)
    before = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = api.post("/api/v1/incidents/", {"title": "VPN drops every hour", "requester": requester.username,
                                               "impact": 2, "urgency": 2}, format="json",
                        HTTP_X_REQUEST_ID="req-outbox-1")
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == "req-outbox-1"
    written = OutboxMessage.objects.filter(id__gt=before)
    assert written.exists()
    assert set(written.values_list("request_id", flat=True)) == {"req-outbox-1"}


@pytest.mark.django_db
def test_a_message_written_outside_a_request_has_no_id():
    assert outbox_enqueue("t.noop", {}).request_id == ""
    OutboxMessage.objects.filter(handler="t.noop").delete()


# --- the log lines, in a fresh interpreter with the chosen LOG_FORMAT ------------------------------------------

SCRIPT = """
import logging, django
django.setup()
from django.test import Client
client = Client()
client.get("/favicon.ico", HTTP_X_REQUEST_ID="req-json-1")
client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-json-2")
logging.getLogger("servicedesk.test").info("outside any request")
"""


def run_logging(tmp_path, **env) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    (tmp_path / "staticfiles").mkdir(exist_ok=True)  # else whitenoise warns about it on stderr
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**base, "DJANGO_SETTINGS_MODULE": "servicedesk.settings",
                                 "SERVICEDESK_VAR_DIR": str(tmp_path), **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_json_logs_are_one_object_a_line_with_the_request_id_on_django_lines_too(tmp_path):
    lines = run_logging(tmp_path, LOG_FORMAT="json")
    records = [json.loads(line) for line in lines]  # every line parses
    assert all({"event", "level", "logger", "timestamp"} <= set(r) for r in records)

    [finished] = [r for r in records if r["event"] == "request_finished" and r["request_id"] == "req-json-1"]
    assert (finished["code"], finished["request"], finished["level"]) == (301, "GET /favicon.ico", "info")
    # Django's own "Not Found" line is a standard-library record: it carries the request id as well.
    [not_found] = [r for r in records if r["logger"] == "django.request"]
    assert not_found["request_id"] == "req-json-2"
    assert (not_found["level"], not_found["status_code"]) == ("warning", 404)
    assert not_found["event"] == "Not Found: /no-such-page/"
    [outside] = [r for r in records if r["event"] == "outside any request"]
    assert "request_id" not in outside  # the request's id does not leak past its end


def test_plain_logs_stay_readable_lines_without_access_lines(tmp_path):
    lines = run_logging(tmp_path)
    assert lines, "nothing logged"
    for line in lines:
        assert not line.startswith("{")
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) ", line), line
    assert not any("request_finished" in line for line in lines)
    assert any(line.endswith("WARNING django.request Not Found: /no-such-page/") for line in lines)
