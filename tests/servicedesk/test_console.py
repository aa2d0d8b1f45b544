"""What the local run prints: expected answers are not logged as errors, console mail reads as text."""

import io
import logging
from datetime import timedelta

import pytest
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from servicedesk.mail import ReadableConsoleBackend
from servicedesk.models import Heartbeat

from ..conftest import PASSWORD


def request_records(caplog):
    return [r for r in caplog.records if r.name == "django.request"]


@pytest.mark.django_db
def test_healthz_before_the_first_heartbeat_is_a_503_without_any_log_line(client, caplog):
    with caplog.at_level(logging.DEBUG):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert request_records(caplog) == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.django_db
def test_healthz_with_a_stale_heartbeat_logs_one_warning_naming_the_worker(client, caplog, settings):
    Heartbeat.objects.create(name="worker",
                             seen_at=timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE + 30))
    with caplog.at_level(logging.INFO):
        assert client.get("/healthz").status_code == 503
    assert request_records(caplog) == []
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelname == "WARNING" and record.name == "servicedesk.views"
    assert "worker down" in record.getMessage() and "last heartbeat" in record.getMessage()


@pytest.mark.django_db
def test_an_expected_403_is_logged_as_one_warning_without_a_traceback(client, requester, caplog):
    client.login(username=requester.username, password=PASSWORD)
    with caplog.at_level(logging.INFO):
        assert client.get("/agent/").status_code == 403
    [record] = request_records(caplog)
    assert record.levelname == "WARNING"
    assert record.getMessage() == "Forbidden (Permission denied): /agent/"
    assert record.exc_info is None
    assert "Traceback" not in caplog.text


def test_console_mail_prints_decoded_headers_and_the_text_body():
    stream = io.StringIO()
    message = EmailMultiAlternatives(
        subject="[INC0001001] We received your report: VPN drops — café wifi",
        body="Hello Rita Quester,\n\nWe received your report — ünïcode stays readable.\n",
        from_email="Servicedesk <servicedesk@localhost>", to=["rita@example.com"], cc=["desk@example.com"],
    )
    message.attach_alternative("<html><body><p>Hello</p></body></html>", "text/html")
    message.attach("trace.txt", "line one\n", "text/plain")

    assert ReadableConsoleBackend(stream=stream).send_messages([message]) == 1

    out = stream.getvalue()
    assert "Subject: [INC0001001] We received your report: VPN drops — café wifi\n" in out
    assert "To:      rita@example.com\nCc:      desk@example.com\n" in out
    assert "We received your report — ünïcode stays readable." in out
    assert "[text/html alternative, 38 characters, not shown]" in out
    assert "[attachment trace.txt (text/plain, 9 bytes)]" in out
    assert "=?utf-8?" not in out and "<html" not in out and "Content-Transfer-Encoding" not in out


def test_the_favicon_asked_by_pages_that_name_none_is_the_sites_icon_not_a_404(client, caplog):
    """Django admin's pages name no icon, so browsers ask /favicon.ico: it leads to the site's icon, and the
    browser console of an admin page stays clean."""
    with caplog.at_level(logging.WARNING):
        response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("img/favicon.svg")
    from django.contrib.staticfiles import finders

    assert finders.find("img/favicon.svg")  # the file the redirect names is one the site serves
    assert not caplog.records
