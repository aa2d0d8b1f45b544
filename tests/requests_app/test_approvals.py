"""Approval chains through requests_app.approvals: levels in sequence, any-of and all-of, the fallback when a
level names nobody, rejection stopping fulfilment, admin overrides, double clicks, cancellation, reminders."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from requests_app.approvals import approval_decide, approvals_remind
from requests_app.models import Approval, ServiceRequest
from requests_app.services import request_cancel
from requests_app.states import Status
from servicedesk.errors import InvalidInput, NotVisible, TransitionNotAllowed
from servicedesk.models import AuditLog
from tests.requests_app.approval_helpers import group_of, licence, mails, manage, order, pending, timeline
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(make_user):
    return make_user("requester", username="manny", first_name="Manny", last_name="Manager")


@pytest.fixture
def approvers(make_user):
    return [make_user("agent", username=f"approver{n}", first_name=f"Approver{n}") for n in (1, 2)]


def status_of(request) -> str:
    return ServiceRequest.objects.get(id=request.id).status


def test_an_item_requires_approval_exactly_when_it_has_levels(manager):
    plain = item("Reset my password")
    assert plain.requires_approval is False
    assert licence("Licence", ("manager", "any")).requires_approval is True


def test_submitting_opens_level_one_for_the_requesters_manager_and_mails_signed_links(requester, manager):
    manage(requester, manager)
    made = order(licence("Licence", ("manager", "any")), requester)
    assert status_of(made) == Status.PENDING_APPROVAL
    [approval] = Approval.objects.filter(request=made)
    assert (approval.approver, approval.level, approval.state, approval.via) == (
        manager, 1, "pending", "Manager of Alice Able")
    assert "Approval asked of Manny Manager" in timeline(made)
    [mail] = mails("approval_requested")
    assert mail["to"] == [manager.email]
    assert mail["thread"]["internal"] is True  # the approver is not the requester's side: a reply stays internal
    assert mail["context"]["answers"] == [{"label": "Product", "value": "Visio"},
                                          {"label": "Why do you need it?", "value": "Floor plans"}]
    assert "/portal/approvals/link/" in mail["context"]["approval"]["approve_url"]
    assert mail["context"]["approval"]["approve_url"].endswith("?decision=approve")
    assert mail["context"]["approval"]["reject_url"].endswith("?decision=reject")


def test_levels_run_in_sequence_and_an_any_of_level_is_done_at_the_first_approval(requester, manager, approvers):
    manage(requester, manager)
    it_group = group_of("IT approvers", *approvers)
    made = order(licence("Laptop", ("manager", "any"), (it_group, "any")), requester)
    assert not pending(made).filter(level=2).exists()  # level 2 waits for level 1

    approval_decide(approval_id=pending(made, manager).get().id, actor=manager, approve=True, comment="Fine by me")
    assert status_of(made) == Status.PENDING_APPROVAL
    assert set(pending(made).filter(level=2).values_list("approver__username", flat=True)) == {
        "approver1", "approver2"}
    assert len(mails("approval_requested")) == 3  # the manager, then both of level 2

    approval_decide(approval_id=pending(made, approvers[1]).get().id, actor=approvers[1], approve=True)
    assert Approval.objects.get(request=made, approver=approvers[0]).state == "skipped"
    assert status_of(made) == Status.IN_FULFILMENT
    body = timeline(made)
    assert "Approved by Manny Manager: Fine by me" in body
    assert body.index("Approved") < body.index("Sent to Service Desk for fulfilment")
    [approved] = mails("request_approved")
    assert approved["to"] == [requester.email]


def test_an_all_of_level_needs_every_approver(requester, approvers):
    made = order(licence("Licence", (group_of("Board", *approvers), "all")), requester)
    approval_decide(approval_id=pending(made, approvers[0]).get().id, actor=approvers[0], approve=True)
    assert status_of(made) == Status.PENDING_APPROVAL
    assert pending(made, approvers[1]).exists()
    approval_decide(approval_id=pending(made, approvers[1]).get().id, actor=approvers[1], approve=True)
    assert status_of(made) == Status.IN_FULFILMENT


def test_no_manager_falls_to_the_fallback_group_and_the_timeline_says_so(requester, approvers):
    fallback = group_of("Service owners", approvers[0])
    made = order(licence("Licence", ("manager", "all"), fallback=fallback), requester)
    [approval] = pending(made)
    assert approval.approver == approvers[0] and approval.via == "Fallback group Service owners"
    assert "No manager for Alice Able: falls to the group Service owners" in timeline(made)


def test_an_empty_group_and_an_empty_fallback_fall_to_the_admins(requester, admin_user, make_user):
    second_admin = make_user("admin", username="root2")
    empty = group_of("Nobody here")
    made = order(licence("Licence", (group_of("Empty approvers"), "all"), fallback=empty), requester)
    assert set(pending(made).values_list("approver", flat=True)) == {admin_user.id, second_admin.id}
    assert pending(made).first().mode == "any"  # fallback approvers decide any-of
    assert ("No one in the group Empty approvers can approve, nor anyone in the fallback group Nobody here: "
            "falls to the admins") in timeline(made)


def test_the_requester_never_approves_their_own_request(requester, approvers):
    made = order(licence("Licence", (group_of("Approvers", requester, approvers[0]), "all")), requester)
    assert list(pending(made).values_list("approver", flat=True)) == [approvers[0].id]


def test_a_rejection_needs_a_comment_rejects_the_request_and_fulfilment_never_starts(requester, manager, approvers):
    manage(requester, manager)
    made = order(licence("Laptop", ("manager", "any"), (group_of("IT", *approvers), "all")), requester)
    approval = pending(made, manager).get()
    with pytest.raises(InvalidInput) as raised:
        approval_decide(approval_id=approval.id, actor=manager, approve=False, comment="  ")
    assert raised.value.field == "comment"
    assert pending(made, manager).exists()

    approval_decide(approval_id=approval.id, actor=manager, approve=False, comment="Use the spare one")
    made.refresh_from_db()
    assert made.status == Status.REJECTED and made.assignment_group is None
    assert not pending(made).exists() and not Approval.objects.filter(request=made, level=2).exists()
    assert "Rejected by Manny Manager: Use the spare one" in timeline(made)
    assert not any("fulfilment" in line for line in timeline(made))
    [rejected] = mails("request_rejected")
    assert rejected["to"] == [requester.email]
    assert rejected["context"]["decision"] == {"by": "Manny Manager", "comment": "Use the spare one"}


def test_an_admin_may_decide_anyones_approval_recorded_as_an_override(requester, manager, admin_user):
    manage(requester, manager)
    made = order(licence("Licence", ("manager", "any")), requester)
    approval = approval_decide(approval_id=pending(made).get().id, actor=admin_user, approve=True, comment="Urgent")
    assert approval.override is True and approval.decided_by == admin_user and approval.approver == manager
    assert status_of(made) == Status.IN_FULFILMENT
    assert "Approved by root in place of Manny Manager (admin override): Urgent" in timeline(made)
    audit = AuditLog.objects.get(action="approval.approved", object_id=str(made.id))
    assert audit.actor == admin_user and audit.changes["override"] is True and audit.changes["approver"] == "manny"


def test_someone_else_cannot_decide_and_learns_nothing(requester, manager, other_requester, agent):
    manage(requester, manager)
    made = order(licence("Licence", ("manager", "any")), requester)
    for stranger in (other_requester, agent, requester):
        with pytest.raises(NotVisible):
            approval_decide(approval_id=pending(made).get().id, actor=stranger, approve=True)
    assert pending(made, manager).exists()


def test_a_double_click_decides_once_and_a_contrary_second_decision_is_refused(requester, manager):
    manage(requester, manager)
    made = order(licence("Licence", ("manager", "any")), requester)
    approval_id = pending(made).get().id
    approval_decide(approval_id=approval_id, actor=manager, approve=True)
    lines, version = len(timeline(made)), ServiceRequest.objects.get(id=made.id).version
    again = approval_decide(approval_id=approval_id, actor=manager, approve=True)
    assert again.state == "approved"
    assert len(timeline(made)) == lines and ServiceRequest.objects.get(id=made.id).version == version
    with pytest.raises(TransitionNotAllowed, match="already approved by Manny Manager"):
        approval_decide(approval_id=approval_id, actor=manager, approve=False, comment="changed my mind")


def test_cancelling_a_request_cancels_its_pending_approvals(requester, manager):
    manage(requester, manager)
    made = order(licence("Licence", ("manager", "any")), requester)
    request_cancel(request_id=made.id, actor=requester, reason="Found one")
    assert list(Approval.objects.filter(request=made).values_list("state", flat=True)) == ["cancelled"]
    with pytest.raises(TransitionNotAllowed, match="cancelled"):
        approval_decide(approval_id=Approval.objects.get(request=made).id, actor=manager, approve=True)


# --- reminders ------------------------------------------------------------------------------------


def test_the_reminder_sweep_mails_only_due_approvals_and_each_once(requester, manager, approvers, settings):
    settings.APPROVAL_REMINDER_HOURS = 24
    manage(requester, manager)
    now = timezone.now()
    old = order(licence("Licence", ("manager", "any")), requester)
    fresh = order(ServiceRequest.objects.get(id=old.id).item, requester)
    decided = order(ServiceRequest.objects.get(id=old.id).item, requester)
    Approval.objects.filter(request__in=[old, decided]).update(created_at=now - timedelta(hours=25))
    approval_decide(approval_id=pending(decided).get().id, actor=manager, approve=True)

    assert approvals_remind(now=now) == 1
    assert pending(old).get().reminded_at == now
    assert pending(fresh).get().reminded_at is None
    assert Approval.objects.get(request=decided).reminded_at is None
    [reminder] = mails("approval_reminder")
    assert reminder["to"] == [manager.email] and reminder["context"]["request"]["number"] == old.number
    assert reminder["thread"]["internal"] is True

    assert approvals_remind(now=now + timedelta(hours=1)) == 0  # not twice
    assert approvals_remind(now=now + timedelta(hours=26)) == 1  # the fresh one, once it is due
    assert len(mails("approval_reminder")) == 2


def test_the_reminder_sweep_reads_due_rows_through_its_partial_index():
    due = (Approval.objects.filter(state="pending", reminded_at__isnull=True, created_at__lte=timezone.now())
           .order_by("created_at", "id"))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = due.explain()
    assert "approval_remind_due_idx" in plan


# --- mail -----------------------------------------------------------------------------------------


def test_every_approval_mail_renders_with_its_links_answers_and_comment(requester, manager, mailoutbox):
    from servicedesk.notifications import email_render_and_send

    manage(requester, manager)
    first = order(licence("Licence", ("manager", "any")), requester)
    second = order(ServiceRequest.objects.get(id=first.id).item, requester)
    Approval.objects.filter(request=first).update(created_at=timezone.now() - timedelta(days=2))
    approvals_remind()
    approval_decide(approval_id=pending(first).get().id, actor=manager, approve=True, comment="Enjoy")
    approval_decide(approval_id=pending(second).get().id, actor=manager, approve=False, comment="One is enough")
    for template in ("approval_requested", "approval_reminder", "request_approved", "request_rejected"):
        payload = mails(template)[0]
        email_render_and_send(template=template, to=payload["to"], context=payload["context"])
    asked, reminded, approved, rejected = mailoutbox
    assert asked.subject == f"[{first.number}] Approval needed: Licence for Alice Able"
    assert asked.to == [manager.email]
    approve_url = mails("approval_requested")[0]["context"]["approval"]["approve_url"]
    assert approve_url in asked.body and approve_url in asked.alternatives[0][0]
    assert "Why do you need it?: Floor plans" in asked.body
    assert reminded.subject.startswith(f"[{first.number}] Reminder:")
    # Mail to the requester carries the request's own subject (one conversation); the body says what happened.
    assert approved.subject == f"[{first.number}] Licence" and "Enjoy" in approved.body
    assert "Your request was approved" in approved.body
    assert rejected.subject == f"[{second.number}] Licence" and "One is enough" in rejected.body
    assert "Your request was not approved" in rejected.body
    assert rejected.to == [requester.email]


@pytest.mark.django_db(transaction=True)
def test_two_approvers_of_an_any_of_step_approving_at_once_start_fulfilment_once(make_user):
    import threading

    from django.db import connections

    requester = make_user("requester", username="rita")
    first, second = make_user("agent", username="ann"), make_user("agent", username="ben")
    made = order(licence("Licence", (group_of("Approvers", first, second), "any")), requester)
    ids = {user.id: pending(made, user).get().id for user in (first, second)}
    barrier, outcomes = threading.Barrier(2), {}

    def approve(user):
        try:
            barrier.wait()
            approval_decide(approval_id=ids[user.id], actor=user, approve=True)
            outcomes[user.username] = "approved"
        except TransitionNotAllowed as error:
            outcomes[user.username] = str(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(user,)) for user in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [refused] = [outcome for outcome in outcomes.values() if outcome != "approved"]
    assert len(outcomes) == 2 and "no longer needed" in refused
    assert sorted(Approval.objects.filter(request=made).values_list("state", flat=True)) == ["approved", "skipped"]
    assert status_of(made) == Status.IN_FULFILMENT
    assert sum("for fulfilment" in line for line in timeline(made)) == 1


def test_beat_runs_the_reminder_sweep_through_its_celery_task(requester, manager, settings):
    from requests_app.tasks import approvals_remind as task

    entry = settings.CELERY_BEAT_SCHEDULE["approvals-remind"]
    assert entry["task"] == task.name == "requests_app.tasks.approvals_remind"
    assert entry["schedule"] == float(settings.APPROVAL_REMIND_SWEEP_SECONDS)
    manage(requester, manager)
    made = order(licence("Licence", ("manager", "any")), requester)
    Approval.objects.filter(request=made).update(created_at=timezone.now() - timedelta(days=2))
    assert task() == 1 and task() == 0
