"""The registry's ticket kinds as the email channel uses them, without importing a practice: look a ticket up
by number and prefix, raise one from a mail (MailIntake), reply with files and data, and a requester's or
watcher's reply reopening or resuming the ticket through its own services."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from servicedesk.errors import InvalidInput
from servicedesk.models import Attachment, TimelineEntry
from servicedesk.registry import MailIntake, registry
from servicedesk.watchers import watcher_add
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db

INCIDENT = registry.ticket_kind_named("incident")
REQUEST = registry.ticket_kind_named("request")


def a_file(name="screenshot.txt", body=b"the printer says PC LOAD LETTER\n"):
    return SimpleUploadedFile(name, body, content_type="text/plain")


def test_the_kinds_are_found_by_name_and_prefix():
    assert {k.kind for k in registry.ticket_kinds()} >= {"incident", "request"}
    assert registry.ticket_kind_for_prefix("INC") is INCIDENT
    assert registry.ticket_kind_for_prefix("req") is REQUEST
    assert registry.ticket_kind_for_prefix("XYZ") is None
    assert registry.ticket_kind_named("nothing") is None


def test_get_finds_a_ticket_without_a_permission_check(incident_factory):
    incident = incident_factory()
    assert INCIDENT.get(incident.number.lower()) == incident
    assert INCIDENT.get("INC9999999") is None
    assert INCIDENT.accepts_reply(incident)


# --- incidents ------------------------------------------------------------------------------------


def test_an_incident_from_mail(requester):
    from incidents.models import Category
    from servicedesk.models import Service, Team

    category = Category.objects.create(name="Printing")
    service = Service.objects.create(name="Printing")
    team = Team.objects.create(name="Floor support")
    incident = INCIDENT.create_from_mail(intake=MailIntake(
        requester=requester, title="  Printer\n jammed ", body="It jams on every page.", files=(a_file(),),
        data={"channel": "email", "mail": 12}, service=service, team=team, category_id=category.id))
    assert (incident.title, incident.description, incident.channel) == ("Printer jammed", "It jams on every page.",
                                                                      "email")
    assert (incident.service, incident.category, incident.assignment_group) == (service, category, team)
    created = TimelineEntry.objects.get(object_id=incident.id, data__event="created")
    assert created.data["mail"] == 12 and created.data["channel"] == "email"
    attachment = Attachment.objects.get(object_id=incident.id)
    assert attachment.filename == "screenshot.txt" and not attachment.internal


def test_an_incident_mailbox_naming_a_missing_category_is_refused(requester):
    with pytest.raises(InvalidInput) as error:
        INCIDENT.create_from_mail(intake=MailIntake(requester=requester, title="x", body="y", category_id=999999))
    assert error.value.field == "category"


def test_a_reply_with_files_and_data(incident_factory, requester):
    incident = incident_factory()
    entry = INCIDENT.reply(ticket=incident, author=requester, body="Here is the error", files=(a_file(),),
                           data={"channel": "email", "mail": 7})
    assert entry.kind == "comment" and entry.data == {"channel": "email", "mail": 7}
    attachment = Attachment.objects.get(entry=entry)
    assert attachment.filename == "screenshot.txt" and not attachment.internal
    only_files = INCIDENT.reply(ticket=incident, author=requester, body="  ", files=(a_file("log.txt"),))
    assert only_files.body == "Attached log.txt"


def test_a_bad_file_refuses_the_whole_reply(incident_factory, requester, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    incident = incident_factory()
    with pytest.raises(InvalidInput) as error:
        INCIDENT.reply(ticket=incident, author=requester, body="big", files=(a_file(),))
    assert error.value.field == "file"
    assert not TimelineEntry.objects.filter(object_id=incident.id, kind="comment").exists()


@pytest.mark.parametrize("who", ["requester", "watcher"])
def test_a_reply_reopens_a_resolved_incident(who, incident_factory, requester, agent, make_user):
    from incidents.services import incident_resolve

    incident = incident_factory()
    author = requester
    if who == "watcher":
        author = make_user("requester", username="carol")
        watcher_add(ticket=incident, user=author, by=agent)
    incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="Cleared")
    incident.refresh_from_db()
    assert INCIDENT.accepts_reply(incident)  # resolved still takes replies
    INCIDENT.reply(ticket=incident, author=author, body="It jams again")
    incident.refresh_from_db()
    assert incident.status == "in_progress" and incident.reopen_count == 1


def test_an_agents_reply_does_not_reopen(incident_factory, agent):
    from incidents.services import incident_resolve

    incident = incident_factory()
    incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="Cleared")
    INCIDENT.reply(ticket=incident, author=agent, body="Glad it works")
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_closed_incidents_take_no_reply(incident_factory, agent):
    from incidents.services import incident_cancel

    incident = incident_factory()
    incident_cancel(incident_id=incident.id, actor=agent, reason="Duplicate")
    incident.refresh_from_db()
    assert not INCIDENT.accepts_reply(incident)


# --- requests -------------------------------------------------------------------------------------


def test_a_request_from_mail_with_one_required_text_question(requester):
    wanted = item("Software", fields=[{"name": "what", "label": "What do you need", "type": "long_text",
                                       "required": True},
                                      {"name": "when", "label": "Needed by", "type": "date"}])
    request = REQUEST.create_from_mail(intake=MailIntake(
        requester=requester, title="Need Visio", body="Visio for the floor plans, please.", files=(a_file(),),
        data={"mail": 3}, catalog_item_id=wanted.id))
    assert (request.title, request.description) == ("Need Visio", "Visio for the floor plans, please.")
    assert request.answers["what"] == "Visio for the floor plans, please."
    assert request.status == "in_fulfilment"  # no approval: straight to the item's team
    created = TimelineEntry.objects.get(object_id=request.id, data__event="created",
                                        content_type__model="servicerequest")
    assert created.data["channel"] == "email" and created.data["mail"] == 3
    assert Attachment.objects.filter(object_id=request.id, content_type__model="servicerequest").count() == 1
    assert REQUEST.get(request.number) == request


def test_a_request_item_asking_more_than_a_mail_can_answer_is_refused(requester):
    from requests_app.models import ServiceRequest

    choosy = item("Laptop", fields=[{"name": "model", "label": "Model", "type": "choice", "choices": "A\nB",
                                     "required": True}])
    with pytest.raises(InvalidInput) as error:
        REQUEST.create_from_mail(intake=MailIntake(requester=requester, title="Laptop", body="x",
                                                   catalog_item_id=choosy.id))
    assert error.value.field == "catalog_item" and "needs answers a mail cannot give" in error.value.message
    with pytest.raises(InvalidInput) as error:
        REQUEST.create_from_mail(intake=MailIntake(requester=requester, title="Laptop", body="x"))
    assert error.value.field == "catalog_item"
    assert not ServiceRequest.objects.exists()


@pytest.fixture
def fulfilled(requester, agent):
    from requests_app.services import request_fulfil, request_submit

    made = request_submit(item=item("Headset"), answers={}, requester=requester, created_by=requester)
    return request_fulfil(request_id=made.id, actor=agent, note="On your desk")


@pytest.mark.parametrize("who", ["requester", "watcher"])
def test_a_reply_to_a_recently_fulfilled_request_reopens_it(who, fulfilled, requester, agent, make_user):
    author = requester
    if who == "watcher":
        author = make_user("requester", username="carol")
        watcher_add(ticket=fulfilled, user=author, by=agent)
    entry = REQUEST.reply(ticket=fulfilled, author=author, body="It has no microphone", files=(a_file(),),
                          data={"mail": 5})
    fulfilled.refresh_from_db()
    assert fulfilled.status == "in_fulfilment"
    assert entry.data == {"mail": 5} and Attachment.objects.filter(entry=entry).count() == 1
    reason = "The requester replied" if who == "requester" else "A watcher replied"
    assert TimelineEntry.objects.filter(object_id=fulfilled.id, body=f"Reopened: {reason}").exists()


def test_a_late_reply_to_a_fulfilled_request_is_only_a_comment(fulfilled, requester, settings):
    from requests_app.models import ServiceRequest

    ServiceRequest.objects.filter(id=fulfilled.id).update(
        fulfilled_at=timezone.now() - timedelta(days=settings.REQUEST_REOPEN_DAYS + 1))
    fulfilled.refresh_from_db()
    entry = REQUEST.reply(ticket=fulfilled, author=requester, body="Thanks again")
    fulfilled.refresh_from_db()
    assert fulfilled.status == "fulfilled" and entry.kind == "comment"


def test_an_agents_reply_to_a_fulfilled_request_does_not_reopen_it(fulfilled, agent):
    REQUEST.reply(ticket=fulfilled, author=agent, body="Enjoy")
    fulfilled.refresh_from_db()
    assert fulfilled.status == "fulfilled"
    assert REQUEST.accepts_reply(fulfilled) and REQUEST.find(agent, fulfilled.number) == fulfilled


def test_find_is_for_agents_only(fulfilled, requester, agent):
    assert REQUEST.find(requester, fulfilled.number) is None
    assert REQUEST.brief(fulfilled).solved and REQUEST.brief(fulfilled).kind == "request"
