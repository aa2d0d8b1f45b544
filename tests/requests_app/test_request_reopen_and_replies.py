"""My tickets for service requests: the requester replies (with a file), reopens a fulfilled request within
the window (back to the item's team, no handler run again), and the API's comments and reopen actions."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from requests_app.models import ServiceRequest
from requests_app.services import request_fulfil, request_reopen, request_submit
from servicedesk.errors import InvalidInput, TransitionNotAllowed
from servicedesk.models import Attachment, AuditLog, OutboxMessage, Team, TimelineEntry
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db


@pytest.fixture
def ordered(requester):
    return request_submit(item=item("Headset", fulfilment_team=Team.objects.create(name="Hardware")), answers={},
                          requester=requester, created_by=requester)


@pytest.fixture
def fulfilled(ordered, agent):
    return request_fulfil(request_id=ordered.id, actor=agent, note="On your desk")


def test_the_requester_reopens_a_fulfilled_request_back_to_the_items_team_saying_why(fulfilled, requester):
    reopened = request_reopen(request_id=fulfilled.id, actor=requester, reason="It has no microphone")
    assert reopened.status == "in_fulfilment" and reopened.assignment_group.name == "Hardware"
    assert ServiceRequest.objects.get(id=fulfilled.id).fulfilled_at is None
    entry = TimelineEntry.objects.filter(object_id=fulfilled.id, data__to="in_fulfilment").last()
    assert entry.body == "Reopened: It has no microphone" and entry.data["from"] == "fulfilled"
    assert AuditLog.objects.filter(action="request.in_fulfilment", object_id=str(fulfilled.id)).count() == 2


def test_reopening_needs_a_reason_a_fulfilled_request_and_the_window(fulfilled, ordered, requester, settings):
    with pytest.raises(InvalidInput) as error:
        request_reopen(request_id=fulfilled.id, actor=requester, reason=" ")
    assert error.value.field == "reason"
    settings.REQUEST_REOPEN_DAYS = 14
    with pytest.raises(TransitionNotAllowed):
        request_reopen(request_id=fulfilled.id, actor=requester, reason="Broken",
                       now=timezone.now() + timedelta(days=15))
    request_reopen(request_id=fulfilled.id, actor=requester, reason="Broken",
                   now=timezone.now() + timedelta(days=13))
    with pytest.raises(TransitionNotAllowed):  # in fulfilment again: nothing to reopen
        request_reopen(request_id=fulfilled.id, actor=requester, reason="Again")


def test_another_requester_cannot_reopen(fulfilled, other_requester):
    with pytest.raises(TransitionNotAllowed):
        request_reopen(request_id=fulfilled.id, actor=other_requester, reason="Mine now")
    assert ServiceRequest.objects.get(id=fulfilled.id).status == "fulfilled"


def test_the_portal_page_offers_reopen_within_the_window_and_reopens(client, fulfilled, requester):
    client.force_login(requester)
    page = client.get(f"/portal/requests/{fulfilled.number}/").content.decode()
    assert 'data-testid="request-reopen"' in page and 'for="reopen-reason"' in page
    client.post(f"/portal/requests/{fulfilled.number}/reopen/", {"reason": "Crackles"})
    assert ServiceRequest.objects.get(id=fulfilled.id).status == "in_fulfilment"
    assert 'data-testid="request-reopen"' not in client.get(f"/portal/requests/{fulfilled.number}/").content.decode()


def test_the_requester_replies_with_a_file_from_the_portal_and_the_team_is_mailed(client, ordered, requester):
    client.force_login(requester)
    upload = SimpleUploadedFile("error.txt", b"Error 42 when pairing\n", content_type="text/plain")
    response = client.post(f"/portal/requests/{ordered.number}/reply/",
                           {"body": "It does not pair", "attachment": upload})
    assert response.status_code == 302
    comment = TimelineEntry.objects.get(object_id=ordered.id, kind="comment")
    assert comment.body == "It does not pair" and comment.author == requester
    attachment = Attachment.objects.get(object_id=ordered.id)
    assert attachment.filename == "error.txt" and attachment.entry == comment
    page = client.get(f"/portal/requests/{ordered.number}/").content.decode()
    assert "It does not pair" in page and "error.txt" in page
    assert client.get(f"/api/v1/attachments/{attachment.id}/download/").status_code == 200


def test_an_empty_reply_is_refused_with_a_message_and_nothing_stored(client, ordered, requester):
    client.force_login(requester)
    page = client.post(f"/portal/requests/{ordered.number}/reply/", {"body": "  "}, follow=True).content.decode()
    assert "write something or attach a file" in page
    assert not TimelineEntry.objects.filter(object_id=ordered.id, kind="comment").exists()


def test_another_requester_can_neither_reply_nor_reopen(client, fulfilled, other_requester):
    client.force_login(other_requester)
    assert client.post(f"/portal/requests/{fulfilled.number}/reply/", {"body": "hi"}).status_code == 404
    assert client.post(f"/portal/requests/{fulfilled.number}/reopen/", {"reason": "x"}).status_code == 404


def test_api_comments_list_the_visible_timeline_and_only_agents_write_internal_notes(
        ordered, requester, agent, client_for):
    url = f"/api/v1/requests/{ordered.number}/comments/"
    as_requester, as_agent = client_for(requester), client_for(agent)
    assert as_agent.post(url, {"body": "Ordering from vendor", "internal": True}, format="json").status_code == 201
    created = as_requester.post(url, {"body": "Any news?"}, format="json")
    assert created.status_code == 201 and created.json()["kind"] == "comment"
    refused = as_requester.post(url, {"body": "Secret", "internal": True}, format="json")
    assert refused.status_code == 400 and "internal" in refused.json()
    seen = [e["body"] for e in as_requester.get(url).json()]
    assert "Any news?" in seen and "Ordering from vendor" not in seen and "Secret" not in seen
    assert "Ordering from vendor" in [e["body"] for e in as_agent.get(url).json()]
    assert OutboxMessage.objects.filter(handler="email.send").exists()


def test_api_reopen_keeps_the_contract(fulfilled, requester, other_requester, client_for):
    url = f"/api/v1/requests/{fulfilled.number}/reopen/"
    assert client_for(other_requester).post(url, {"reason": "x"}, format="json").status_code == 404
    missing = client_for(requester).post(url, {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()
    stale = client_for(requester).post(url, {"reason": "Broken", "version": 1}, format="json")
    assert stale.status_code == 409
    done = client_for(requester).post(url, {"reason": "Broken", "version": fulfilled.version}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "in_fulfilment"
    again = client_for(requester).post(url, {"reason": "Broken"}, format="json")
    assert again.status_code == 409


def test_reopening_an_automated_request_queues_no_handler_run_only_mail(requester, agent, django_capture_on_commit_callbacks):
    automated = request_submit(item=item("Join the VPN group", handler="group_access",
                                         handler_settings={"group": "VPN users"}),
                               answers={}, requester=requester, created_by=requester)
    done = request_fulfil(request_id=automated.id, actor=agent, note="Added")
    before = set(OutboxMessage.objects.values_list("id", flat=True))
    request_reopen(request_id=done.id, actor=requester, reason="Still cannot connect")
    queued = OutboxMessage.objects.exclude(id__in=before)
    assert set(queued.values_list("handler", flat=True)) <= {"email.send"}


def test_the_portal_page_offers_no_reopen_once_the_window_has_passed(client, fulfilled, requester, settings):
    ServiceRequest.objects.filter(id=fulfilled.id).update(fulfilled_at=timezone.now() - timedelta(days=20))
    settings.REQUEST_REOPEN_DAYS = 14
    client.force_login(requester)
    assert 'data-testid="request-reopen"' not in client.get(f"/portal/requests/{fulfilled.number}/").content.decode()
    page = client.post(f"/portal/requests/{fulfilled.number}/reopen/", {"reason": "Late"}, follow=True)
    assert "more than 14 days ago" in page.content.decode()
    assert ServiceRequest.objects.get(id=fulfilled.id).status == "fulfilled"


def test_a_reply_with_a_refused_file_stores_nothing(client, ordered, requester):
    client.force_login(requester)
    upload = SimpleUploadedFile("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", content_type="application/x-msdownload")
    page = client.post(f"/portal/requests/{ordered.number}/reply/", {"body": "See the file", "attachment": upload},
                       follow=True).content.decode()
    assert "not accepted" in page
    assert not TimelineEntry.objects.filter(object_id=ordered.id, kind="comment").exists()
    assert not Attachment.objects.exists()
