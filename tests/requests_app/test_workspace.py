"""Service requests in the agent workspace: the "Requests" queues (contents per user, counts, sort, constant
queries), the agent request page and its actions through POSTs (stale versions answer 409, nothing saved),
global search, and the links that take agents to the agent page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from requests_app import plugin, workspace
from requests_app.models import ServiceRequest
from requests_app.services import request_assignee_set, request_comment_add, request_submit
from requests_app.states import Status
from servicedesk.models import Attachment, OutboxMessage, Team, TimelineEntry
from servicedesk.workspace import find_number
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db


@pytest.fixture
def laptop():
    return item("New laptop", fields=[
        {"name": "model", "label": "Model", "type": "choice", "required": True, "choices": "13 inch\n15 inch"},
    ])


@pytest.fixture
def network_item():
    return item("VPN access", fulfilment_team=Team.objects.get_or_create(name="Network")[0])


def order(catalog_item, requester, **answers):
    if catalog_item.name == "New laptop":
        answers = answers or {"model": "15 inch"}
    return request_submit(item=catalog_item, answers=answers, requester=requester, created_by=requester)


def reach(made, status):
    """Bring a request in fulfilment to `status` through the real services."""
    from requests_app.services import request_close, request_fail, request_fulfil

    if status == Status.FAILED:
        request_fail(request_id=made.id, error="the tool did not answer")
    elif status in (Status.FULFILLED, Status.CLOSED):
        request_fulfil(request_id=made.id, actor=None, note="Delivered")
        if status == Status.CLOSED:
            request_close(request_id=made.id, actor=None)
    made.refresh_from_db()
    assert made.status == status
    return made


def order_needing_approval(catalog_item, requester):
    """An order of `catalog_item` once it needs an approver group's approval: it waits in pending_approval."""
    from django.contrib.auth.models import Group

    from requests_app.models import ApprovalLevel

    approvers = Group.objects.get_or_create(name="Approvers")[0]
    approvers.user_set.add(make_approver())
    ApprovalLevel.objects.get_or_create(item=catalog_item, kind=ApprovalLevel.Kind.GROUP, group=approvers)
    made = order(catalog_item, requester)
    assert made.status == Status.PENDING_APPROVAL
    return made


def make_approver():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(username="approver", defaults={"email": "approver@example.com"})[0]


def numbers(response):
    return [row.number for row in response.context["page"].object_list]


# --- queues -------------------------------------------------------------------------------------------------


def test_each_queue_lists_the_open_requests_it_names(client, agent, make_user, requester, laptop, network_item):
    colleague = make_user("agent", username="carl", teams=["Service Desk"])
    mine = order(laptop, requester)
    request_assignee_set(request_id=mine.id, actor=agent, assignee=agent)
    colleagues = order(laptop, requester)
    request_assignee_set(request_id=colleagues.id, actor=agent, assignee=colleague)
    team_unassigned = order(laptop, requester)
    other_team = order(network_item, requester)
    failed = reach(order(laptop, requester), Status.FAILED)
    waiting = order_needing_approval(network_item, requester)
    done = reach(order(laptop, requester), Status.CLOSED)
    client.force_login(agent)

    def queue(key):
        response = client.get(reverse("agent:request_queue", kwargs={"key": key}))
        assert response.status_code == 200
        return set(numbers(response))

    assert queue("mine") == {mine.number}
    assert queue("team") == {mine.number, colleagues.number, team_unassigned.number, failed.number}
    assert queue("unassigned") == {team_unassigned.number, other_team.number, failed.number, waiting.number}
    assert queue("failed") == {failed.number}
    assert queue("approval") == {waiting.number}
    assert queue("all") == {mine.number, colleagues.number, team_unassigned.number, other_team.number,
                            failed.number, waiting.number}
    assert done.number not in queue("all")


def test_the_counts_come_in_one_query_and_match_the_queues(agent, requester, laptop, network_item,
                                                           django_assert_num_queries):
    order(laptop, requester)
    request_assignee_set(request_id=order(laptop, requester).id, actor=agent, assignee=agent)
    reach(order(network_item, requester), Status.FAILED)
    with django_assert_num_queries(1):
        counts = workspace.queue_counts(agent)
    assert counts == {"mine": 1, "team": 2, "unassigned": 2, "failed": 1, "approval": 0, "all": 3}


def test_the_sidebar_shows_the_requests_queues_with_counts_and_marks_the_current_one(agent_client, requester,
                                                                                     laptop):
    order(laptop, requester)
    response = agent_client.get(reverse("agent:request_queue", kwargs={"key": "team"}))
    html = response.content.decode()
    assert 'data-testid="nav-requests"' in html
    assert 'data-testid="nav-requests-team" aria-current="page"' in html
    section = next(s for s in response.context["nav_sections"] if s.section.key == "requests")
    assert {i.label: i.count for i in section.items} == {
        "My requests": 0, "Team requests": 1, "No assignee": 1, "Failed": 0, "Pending approval": 0,
        "All open requests": 1, "Approvals": None}  # the approvals inbox: no number while nothing waits


def test_a_requester_gets_403_from_every_workspace_request_url(client, requester, laptop):
    made = order(laptop, requester)
    client.force_login(requester)
    assert client.get(reverse("agent:request_queue", kwargs={"key": "all"})).status_code == 403
    assert client.get(reverse("agent:request", kwargs={"number": made.number})).status_code == 403
    response = client.post(reverse("agent:request_transition", kwargs={"number": made.number}),
                           {"to": "cancelled", "version": made.version})
    assert response.status_code == 403
    assert ServiceRequest.objects.get(id=made.id).status == Status.IN_FULFILMENT


def test_signed_out_people_are_sent_to_sign_in(client):
    response = client.get(reverse("agent:request_queue", kwargs={"key": "all"}))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_an_unknown_queue_is_404(agent_client):
    assert agent_client.get(reverse("agent:request_queue", kwargs={"key": "nope"})).status_code == 404


def test_queues_sort_by_the_next_sla_deadline_and_can_reverse_it(agent_client, requester, laptop):
    from datetime import timedelta

    from django.utils import timezone

    made = [order(laptop, requester) for _ in range(3)]
    now = timezone.now()
    for hours, req in zip((5, 1, 3), made, strict=True):
        ServiceRequest.objects.filter(id=req.id).update(sla_due_at=now + timedelta(hours=hours))
    url = reverse("agent:request_queue", kwargs={"key": "all"})
    assert numbers(agent_client.get(url)) == [made[1].number, made[2].number, made[0].number]
    assert numbers(agent_client.get(url, {"sort": "-sla"})) == [made[0].number, made[2].number, made[1].number]
    assert numbers(agent_client.get(url, {"sort": "number"})) == [r.number for r in made]
    # An unknown sort falls back to the SLA order rather than failing.
    assert numbers(agent_client.get(url, {"sort": "password"}))[0] == made[1].number


def test_a_queue_page_costs_the_same_queries_whatever_its_size(agent_client, requester, make_user, laptop):
    for _ in range(2):
        order(laptop, requester)
    url = reverse("agent:request_queue", kwargs={"key": "all"})
    agent_client.get(url)  # warm the per-process caches (content types, calendars)
    with CaptureQueriesContext(connection) as small:
        assert len(agent_client.get(url).context["page"].object_list) == 2
    others = [make_user("requester") for _ in range(4)]
    for n in range(28):
        order(laptop, others[n % 4])
    with CaptureQueriesContext(connection) as big:
        assert len(agent_client.get(url, {"per_page": 50}).context["page"].object_list) == 30
    assert len(big.captured_queries) == len(small.captured_queries)


def test_a_queue_is_paginated(agent_client, requester, laptop):
    for _ in range(27):
        order(laptop, requester)
    url = reverse("agent:request_queue", kwargs={"key": "all"})
    first = agent_client.get(url)
    page = first.context["page"]
    assert len(page.object_list) == 25 and page.count.value == 27 and not page.count.capped
    second = agent_client.get(url, {"cursor": page.next_cursor}).context["page"]
    assert len(second.object_list) == 2 and not second.has_next and second.has_previous
    assert not {r.id for r in second.object_list} & {r.id for r in page.object_list}


def test_a_row_shows_item_requester_status_team_and_sla(agent_client, requester, laptop):
    made = order(laptop, requester)
    html = agent_client.get(reverse("agent:request_queue", kwargs={"key": "all"})).content.decode()
    assert made.number in html and "New laptop" in html and "Alice Able" in html
    assert "In fulfilment" in html and "Service Desk" in html
    assert 'data-testid="sla-due"' in html or "No SLA" in html


# --- the request page ---------------------------------------------------------------------------------------


def test_the_agent_page_shows_answers_timeline_with_internal_notes_and_attachments(agent_client, agent, requester,
                                                                                   laptop):
    made = order(laptop, requester)
    request_comment_add(request=made, author=requester, body="Silver, please")
    request_comment_add(request=made, author=agent, body="Supplier ref 42", internal=True,
                        files=[SimpleUploadedFile("quote.txt", b"quote", content_type="text/plain")])
    response = agent_client.get(reverse("agent:request", kwargs={"number": made.number.lower()}))
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["answers"] == [("Model", "15 inch")]
    assert "Silver, please" in html and "Supplier ref 42" in html and "quote.txt" in html
    assert 'data-testid="sla-panel"' in html
    keys = [a.key for a in response.context["actions"]]
    assert keys == ["assign_me", "fulfil", "cancel"]


def test_an_unknown_number_is_404(agent_client):
    assert agent_client.get(reverse("agent:request", kwargs={"number": "REQ9999999"})).status_code == 404


def test_actions_follow_the_transition_table(agent_client, agent, requester, laptop):
    made = order(laptop, requester)
    request_assignee_set(request_id=made.id, actor=agent, assignee=agent)

    def keys(req):
        return [a.key for a in agent_client.get(reverse("agent:request", kwargs={"number": req.number}))
                .context["actions"]]

    assert keys(made) == ["fulfil", "cancel"]
    assert keys(reach(order(laptop, requester), Status.FULFILLED)) == ["close"]
    assert keys(reach(order(laptop, requester), Status.FAILED)) == ["assign_me", "retry", "cancel"]
    assert keys(reach(order(laptop, requester), Status.CLOSED)) == []


def test_page_actions_are_post_only(agent_client, requester, laptop):
    made = order(laptop, requester)
    for name in ("agent:request_transition", "agent:request_assign", "agent:request_comment"):
        assert agent_client.get(reverse(name, kwargs={"number": made.number})).status_code == 405


def test_assign_to_me_then_to_a_colleague_then_to_another_team(agent_client, agent, make_user, requester, laptop):
    colleague = make_user("agent", username="carl", first_name="Carl", teams=["Service Desk"])
    network = Team.objects.create(name="Network")
    made = order(laptop, requester)
    url = reverse("agent:request_assign", kwargs={"number": made.number})

    response = agent_client.post(url, {"assignee": agent.username, "version": made.version})
    assert response.status_code == 302
    made.refresh_from_db()
    assert made.assignee == agent

    agent_client.post(url, {"assignee": "carl", "version": made.version})
    made.refresh_from_db()
    assert made.assignee == colleague

    agent_client.post(url, {"assignment_group": network.id, "version": made.version})
    made.refresh_from_db()
    assert made.assignment_group == network and made.assignee is None
    changes = TimelineEntry.objects.filter(object_id=made.id, kind="change", content_type__model="servicerequest")
    assert changes.count() == 3 and all(e.internal for e in changes)


def test_assigning_someone_outside_the_team_is_refused_naming_the_field(agent_client, make_user, requester, laptop):
    make_user("agent", username="nina", teams=["Network"])
    made = order(laptop, requester)
    response = agent_client.post(reverse("agent:request_assign", kwargs={"number": made.number}),
                                 {"assignee": "nina", "version": made.version})
    assert response.status_code == 400
    assert "assignee: nina is not a member of Service Desk" in response.content.decode()
    made.refresh_from_db()
    assert made.assignee is None


def test_fulfil_with_a_note_through_the_page(agent_client, requester, laptop):
    made = order(laptop, requester)
    response = agent_client.post(reverse("agent:request_transition", kwargs={"number": made.number}),
                                 {"to": "fulfilled", "note": "Laptop handed over", "version": made.version})
    assert response.status_code == 302 and response["Location"] == reverse("agent:request",
                                                                           kwargs={"number": made.number})
    made.refresh_from_db()
    assert made.status == Status.FULFILLED and made.fulfilled_at is not None
    assert TimelineEntry.objects.filter(object_id=made.id, body="Fulfilled: Laptop handed over").exists()


def test_fulfil_without_a_note_is_400_with_the_form_kept_open(agent_client, requester, laptop):
    made = order(laptop, requester)
    response = agent_client.post(reverse("agent:request_transition", kwargs={"number": made.number}),
                                 {"to": "fulfilled", "note": " ", "version": made.version})
    assert response.status_code == 400
    assert response.context["open_action"] == "fulfilled"
    assert "note: say what was delivered" in response.content.decode()
    assert ServiceRequest.objects.get(id=made.id).status == Status.IN_FULFILMENT


def test_cancel_with_a_reason_then_close_is_refused(agent_client, requester, laptop):
    made = order(laptop, requester)
    url = reverse("agent:request_transition", kwargs={"number": made.number})
    agent_client.post(url, {"to": "cancelled", "reason": "Duplicate of another order", "version": made.version})
    made.refresh_from_db()
    assert made.status == Status.CANCELLED
    assert TimelineEntry.objects.filter(object_id=made.id, body="Cancelled: Duplicate of another order").exists()
    response = agent_client.post(url, {"to": "closed", "version": made.version})
    assert response.status_code == 409
    assert "cannot become closed" in response.content.decode()


def test_close_a_fulfilled_request(agent_client, agent, requester, laptop):
    from requests_app.services import request_fulfil

    made = order(laptop, requester)
    made = request_fulfil(request_id=made.id, actor=agent, note="Done")
    agent_client.post(reverse("agent:request_transition", kwargs={"number": made.number}),
                      {"to": "closed", "version": made.version})
    made.refresh_from_db()
    assert made.status == Status.CLOSED and made.closed_at is not None


def test_a_stale_version_is_409_naming_who_changed_it_and_nothing_is_saved(agent_client, make_user, requester,
                                                                           laptop):
    colleague = make_user("agent", username="carl", first_name="Carl", last_name="Colleague",
                          teams=["Service Desk"])
    made = order(laptop, requester)
    seen = made.version
    request_assignee_set(request_id=made.id, actor=colleague, assignee=colleague)
    response = agent_client.post(reverse("agent:request_transition", kwargs={"number": made.number}),
                                 {"to": "fulfilled", "note": "Handed over", "version": seen})
    assert response.status_code == 409
    html = response.content.decode()
    assert "Not saved: someone else changed this request." in html and "Carl Colleague" in html
    assert 'data-testid="reload-link"' in html
    assert ServiceRequest.objects.get(id=made.id).status == Status.IN_FULFILMENT
    stale_assign = agent_client.post(reverse("agent:request_assign", kwargs={"number": made.number}),
                                     {"assignee": "agnes", "version": seen})
    assert stale_assign.status_code == 409
    assert ServiceRequest.objects.get(id=made.id).assignee == colleague


def test_a_reply_mails_the_requester_and_a_note_stays_internal_with_its_attachment(agent_client, requester, laptop):
    made = order(laptop, requester)
    url = reverse("agent:request_comment", kwargs={"number": made.number})
    before = OutboxMessage.objects.filter(payload__template="request_comment").count()
    agent_client.post(url, {"body": "It ships tomorrow"})
    agent_client.post(url, {"body": "Order ref 77", "internal": "on",
                            "attachment": SimpleUploadedFile("po.txt", b"po", content_type="text/plain")})
    reply = TimelineEntry.objects.get(object_id=made.id, body="It ships tomorrow")
    note = TimelineEntry.objects.get(object_id=made.id, body="Order ref 77")
    assert reply.kind == "comment" and not reply.internal
    assert note.kind == "note" and note.internal
    attachment = Attachment.objects.get(filename="po.txt")
    assert attachment.internal and attachment.entry_id == note.id
    mails = OutboxMessage.objects.filter(payload__template="request_comment")
    assert mails.count() == before + 1
    assert mails.last().payload["to"] == [requester.email]
    assert mails.last().payload["context"]["audience"] == "requester"


def test_a_requester_reply_mails_the_team_with_a_link_to_the_agent_page(requester, agent, laptop):
    from servicedesk.notifications import email_render_and_send

    made = order(laptop, requester)
    request_comment_add(request=made, author=requester, body="Any news?")
    mail = OutboxMessage.objects.filter(payload__template="request_comment").last()
    assert mail.payload["context"]["audience"] == "agent"
    assert agent.email in mail.payload["to"]
    from django.core import mail as outbox

    email_render_and_send(**{k: mail.payload[k] for k in ("template", "to", "context")})
    assert f"/agent/requests/{made.number}/" in outbox.outbox[-1].body


# --- links and search ---------------------------------------------------------------------------------------


def test_an_agent_opening_a_requests_portal_link_lands_on_the_agent_page(agent_client, requester, laptop):
    made = order(laptop, requester)
    response = agent_client.get(reverse("portal:request", kwargs={"number": made.number}))
    assert response.status_code == 302
    assert response["Location"] == reverse("agent:request", kwargs={"number": made.number})


def test_an_agent_still_sees_their_own_request_on_the_portal(agent_client, agent, laptop):
    made = order(laptop, agent)
    assert agent_client.get(reverse("portal:request", kwargs={"number": made.number})).status_code == 200


def test_a_request_number_finds_the_agent_page_for_agents_and_the_portal_for_its_requester(
        agent, requester, other_requester, laptop):
    made = order(laptop, requester)
    assert find_number(agent, made.number.lower()) == f"/agent/requests/{made.number}/"
    assert find_number(requester, made.number) == f"/portal/requests/{made.number}/"
    # Another's request is as unknown as a missing one.
    assert find_number(other_requester, made.number) is None
    assert plugin.number_of("req1042") == "REQ0001042"
    assert plugin.number_of("1042") is None


def test_text_search_matches_title_and_item_name_for_agents_and_only_ones_own_for_requesters(
        agent, requester, other_requester, laptop, network_item):
    laptop_order = order(laptop, requester)
    vpn_order = order(network_item, other_requester)
    agent_rows = plugin._search(agent, "laptop", 10).rows
    assert [r.number for r in agent_rows] == [laptop_order.number]
    assert agent_rows[0].url == f"/agent/requests/{laptop_order.number}/"
    assert [r.number for r in plugin._search(agent, "vpn access", 10).rows] == [vpn_order.number]
    assert plugin._search(requester, "vpn", 10).rows == []
    own = plugin._search(requester, "laptop", 10).rows
    assert [r.url for r in own] == [f"/portal/requests/{laptop_order.number}/"]


def test_global_search_page_jumps_to_the_request(agent_client, requester, laptop):
    made = order(laptop, requester)
    response = agent_client.get(reverse("search"), {"q": made.number})
    assert response.status_code == 302 and response["Location"] == f"/agent/requests/{made.number}/"


def test_sla_escalation_mail_links_to_the_agent_page(requester, laptop):
    from requests_app.sla import RequestSlaAdapter

    made = order(laptop, requester)
    assert RequestSlaAdapter().url(made) == f"/agent/requests/{made.number}/"


def test_assigning_a_colleague_mails_them_a_link_to_the_agent_page_and_assigning_oneself_mails_nobody(
        agent, make_user, requester, laptop):
    from django.core import mail as outbox

    from servicedesk.notifications import email_render_and_send

    colleague = make_user("agent", username="carl", teams=["Service Desk"])
    made = order(laptop, requester)
    request_assignee_set(request_id=made.id, actor=agent, assignee=agent)
    assert not OutboxMessage.objects.filter(payload__template="request_assigned").exists()
    request_assignee_set(request_id=made.id, actor=agent, assignee=colleague)
    mail = OutboxMessage.objects.get(payload__template="request_assigned")
    assert mail.payload["to"] == [colleague.email]
    assert mail.payload["thread"]["internal"] is True
    email_render_and_send(**{k: mail.payload[k] for k in ("template", "to", "context", "thread")})
    sent = outbox.outbox[-1]
    assert sent.subject == f"[{made.number}] Assigned to you: New laptop"  # internal mail keeps its event subject
    assert "Agnes Agent assigned" in sent.body and f"/agent/requests/{made.number}/" in sent.body


def test_asking_for_the_current_assignee_again_changes_nothing(agent, requester, laptop):
    made = order(laptop, requester)
    once = request_assignee_set(request_id=made.id, actor=agent, assignee=agent)
    again = request_assignee_set(request_id=made.id, actor=agent, assignee=agent)
    assert again.version == once.version
    assert TimelineEntry.objects.filter(object_id=made.id, kind="change").count() == 1


def test_a_failed_request_offers_retry_which_sends_it_back_into_fulfilment(agent_client, requester, laptop):
    made = reach(order(laptop, requester), Status.FAILED)
    page = agent_client.get(reverse("agent:request", kwargs={"number": made.number}))
    assert "retry" in [a.key for a in page.context["actions"]]
    response = agent_client.post(reverse("agent:request_transition", kwargs={"number": made.number}),
                                 {"to": "in_fulfilment", "version": made.version})
    assert response.status_code == 302
    made.refresh_from_db()
    assert made.status == Status.IN_FULFILMENT
    assert made.assignment_group == laptop.fulfilment_team


def test_the_global_search_page_lists_matching_requests_with_links_to_the_agent_page(agent_client, requester,
                                                                                     laptop):
    made = order(laptop, requester)
    response = agent_client.get(reverse("search"), {"q": "laptop"})
    assert response.status_code == 200
    assert f'href="/agent/requests/{made.number}/"' in response.content.decode()


def test_the_agent_page_shows_the_approval_chain(agent_client, requester, network_item):
    made = order_needing_approval(network_item, requester)
    page = agent_client.get(reverse("agent:request", kwargs={"number": made.number}))
    html = page.content.decode()
    assert 'data-testid="approval-chain"' in html
    assert 'data-testid="chain-approval" data-state="pending"' in html
