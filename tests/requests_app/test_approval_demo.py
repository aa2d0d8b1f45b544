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
    [waiting] = Approval.objects.filter(state="pending")
    assert (waiting.approver.username, waiting.request.requester.username) == ("manager", "requester")
    assert seed_approvals() == "0 approval policies and 0 request waiting for approval added"
