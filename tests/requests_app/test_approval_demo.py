"""The demo's approvals: Rita's manager is Maya, the licence needs her approval, the laptop two levels with a
fallback group, and one request waits in Maya's inbox; seeding again adds nothing."""

import pytest
from django.core.management import call_command

from requests_app.demo import seed_approvals
from requests_app.models import Approval, CatalogItem
from servicedesk.models import Profile

pytestmark = pytest.mark.django_db


def test_the_demo_seeds_managers_policies_and_one_request_waiting_for_approval(capsys):
    call_command("seed_demo", "--quiet-logins")
    assert "1 request waiting for approval added" in capsys.readouterr().out
    assert Profile.objects.get(user__username="requester").manager.username == "manager"
    licence = CatalogItem.objects.get(name="Software licence")
    laptop = CatalogItem.objects.get(name="New laptop")
    assert [(lv.kind, lv.mode) for lv in licence.approval_levels.all()] == [("manager", "any")]
    assert [(lv.kind, lv.group and lv.group.name) for lv in laptop.approval_levels.all()] == [
        ("manager", None), ("group", "IT approvers")]
    assert laptop.approval_fallback_group.name == "Approval desk"
    assert not CatalogItem.objects.get(name="Reset my password").requires_approval
    [waiting] = Approval.objects.filter(state="pending", request__requester__username="requester")
    assert (waiting.approver.username, waiting.request.requester.username) == ("manager", "requester")
    assert seed_approvals() == "0 approval policies and 0 request waiting for approval added"


def test_the_demo_orders_fill_the_queues_through_the_real_services(capsys, django_capture_on_commit_callbacks):
    from requests_app.demo import seed_requests
    from requests_app.models import ServiceRequest

    with django_capture_on_commit_callbacks(execute=False):  # the automated handler runs later, in the worker
        call_command("seed_demo", "--quiet-logins")
    assert "3 demo orders added" in capsys.readouterr().out
    orders = {r.requester.username: r for r in ServiceRequest.objects.exclude(requester__username="requester")}
    assert orders["user001"].status == "in_fulfilment" and orders["user001"].assignment_group.name == "Service Desk"
    states = sorted((a.level, a.state) for a in orders["user001"].approvals.all())
    assert states == [(1, "approved"), (2, "approved"), (2, "skipped")]  # IT approvers: any one of them
    # user003 has no manager: the first level falls to the fallback group (Approval desk), and says so.
    assert orders["user003"].status == "pending_approval"
    assert {a.via for a in orders["user003"].approvals.all()} == {"Fallback group Approval desk"}
    assert orders["user002"].status == "in_fulfilment" and orders["user002"].fulfilment_run.handler == "group_access"
    assert seed_requests() == "no demo orders added"
    from sla.models import SlaClock

    # The demo's request policy gives them clocks; the one waiting for approval has its clock paused.
    clocks = {c.ticket_id: c for c in SlaClock.objects.filter(ticket_type="request", kind="resolution")}
    assert clocks[orders["user001"].id].state == "running"
    assert clocks[orders["user001"].id].policy_name == "Service requests: office hours"
    assert clocks[orders["user003"].id].state == "paused"
