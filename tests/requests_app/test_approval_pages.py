"""The approvals inboxes (/agent/approvals/, /portal/approvals/), the portal home card, the chain on a request's
portal page, and the signed one-time links mailed to approvers (GET never decides; POST once; expiry)."""

import re
import time

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from requests_app.approvals import LINK_SALT, link_token
from requests_app.models import Approval, ServiceRequest
from requests_app.states import Status
from servicedesk.roles import role_of
from tests.requests_app.approval_helpers import group_of, licence, mails, manage, order, pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(make_user):
    return make_user("requester", username="manny", first_name="Manny", last_name="Manager")


@pytest.fixture
def made(requester, manager):
    manage(requester, manager)
    return order(licence("Licence", ("manager", "any")), requester)


def signed_in(client, user):
    client.force_login(user)
    return client


def nav_link(html) -> str:
    return re.search(r'<a [^>]*data-testid="nav-approvals".*?</a>', html, re.S).group(0)


def link(approval, decision="approve"):
    return f"/portal/approvals/link/{link_token(approval)}/?decision={decision}"


# --- inboxes --------------------------------------------------------------------------------------


def test_the_portal_inbox_lists_what_waits_with_answers_and_approving_there_moves_the_request_on(
        client, made, manager):
    page = signed_in(client, manager).get("/portal/approvals/")
    html = page.content.decode()
    assert page.status_code == 200
    assert made.number in html and "Alice Able" in html and "Floor plans" in html
    assert 'data-testid="override-marker"' not in html
    approval = pending(made).get()
    response = client.post(f"/portal/approvals/{approval.id}/decide/", {"decision": "approve", "comment": "Go"})
    assert response.status_code == 302 and response["Location"] == "/portal/approvals/"
    assert ServiceRequest.objects.get(id=made.id).status == Status.IN_FULFILMENT
    assert "Nothing waits for your approval" in client.get("/portal/approvals/").content.decode()


def test_rejecting_in_the_inbox_without_a_comment_says_so_and_changes_nothing(client, made, manager):
    approval = pending(made).get()
    signed_in(client, manager)
    response = client.post(f"/portal/approvals/{approval.id}/decide/", {"decision": "reject"}, follow=True)
    assert "say why you reject it" in response.content.decode()
    assert pending(made).exists()


def test_deciding_another_persons_approval_in_the_inbox_is_404(client, made, other_requester):
    approval = pending(made).get()
    response = signed_in(client, other_requester).post(f"/portal/approvals/{approval.id}/decide/",
                                                       {"decision": "approve"})
    assert response.status_code == 404 and pending(made).exists()


def test_the_workspace_inbox_is_for_agents_and_counts_in_the_sidebar(client, requester, agent, make_user):
    it = licence("Licence", (group_of("IT approvers", agent), "any"))
    made = order(it, requester)
    page = signed_in(client, agent).get("/agent/approvals/")
    html = page.content.decode()
    assert page.status_code == 200 and made.number in html
    assert '<span class="nav-count" data-testid="nav-count">1</span>' in nav_link(html)
    client.post(f"/agent/approvals/{pending(made).get().id}/decide/", {"decision": "approve"})
    assert ServiceRequest.objects.get(id=made.id).status == Status.IN_FULFILMENT
    html = client.get("/agent/approvals/").content.decode()
    assert "nav-count" not in nav_link(html)  # nothing waits: no number
    assert signed_in(client, requester).get("/agent/approvals/").status_code == 403


def test_admins_see_every_pending_approval_marked_as_an_override(client, made, admin_user):
    html = signed_in(client, admin_user).get("/agent/approvals/").content.decode()
    assert made.number in html and 'data-testid="override-marker"' in html and "for Manny Manager" in html


@pytest.mark.parametrize("path", ["/agent/approvals/", "/portal/approvals/"])
def test_an_inbox_costs_the_same_queries_for_one_or_many_approvals(client, requester, agent, path):
    it = licence("Licence", (group_of("IT approvers", agent), "any"))
    signed_in(client, agent)
    counts = []
    for _ in range(2):
        order(it, requester)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200
        counts.append(len(ctx.captured_queries))
        for _ in range(3):
            order(it, requester)
    assert Approval.objects.filter(approver=agent, state="pending").count() == 8
    assert counts[0] == counts[1], counts


def test_the_portal_home_shows_a_card_only_to_those_with_approvals_waiting(client, made, manager, requester):
    html = signed_in(client, manager).get("/portal/").content.decode()
    assert 'data-testid="approvals-panel"' in html and made.number in html
    assert 'data-testid="approvals-panel"' not in signed_in(client, requester).get("/portal/").content.decode()


def test_the_request_page_shows_the_approval_chain(client, requester, manager, made):
    html = signed_in(client, requester).get(f"/portal/requests/{made.number}/").content.decode()
    assert 'data-testid="approval-chain"' in html and "Manager of Alice Able" in html and "Manny Manager" in html
    assert 'data-state="pending"' in html


# --- signed links ---------------------------------------------------------------------------------


def test_the_mailed_link_is_the_one_from_the_mail_and_get_only_asks_for_confirmation(client, made):
    [mail] = mails("approval_requested")
    url = mail["context"]["approval"]["approve_url"].split("://", 1)[1].split("/", 1)[1]
    page = client.get(f"/{url}")  # not signed in: the token is the authority
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="approval-link-form"' in html and "Floor plans" in html
    assert 'value="approve" checked' in html
    assert pending(made).exists()  # a mail scanner's prefetch decides nothing


def test_posting_the_link_decides_once_and_the_link_then_says_it_was_decided(client, made):
    approval = pending(made).get()
    response = client.post(link(approval), {"decision": "approve", "comment": "Enjoy"})
    assert response.status_code == 200 and 'data-state="approved"' in response.content.decode()
    approval.refresh_from_db()
    assert approval.state == "approved" and approval.decided_by.username == "manny" and not approval.override
    assert approval.comment == "Enjoy"
    assert ServiceRequest.objects.get(id=made.id).status == Status.IN_FULFILMENT
    again = client.get(link(approval, "reject"))
    assert "Already approved by Manny Manager" in again.content.decode()
    client.post(link(approval, "reject"), {"decision": "reject", "comment": "no"})
    assert Approval.objects.get(id=approval.id).state == "approved"


def test_a_link_rejection_needs_a_comment(client, made):
    approval = pending(made).get()
    response = client.post(link(approval, "reject"), {"decision": "reject"})
    assert response.status_code == 400 and "say why you reject it" in response.content.decode()
    assert pending(made).exists()
    client.post(link(approval, "reject"), {"decision": "reject", "comment": "Too dear"})
    assert ServiceRequest.objects.get(id=made.id).status == Status.REJECTED


def test_an_expired_link_decides_nothing(client, made, settings):
    settings.APPROVAL_LINK_MAX_AGE_DAYS = 0
    approval = pending(made).get()
    token = link_token(approval)
    time.sleep(1.1)  # signing counts whole seconds
    response = client.post(f"/portal/approvals/link/{token}/", {"decision": "approve"})
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert pending(made).exists()


def test_a_tampered_or_mismatched_link_decides_nothing(client, made, other_requester):
    approval = pending(made).get()
    token = link_token(approval)
    assert client.post(f"/portal/approvals/link/{token[:-2]}xx/", {"decision": "approve"}).status_code == 404
    forged = signing.dumps({"a": approval.id, "u": other_requester.id}, salt=LINK_SALT, compress=True)
    assert client.post(f"/portal/approvals/link/{forged}/", {"decision": "approve"}).status_code == 404
    assert pending(made).exists()


# --- admin ----------------------------------------------------------------------------------------


def test_admin_sets_an_items_approval_levels_and_fallback_group_and_a_group_level_needs_its_group(admin_client):
    from django.contrib.auth.models import Group

    from requests_app.models import CatalogItem
    from tests.requests_app.test_models import _item_post

    approvers = Group.objects.create(name="IT approvers")
    fallback = Group.objects.create(name="Approval desk")
    levels = {"approval_levels-TOTAL_FORMS": "2",
              "approval_levels-0-order": "1", "approval_levels-0-kind": "manager", "approval_levels-0-group": "",
              "approval_levels-0-mode": "any",
              "approval_levels-1-order": "2", "approval_levels-1-kind": "group", "approval_levels-1-group": "",
              "approval_levels-1-mode": "all"}
    response = admin_client.post("/admin/requests_app/catalogitem/add/",
                                 _item_post(approval_fallback_group=fallback.id, **levels))
    assert response.status_code == 200  # the group level names no group
    assert "Choose the approver group." in response.content.decode()
    levels["approval_levels-1-group"] = str(approvers.id)
    response = admin_client.post("/admin/requests_app/catalogitem/add/",
                                 _item_post(approval_fallback_group=fallback.id, **levels))
    assert response.status_code == 302
    laptop = CatalogItem.objects.get(name="New laptop")
    assert laptop.requires_approval and laptop.approval_fallback_group == fallback
    assert [(lv.kind, lv.group, lv.mode) for lv in laptop.approval_levels.all()] == [
        ("manager", None, "any"), ("group", approvers, "all")]


def test_admin_edits_a_persons_manager_on_the_user_page(admin_client, requester, manager):
    from tests.admin_forms import changeform_data

    page = admin_client.get(f"/admin/auth/user/{requester.id}/change/")
    data = changeform_data(page)
    data["profile-0-manager"] = str(manager.id)
    response = admin_client.post(f"/admin/auth/user/{requester.id}/change/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    requester.profile.refresh_from_db()
    assert requester.profile.manager == manager


def test_the_home_card_lists_the_oldest_five_in_two_queries(rf, requester, agent, django_assert_num_queries):
    from requests_app.plugin import _approvals_panel

    it = licence("Licence", (group_of("IT approvers", agent), "any"))
    made = [order(it, requester) for _ in range(7)]
    request = rf.get("/portal/")
    request.user = agent
    role_of(agent)  # the role look-up is cached per request; keep it out of the count
    with django_assert_num_queries(2):
        data = _approvals_panel(request)
        numbers = [a.request.number for a in data["rows"]]
    assert data["count"] == 7 and data["more"] and numbers == [r.number for r in made[:5]]
