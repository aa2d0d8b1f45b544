"""Service requests through requests_app.services: submission (answers checked, nothing stored when bad,
only orderable items), the transition table, cancel rules, timeline/audit/outbox, and the SLA clocks."""

import pytest
from django.contrib.auth.models import Group

from requests_app.forms_engine import AnswersInvalid
from requests_app.models import ServiceRequest
from requests_app.services import request_cancel, request_close, request_fulfil, request_submit
from requests_app.states import ALLOWED, Status, check_transition
from servicedesk.errors import InvalidInput, StaleVersion, TransitionNotAllowed
from servicedesk.models import AuditLog, OutboxMessage, TimelineEntry
from sla.models import SlaClock, SlaPolicy, SlaTarget
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db

LAPTOP_FIELDS = [
    {"name": "model", "label": "Model", "type": "choice", "required": True, "choices": "13 inch\n15 inch"},
    {"name": "needed_by", "label": "Needed by", "type": "date", "required": True},
    {"name": "quantity", "label": "How many", "type": "number", "min_value": 1, "max_value": 3},
]


@pytest.fixture
def laptop():
    return item("New laptop", fields=LAPTOP_FIELDS, delivery_amount=3, delivery_unit="business_days")


def submit(laptop, requester, **answers):
    answers = answers or {"model": "13 inch", "needed_by": "2026-12-15", "quantity": "2"}
    return request_submit(item=laptop, answers=answers, requester=requester, created_by=requester)


def test_a_valid_submission_goes_to_fulfilment_with_cleaned_answers_timeline_audit_and_mail(
        laptop, requester, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        made = submit(laptop, requester)
    made.refresh_from_db()
    assert made.number.startswith("REQ") and len(made.number) == 10
    assert made.status == Status.IN_FULFILMENT
    assert made.assignment_group == laptop.fulfilment_team
    assert made.answers == {"model": "13 inch", "needed_by": "2026-12-15", "quantity": 2}
    assert made.title == "New laptop" and made.priority == 4 and made.version == 2
    events = [e.data.get("to") or e.data.get("event")
              for e in TimelineEntry.objects.filter(object_id=made.id, content_type__model="servicerequest")]
    assert events == ["created", "in_fulfilment"]
    assert set(AuditLog.objects.filter(object_id=str(made.id)).values_list("action", flat=True)) >= {
        "request.submitted", "request.in_fulfilment"}
    mail = OutboxMessage.objects.get(handler="email.send")
    assert mail.payload["template"] == "request_submitted"
    assert mail.payload["to"] == [requester.email]
    assert mail.payload["context"]["request"]["number"] == made.number


def test_bad_answers_name_every_field_and_store_nothing(laptop, requester):
    with pytest.raises(AnswersInvalid) as raised:
        submit(laptop, requester, model="17 inch", quantity=9, colour="red")
    assert set(raised.value.errors) == {"model", "needed_by", "quantity", "colour"}
    assert not ServiceRequest.objects.exists()
    assert not TimelineEntry.objects.exists()
    assert not OutboxMessage.objects.filter(handler="email.send").exists()


def test_an_item_the_requester_may_not_order_is_refused_naming_item(requester):
    finance = Group.objects.create(name="Finance")
    payroll = item("Payroll access", audience="groups", groups=[finance])
    retired = item("Fax machine", active=False)
    for refused in (payroll, retired):
        with pytest.raises(InvalidInput) as raised:
            request_submit(item=refused, answers={}, requester=requester, created_by=requester)
        assert raised.value.field == "item"
    assert not ServiceRequest.objects.exists()
    requester.groups.add(finance)
    assert request_submit(item=payroll, answers={}, requester=requester, created_by=requester).status == \
        Status.IN_FULFILMENT


def test_the_transition_table_covers_every_status_and_final_ones_allow_nothing():
    assert set(ALLOWED) == set(Status)
    assert ALLOWED[Status.CLOSED] == set() and ALLOWED[Status.CANCELLED] == set()
    check_transition(Status.IN_FULFILMENT, Status.FULFILLED)
    check_transition(Status.FULFILLED, Status.IN_FULFILMENT)  # reopened (request_reopen, within the window)
    with pytest.raises(TransitionNotAllowed):
        check_transition(Status.FULFILLED, Status.APPROVED)
    with pytest.raises(TransitionNotAllowed):
        check_transition(Status.SUBMITTED, Status.FULFILLED)


def test_fulfil_then_close_and_illegal_moves_are_refused(laptop, requester, agent):
    made = submit(laptop, requester)
    with pytest.raises(TransitionNotAllowed):
        request_close(request_id=made.id, actor=agent)  # not fulfilled yet
    with pytest.raises(InvalidInput) as raised:
        request_fulfil(request_id=made.id, actor=agent, note="  ")
    assert raised.value.field == "note"
    with pytest.raises(StaleVersion):
        request_fulfil(request_id=made.id, actor=agent, note="Delivered", version=made.version - 1)
    done = request_fulfil(request_id=made.id, actor=agent, note="Delivered to desk 4", version=made.version)
    assert done.status == Status.FULFILLED and done.fulfilled_at is not None
    with pytest.raises(TransitionNotAllowed):
        request_fulfil(request_id=made.id, actor=agent, note="again")
    closed = request_close(request_id=made.id, actor=agent)
    assert closed.status == Status.CLOSED and closed.closed_at is not None
    assert ServiceRequest.objects.get(id=made.id).version == 4


def test_cancel_by_requester_or_agent_only_before_fulfilment_ends(laptop, requester, other_requester, agent):
    first = submit(laptop, requester)
    with pytest.raises(TransitionNotAllowed):
        request_cancel(request_id=first.id, actor=other_requester)
    assert request_cancel(request_id=first.id, actor=requester, reason="Not needed").status == Status.CANCELLED
    with pytest.raises(TransitionNotAllowed):
        request_cancel(request_id=first.id, actor=requester)  # cancelled is final

    second = submit(laptop, requester)
    assert request_cancel(request_id=second.id, actor=agent).status == Status.CANCELLED

    third = submit(laptop, requester)
    request_fulfil(request_id=third.id, actor=agent, note="Done")
    with pytest.raises(TransitionNotAllowed):
        request_cancel(request_id=third.id, actor=requester)
    assert ServiceRequest.objects.get(id=third.id).status == Status.FULFILLED


def test_a_request_policy_starts_a_resolution_clock_that_stops_when_fulfilled(laptop, requester, agent):
    calendar = SlaPolicy.objects.filter(ticket_type="incident").first().calendar  # a default calendar
    policy = SlaPolicy.objects.create(name="Requests 1 day", order=1, ticket_type="request", calendar=calendar,
                                      pause_statuses=[])
    SlaTarget.objects.bulk_create([SlaTarget(policy=policy, priority=p, first_response_minutes=60,
                                             resolution_minutes=24 * 60) for p in range(1, 6)])
    made = submit(laptop, requester)
    clocks = {c.kind: c for c in SlaClock.objects.filter(ticket_type="request", ticket_id=made.id)}
    assert clocks["resolution"].state == "running" and clocks["resolution"].policy_id == policy.id
    assert "first_response" not in clocks  # fulfilment starts at submission: it counts as the response
    made.refresh_from_db()
    assert made.sla_due_at == clocks["resolution"].due_at
    request_fulfil(request_id=made.id, actor=agent, note="Done")
    clock = SlaClock.objects.get(ticket_type="request", ticket_id=made.id, kind="resolution")
    assert clock.state != "running"
    assert ServiceRequest.objects.get(id=made.id).sla_due_at is None


def test_the_items_own_sla_policy_is_used_before_the_matching_rules(laptop, requester):
    calendar = SlaPolicy.objects.filter(ticket_type="incident").first().calendar
    by_rules = SlaPolicy.objects.create(name="Requests 1 day", order=1, ticket_type="request", calendar=calendar)
    own = SlaPolicy.objects.create(name="Laptops 5 days", order=50, ticket_type="request", calendar=calendar)
    for policy, minutes in ((by_rules, 24 * 60), (own, 5 * 24 * 60)):
        SlaTarget.objects.bulk_create([SlaTarget(policy=policy, priority=p, first_response_minutes=60,
                                                 resolution_minutes=minutes) for p in range(1, 6)])
    assert SlaClock.objects.get(ticket_id=submit(laptop, requester).id, ticket_type="request").policy == by_rules
    laptop.sla_policy = own
    laptop.save()
    clock = SlaClock.objects.get(ticket_id=submit(laptop, requester).id, ticket_type="request")
    assert clock.policy == own and clock.target_seconds == 5 * 24 * 3600


def test_comments_a_reply_mails_the_other_side_a_note_stays_internal_and_closed_takes_notes_only(
        laptop, requester, agent, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from requests_app.services import request_comment_add
    from servicedesk.models import Attachment

    made = submit(laptop, requester)
    laptop.fulfilment_team.members.add(agent)
    OutboxMessage.objects.all().delete()
    version = ServiceRequest.objects.get(id=made.id).version
    with django_capture_on_commit_callbacks(execute=False):
        reply = request_comment_add(request=made, author=requester, body="Silver, please",
                                    files=[SimpleUploadedFile("spec.txt", b"silver 13 inch\n")])
    assert reply.kind == TimelineEntry.Kind.COMMENT and not reply.internal
    assert Attachment.objects.get(entry=reply).filename == "spec.txt"
    assert made.version == version + 1
    mail = OutboxMessage.objects.get(handler="email.send")
    assert mail.payload["template"] == "request_comment"
    assert requester.email not in mail.payload["to"] and agent.email in mail.payload["to"]
    # Public mail (it holds only the requester's own words): the agent's answer to it by mail reaches the requester.
    assert mail.payload["thread"]["internal"] is False

    OutboxMessage.objects.all().delete()
    answer = request_comment_add(request=made, author=agent, body="Ordered it")
    assert OutboxMessage.objects.get(handler="email.send").payload["to"] == [requester.email]
    assert OutboxMessage.objects.get(handler="email.send").payload["thread"]["internal"] is False
    assert not answer.internal
    note = request_comment_add(request=made, author=agent, body="Supplier ref 42", internal=True)
    assert note.internal and OutboxMessage.objects.count() == 1

    with pytest.raises(InvalidInput) as raised:
        request_comment_add(request=made, author=requester, body="sneaky", internal=True)
    assert raised.value.field == "internal"
    with pytest.raises(InvalidInput) as raised:
        request_comment_add(request=made, author=requester, body="  ")
    assert raised.value.field == "body"
    request_cancel(request_id=made.id, actor=requester)
    with pytest.raises(TransitionNotAllowed):
        request_comment_add(request=made, author=requester, body="one more thing")
    assert request_comment_add(request=made, author=agent, body="closing remark", internal=True).internal
