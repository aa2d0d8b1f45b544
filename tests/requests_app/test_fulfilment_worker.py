"""Automated fulfilment end to end with a real Celery worker: the password reset link reaches a real SMTP sink
and works; the software handler's job reaches a real HTTP tool that calls back on the live server."""

import hashlib
import hmac
import json
import re
import time
import urllib.request

import pytest
from django.db import transaction

from requests_app.models import ServiceRequest
from requests_app.services import request_submit
from requests_app.states import Status
from tests.peers import HttpReceiver
from tests.requests_app.factories import item
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SECRET = "install-tool-shared-secret-1"


def status_of(made) -> str:
    return ServiceRequest.objects.values_list("status", flat=True).get(id=made.id)


def test_a_password_reset_is_fulfilled_by_the_worker_and_its_link_works(worker, smtp, make_user, client):
    carla = make_user("requester", username="carla", email="carla@example.com", first_name="Carla")
    reset = item("Reset my password", handler="password_reset")
    with transaction.atomic():
        made = request_submit(item=reset, answers={}, requester=carla, created_by=carla)

    def link_mail():
        return next((m for m in smtp.messages if "Choose a new password" in m["data"]), None)

    assert wait_for(lambda: link_mail() is not None, timeout=60), [m["data"][:200] for m in smtp.messages]
    assert wait_for(lambda: status_of(made) == Status.FULFILLED, timeout=30)
    assert wait_for(lambda: any(f"[{made.number}] Reset my password" in m["data"] and "is fulfilled" in m["data"]
                                for m in smtp.messages), timeout=30)
    message = link_mail()
    assert message["to"] == ["carla@example.com"]
    text = message["data"].replace("=\n", "")  # undo quoted-printable soft line breaks, if any
    path = re.search(r"https?://[^/\s]+(/reset/[^\s\"<]+/)", text).group(1)
    page = client.get(path, follow=True)
    assert b"Choose a new password" in page.content
    done = client.post(page.redirect_chain[-1][0],
                       {"new_password1": "Carla-new-2026!", "new_password2": "Carla-new-2026!"})
    assert done.status_code == 302
    carla.refresh_from_db()
    assert carla.check_password("Carla-new-2026!")


def test_software_is_installed_by_a_tool_that_calls_back(smtp, make_user, live_server, tmp_path):
    from servicedesk.celery import app as celery_app

    def call_back(record):
        job = json.loads(record["body"])
        body = json.dumps({"status": "done", "message": f"{job['package']} installed", "reference": "JOB-7"}).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        urllib.request.urlopen(urllib.request.Request(job["callback_url"], data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Servicedesk-Timestamp": stamp,
            "X-Servicedesk-Signature": f"sha256={signature}"}), timeout=10).read()

    dora = make_user("requester", username="dora", email="dora@example.com")
    celery_app.control.purge()
    with HttpReceiver(status=202, then=call_back) as tool, celery_worker(
            broker_url=celery_app.conf.broker_url, smtp_port=smtp.port, tmp_path=tmp_path,
            extra_env={"SITE_URL": live_server.url}):
        install = item("Install software", handler="software_install", handler_settings={
            "url": tool.url, "secret": SECRET, "package_field": "product"},
            fields=[{"name": "product", "label": "Product", "type": "text", "required": True}])
        with transaction.atomic():
            made = request_submit(item=install, answers={"product": "Tableau Desktop"}, requester=dora,
                                  created_by=dora)
        assert wait_for(lambda: status_of(made) == Status.FULFILLED, timeout=60), status_of(made)
        assert len(tool.requests) == 1
    made.refresh_from_db()
    assert made.fulfilment_run.external_ref == "JOB-7"
