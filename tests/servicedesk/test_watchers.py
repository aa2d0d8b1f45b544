"""Watchers of incidents and requests: the services (idempotent, timeline and audit), who is mailed a public
reply (the requester and the watchers, never the author) and that internal notes reach no watcher; the
"Watchers" card of both agent pages and the API, agents only."""

import pytest
from django.core import mail

from incidents.services import incident_comment_add
from requests_app.services import request_comment_add, request_submit
from servicedesk import outbox
from servicedesk.errors import InvalidInput
from servicedesk.models import AuditLog, OutboxMessage, TimelineEntry, Watcher
from servicedesk.watchers import (
    is_watcher,
    mail_may_reply,
    watcher_add,
    watcher_remove,
    watchers_emails,
)
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db


@pytest.fixture
def colleague(make_user):
    return make_user("requester", username="carol", first_name="Carol", last_name="Colleague")


@pytest.fixture
def boss(make_user):
    return make_user("manager", username="mona", first_name="Mona", last_name="Manager")


@pytest.fixture
def incident(incident_factory):
    return incident_factory()


@pytest.fixture
def service_request(requester):
    return request_submit(item=item("Headset"), answers={}, requester=requester, created_by=requester)


def sent_mail() -> list:
    """Send what is queued (as the worker does) and return the mails, dropping what was sent before."""
    mail.outbox.clear()
    for message in OutboxMessage.objects.filter(handler="email.send", state="pending").order_by("id"):
        assert outbox.outbox_process(message.id) == "done", message.last_error
    return list(mail.outbox)


def to_of(mails) -> dict[str, list]:
    """address -> the bodies mailed to it."""
    found: dict[str, list] = {}
    for message in mails:
        for address in message.to:
            found.setdefault(address, []).append(message.body)
    return found


# --- services -------------------------------------------------------------------------------------


def test_adding_a_watcher_is_idempotent_recorded_and_internal(incident, colleague, agent):
    first = watcher_add(ticket=incident, user=colleague, by=agent)
    again = watcher_add(ticket=incident, user=colleague, by=agent)
    assert first.id == again.id and Watcher.objects.count() == 1
    assert is_watcher(incident, colleague) and watchers_emails(incident) == [colleague.email]
    lines = TimelineEntry.objects.filter(object_id=incident.id, data__event="watcher_added")
    assert lines.count() == 1 and lines.get().internal
    assert AuditLog.objects.filter(action="watcher.added").count() == 1
    assert watcher_remove(ticket=incident, user=colleague, by=agent) is True
    assert watcher_remove(ticket=incident, user=colleague, by=agent) is False
    assert not is_watcher(incident, colleague)
    assert TimelineEntry.objects.filter(object_id=incident.id, data__event="watcher_removed").count() == 1


def test_the_requester_and_people_without_an_address_are_refused(incident, requester, make_user, agent):
    with pytest.raises(InvalidInput) as error:
        watcher_add(ticket=incident, user=requester, by=agent)
    assert error.value.field == "user"
    silent = make_user("requester", username="noaddress", email="")
    with pytest.raises(InvalidInput) as error:
        watcher_add(ticket=incident, user=silent, by=agent)
    assert error.value.field == "user"
    assert not Watcher.objects.exists()


def test_who_may_reply_by_mail(incident, requester, colleague, other_requester, agent):
    assert mail_may_reply(incident, requester) and mail_may_reply(incident, agent)
    assert not mail_may_reply(incident, colleague) and not mail_may_reply(incident, other_requester)
    watcher_add(ticket=incident, user=colleague, by=agent)
    assert mail_may_reply(incident, colleague)


# --- who is mailed --------------------------------------------------------------------------------


def test_an_agents_public_reply_reaches_requester_and_watchers_but_a_note_reaches_none(
        incident, requester, colleague, boss, agent):
    watcher_add(ticket=incident, user=colleague, by=agent)
    watcher_add(ticket=incident, user=boss, by=agent)
    watcher_add(ticket=incident, user=agent, by=agent)  # the author watches too: not mailed their own words
    sent_mail()
    incident_comment_add(incident=incident, author=agent, body="Secret: the vendor is late", internal=True)
    assert sent_mail() == []
    incident_comment_add(incident=incident, author=agent, body="A technician is on the way")
    mailed = to_of(sent_mail())
    assert set(mailed) == {requester.email, colleague.email, boss.email}
    assert all(len(bodies) == 1 and "A technician is on the way" in bodies[0] for bodies in mailed.values())
    assert f"/portal/incidents/{incident.number}/" in mailed[requester.email][0]
    assert f"/agent/incidents/{incident.number}/" in mailed[boss.email][0]  # an agent watcher: the workspace
    watcher_text = mailed[colleague.email][0]
    assert "Reply to this email" in watcher_text and "/portal/" not in watcher_text


def test_a_requesters_reply_reaches_the_assignee_and_the_watchers(incident_factory, requester, colleague, agent):
    incident = incident_factory(assignee=agent, assignment_group=None)
    watcher_add(ticket=incident, user=colleague, by=agent)
    sent_mail()
    incident_comment_add(incident=incident, author=requester, body="Still jammed")
    assert set(to_of(sent_mail())) == {agent.email, colleague.email}


def test_a_watchers_reply_reaches_requester_assignee_and_resumes_a_hold(incident_factory, requester, colleague,
                                                                        agent):
    from incidents.services import incident_hold, incident_transition

    incident = incident_factory(assignee=agent, assignment_group=None)
    watcher_add(ticket=incident, user=colleague, by=agent)
    incident_transition(incident_id=incident.id, to="in_progress", actor=agent)
    incident_hold(incident_id=incident.id, actor=agent, hold_reason="awaiting_caller")
    sent_mail()
    incident_comment_add(incident=incident, author=colleague, body="Alice is away; it is the tray on the left")
    incident.refresh_from_db()
    assert incident.status == "in_progress" and incident.first_responded_at is None
    assert TimelineEntry.objects.filter(object_id=incident.id, data__event="resumed",
                                        data__reason="A watcher replied").exists()
    assert set(to_of(sent_mail())) == {agent.email, requester.email}


def test_request_replies_reach_watchers_and_notes_never(service_request, requester, colleague, agent):
    watcher_add(ticket=service_request, user=colleague, by=agent)
    sent_mail()
    request_comment_add(request=service_request, author=agent, body="Internal: order from vendor B",
                        internal=True)
    assert sent_mail() == []
    request_comment_add(request=service_request, author=agent, body="Ordered, arrives Monday")
    mailed = to_of(sent_mail())
    assert set(mailed) == {requester.email, colleague.email}
    assert "Reply to this email" in mailed[colleague.email][0]
    request_comment_add(request=service_request, author=requester, body="Thanks!")
    assert colleague.email in to_of(sent_mail())


# --- the card on the agent pages --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["incident", "request"])
def test_agents_add_and_remove_watchers_on_the_ticket_page(kind, agent_client, incident, service_request,
                                                           colleague):
    ticket = incident if kind == "incident" else service_request
    page = f"/agent/{'incidents' if kind == 'incident' else 'requests'}/{ticket.number}/"
    assert 'data-testid="watchers"' in agent_client.get(page).content.decode()
    response = agent_client.post(f"/agent/watchers/{kind}/{ticket.number}/add/", {"user": "CAROL@example.com"})
    assert response.status_code == 302 and response["Location"] == page
    assert is_watcher(ticket, colleague)
    shown = agent_client.get(page).content.decode()
    assert "Carol Colleague" in shown and "watches" in shown
    response = agent_client.post(f"/agent/watchers/{kind}/{ticket.number}/add/", {"user": "nobody-here"},
                                 follow=True)
    assert "user: nobody active has the username or email address" in response.content.decode()
    agent_client.post(f"/agent/watchers/{kind}/{ticket.number}/remove/", {"user": "carol"})
    assert not is_watcher(ticket, colleague)


def test_requesters_cannot_use_the_card_and_it_needs_csrf(client, requester, incident, colleague, agent):
    client.force_login(requester)
    url = f"/agent/watchers/incident/{incident.number}/add/"
    assert client.post(url, {"user": "carol"}).status_code == 403
    assert not is_watcher(incident, colleague)
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent)
    assert strict.post(url, {"user": "carol"}).status_code == 403
    assert not is_watcher(incident, colleague)


def test_an_unknown_ticket_or_kind_is_404(agent_client):
    assert agent_client.post("/agent/watchers/incident/INC9999999/add/", {"user": "x"}).status_code == 404
    assert agent_client.post("/agent/watchers/problem/PRB0001001/add/", {"user": "x"}).status_code == 404


# --- the API ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["incidents", "requests"])
def test_the_api_lists_adds_and_removes_watchers(kind, client_for, agent, incident, service_request, colleague):
    ticket = incident if kind == "incidents" else service_request
    api = client_for(agent)
    url = f"/api/v1/{kind}/{ticket.number}/watchers/"
    assert api.get(url).json() == []
    response = api.post(url, {"user": "carol"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["username"] == "carol" and response.json()["added_by"] == agent.username
    assert api.post(url, {"user": "carol@example.com"}, format="json").status_code == 200  # already watching
    assert [w["username"] for w in api.get(url).json()] == ["carol"]
    bad = api.post(url, {"user": "nobody-here"}, format="json")
    assert bad.status_code == 400 and "user" in bad.json()
    assert api.post(url, {}, format="json").json().keys() >= {"user"}
    assert api.delete(f"{url}carol/").status_code == 204
    assert api.delete(f"{url}carol/").status_code == 404
    assert not is_watcher(ticket, colleague)


def test_the_api_refuses_requesters(client_for, requester, other_requester, incident, agent, colleague):
    watcher_add(ticket=incident, user=colleague, by=agent)
    own = client_for(requester)
    url = f"/api/v1/incidents/{incident.number}/watchers/"
    assert own.get(url).status_code == 403
    assert own.post(url, {"user": "bob"}, format="json").status_code == 403
    assert own.delete(f"{url}carol/").status_code == 403
    assert client_for(other_requester).get(url).status_code == 404  # not theirs: not even there
    assert is_watcher(incident, colleague)


def test_erasing_a_ticket_erases_its_watchers(incident, colleague, agent, admin_user):
    from servicedesk.services import ticket_erase

    watcher_add(ticket=incident, user=colleague, by=agent)
    log = ticket_erase(number=incident.number, by=admin_user, reason="Data protection request")
    assert log.changes["watchers"] == 1 and not Watcher.objects.exists()


def test_who_of_the_watchers_is_an_agent_is_read_in_one_query_whatever_their_number(
        incident, agent, boss, colleague, make_user, django_assert_num_queries):
    from django.contrib.auth import get_user_model

    from servicedesk.watchers import watcher_recipients

    root = make_user("requester", username="root")
    get_user_model().objects.filter(id=root.id).update(is_superuser=True)  # an admin by being a superuser
    people = [colleague, boss, root] + [make_user("requester", username=f"fan{n}") for n in range(5)]
    for person in people:
        watcher_add(ticket=incident, user=person, by=agent)
    with django_assert_num_queries(1):
        agents, others = watcher_recipients(incident, author=agent)
    assert sorted(agents) == sorted([boss.email, root.email])
    assert sorted(others) == sorted([colleague.email] + [f"fan{n}@example.com" for n in range(5)])
    assert watcher_recipients(incident, author=boss, exclude=(colleague.email,)) == (
        [root.email], [f"fan{n}@example.com" for n in range(5)])
