"""The knowledge base's cards on an incident's agent page (kernel TicketPanel): suggested articles with "Send as
reply", and "Write an article from this incident" once it is solved. The incidents app never imports
knowledge: both sides meet in servicedesk.registry."""

import re
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import services as incident_services
from knowledge.models import Article
from servicedesk.models import OutboxMessage, Service, Team, TimelineEntry
from servicedesk.registry import TicketBrief, registry
from servicedesk.roles import role_of
from servicedesk.workspace import ticket_panels

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def vpn(db):
    return Service.objects.get_or_create(name="VPN")[0]


@pytest.fixture
def vpn_incident(incident_factory, vpn):
    return incident_factory(title="VPN does not connect from home",
                            description="The client says gateway unreachable since this morning.", service=vpn)


@pytest.fixture
def resolved(vpn_incident, agent):
    incident = incident_services.incident_assign(incident_id=vpn_incident.id, actor=agent, assignee=agent,
                                                 assignment_group=Team.objects.get(name="Service Desk"))
    return incident_services.incident_resolve(
        incident_id=incident.id, actor=agent, resolution_code="fixed",
        resolution_notes="The home router blocked IPsec: switched the client to the TLS gateway.")


def suggestions(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-testid="kb-suggestion" data-id="(\d+)"', html)]


def test_the_incidents_app_never_imports_knowledge():
    for path in (ROOT / "incidents").rglob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+knowledge\b", source, re.M), path
    assert "knowledge" not in (ROOT / "templates/incidents/_incident_side.html").read_text()


def test_the_panels_and_the_incident_kind_are_registered_with_the_kernel():
    assert {"kb-suggested", "kb-write"} <= {p.key for p in registry.ticket_panels}
    assert "incident" in registry.kinds


# --- suggested articles ---------------------------------------------------------------------------------------


def test_suggested_articles_match_the_incident_and_hold_only_what_the_agent_may_read(
        agent_client, vpn_incident, article_factory):
    public = article_factory(title="Connect to the VPN from home", body="Open the client; pick the gateway.")
    internal = article_factory(title="VPN gateway failover", body="When a gateway is unreachable...",
                               audience="agents")
    article_factory(title="VPN draft not ready", body="Gateway notes.", status="draft")
    article_factory(title="Old VPN client", body="Gateway unreachable on 4.x.", status="retired")
    article_factory(title="Add a printer", body="Follow-me printing.")
    page = agent_client.get(f"/agent/incidents/{vpn_incident.number}/").content.decode()
    assert 'data-testid="kb-suggested"' in page
    assert set(suggestions(page)) == {public.id, internal.id}
    # Only an article every requester may open can be sent to one.
    sends = re.findall(r'action="/agent/kb/(\d+)/send/"', page)
    assert sends == [str(public.id)]


def test_suggestions_rank_the_best_match_first_and_say_so_when_nothing_matches(
        agent_client, incident_factory, article_factory):
    weak = article_factory(title="Printer toner", body="Replace the toner cartridge when the printer asks.")
    strong = article_factory(title="Printer paper jam", body="Open the printer tray and remove the jammed paper.")
    jammed = incident_factory(title="Printer paper jam on floor 3", description="Paper stuck in the tray.")
    page = agent_client.get(f"/agent/incidents/{jammed.number}/").content.decode()
    assert suggestions(page) == [strong.id, weak.id]
    lonely = incident_factory(title="Zebra crossing", description="")
    page = agent_client.get(f"/agent/incidents/{lonely.number}/").content.decode()
    assert 'data-testid="kb-suggested-empty"' in page


def test_the_suggestions_cost_one_query_whatever_their_number(rf, agent, vpn_incident, article_factory,
                                                            django_assert_num_queries):
    for n in range(7):
        article_factory(title=f"VPN tip {n}", body="Gateway unreachable: reconnect.")
    request = rf.get("/")
    request.user = agent
    panel = next(p for p in registry.ticket_panels if p.key == "kb-suggested")
    brief = registry.kinds["incident"].brief(vpn_incident)
    role_of(agent)  # the role is read once per request (cached on the user); the page has done so already
    with django_assert_num_queries(1):
        data = panel.context(request, brief)
    assert len(data["articles"]) == 5


def test_suggestions_are_kept_for_every_agent_until_the_incident_is_reworded(
        rf, agent, make_user, vpn_incident, article_factory, settings):
    """Shared cards (TicketPanel.shared): counted by the first agent's page, read from the cache by the next
    agent's; an article published meanwhile shows once they expire or once the incident's words change."""
    settings.TICKET_PANELS_SECONDS = 300
    first = article_factory(title="Connect to the VPN from home", body="Gateway unreachable: reconnect.")
    other = make_user("agent")
    shown = {}
    for person in (agent, other):
        request = rf.get("/")
        request.user = person
        role_of(person)
        shown[person] = [data for panel, data in ticket_panels(request, "incident", vpn_incident)
                         if panel.key == "kb-suggested"]
    assert [a.id for a in shown[agent][0]["articles"]] == [first.id]
    assert [a.id for a in shown[other][0]["articles"]] == [first.id]

    later = article_factory(title="VPN gateway unreachable", body="Reconnect to the gateway.")
    request = rf.get("/")
    request.user = other
    with CaptureQueriesContext(connection) as warm:
        kept = dict((p.key, d) for p, d in ticket_panels(request, "incident", vpn_incident))
    assert [a.id for a in kept["kb-suggested"]["articles"]] == [first.id]
    assert not [q for q in warm.captured_queries if "knowledge_article" in q["sql"]]

    vpn_incident.title = "VPN gateway unreachable from home"
    vpn_incident.save(update_fields=["title"])
    reworded = dict((p.key, d) for p, d in ticket_panels(request, "incident", vpn_incident))
    assert {a.id for a in reworded["kb-suggested"]["articles"]} == {first.id, later.id}

    settings.TICKET_PANELS_SECONDS = 0
    vpn_incident.title = "VPN does not connect from home"
    vpn_incident.save(update_fields=["title"])  # the words of the first, still kept: 0 reads afresh
    fresh = dict((p.key, d) for p, d in ticket_panels(request, "incident", vpn_incident))
    assert {a.id for a in fresh["kb-suggested"]["articles"]} == {first.id, later.id}


def test_send_as_reply_posts_a_public_reply_with_the_title_and_portal_link(
        agent_client, agent, vpn_incident, article_factory, settings):
    settings.SITE_URL = "https://help.example.com"
    article = article_factory(title="Connect to the VPN from home", body="Gateway steps.")
    response = agent_client.post(f"/agent/kb/{article.id}/send/", {"kind": "incident", "number": vpn_incident.number})
    assert response.status_code == 302 and response.url == f"/agent/incidents/{vpn_incident.number}/"
    entry = TimelineEntry.objects.filter(object_id=vpn_incident.id, kind="comment").get()
    assert entry.internal is False and entry.author == agent
    assert "Connect to the VPN from home" in entry.body
    assert f"https://help.example.com/portal/kb/{article.slug}/" in entry.body
    # The same reply as the reply box: the requester is mailed through the outbox.
    mails = OutboxMessage.objects.filter(handler="email.send", payload__template="incident_comment")
    assert [m.payload["to"] for m in mails] == [[vpn_incident.requester.email]]
    # The requester sees it on the incident's portal page.
    from django.test import Client

    portal = Client()
    portal.force_login(vpn_incident.requester)
    page = portal.get(f"/portal/incidents/{vpn_incident.number}/").content.decode()
    assert f'<a href="https://help.example.com/portal/kb/{article.slug}/"' in page  # a link to click


def test_send_as_reply_refuses_an_article_the_requester_could_not_open(
        agent_client, vpn_incident, article_factory):
    internal = article_factory(title="VPN gateway failover", audience="agents")
    draft = article_factory(title="VPN draft", status="draft")
    for article in (internal, draft):
        response = agent_client.post(f"/agent/kb/{article.id}/send/", {"kind": "incident",
                                                                       "number": vpn_incident.number})
        assert response.status_code == 302
    assert not TimelineEntry.objects.filter(object_id=vpn_incident.id, kind="comment").exists()


def test_send_as_reply_is_404_for_a_ticket_that_does_not_exist(agent_client, article_factory):
    article = article_factory()
    assert agent_client.post(f"/agent/kb/{article.id}/send/", {"kind": "incident",
                                                               "number": "INC9999999"}).status_code == 404
    assert agent_client.post(f"/agent/kb/{article.id}/send/", {"kind": "spaceship",
                                                               "number": "INC9999999"}).status_code == 404


# --- write an article from the incident -----------------------------------------------------------------------


def test_write_an_article_is_offered_only_once_the_incident_is_solved(agent_client, vpn_incident, resolved):
    assert vpn_incident.status == "new"
    brief = registry.kinds["incident"].brief(resolved)
    assert isinstance(brief, TicketBrief) and brief.solved
    page = agent_client.get(f"/agent/incidents/{resolved.number}/").content.decode()
    assert 'data-testid="kb-write-from"' in page
    assert f"/agent/kb/new/?from_kind=incident&amp;from={resolved.number}" in page


def test_an_open_incident_has_no_write_panel(rf, agent, vpn_incident):
    request = rf.get("/")
    request.user = agent
    keys = [panel.key for panel, _ in ticket_panels(request, "incident", vpn_incident)]
    assert [key for key in keys if key.startswith("kb-")] == ["kb-suggested"]  # other apps add their own cards


def test_the_editor_opens_filled_in_from_the_incident_and_records_its_number(
        agent_client, agent, resolved, vpn):
    page = agent_client.get("/agent/kb/new/", {"from_kind": "incident", "from": resolved.number}).content.decode()
    assert 'value="VPN does not connect from home"' in page
    assert "## Problem\n\nThe client says gateway unreachable since this morning." in page
    assert "## Solution\n\nThe home router blocked IPsec: switched the client to the TLS gateway." in page
    assert f'name="source_ticket" value="{resolved.number}"' in page
    assert re.search(rf'value="{vpn.id}"[^>]*checked', page)  # the incident's service is linked
    response = agent_client.post("/agent/kb/new/", {
        "title": "VPN: gateway unreachable from home", "body": "## Problem\n\nx\n\n## Solution\n\nUse TLS.\n",
        "services": [vpn.id], "audience": "public", "source_kind": "incident", "source_ticket": resolved.number,
    })
    assert response.status_code == 302
    article = Article.objects.get()
    assert article.source_ticket == resolved.number and article.status == "draft"
    assert list(article.services.all()) == [vpn]
    assert article.versions.get().note == f"Written from {resolved.number}"
    # The incident's panel now lists the article written from it.
    page = agent_client.get(f"/agent/incidents/{resolved.number}/").content.decode()
    assert 'data-testid="kb-written"' in page and "VPN: gateway unreachable from home" in page


def test_the_editor_ignores_a_ticket_the_agent_cannot_open(agent_client):
    page = agent_client.get("/agent/kb/new/", {"from_kind": "incident", "from": "INC9999999"})
    assert page.status_code == 200
    assert 'name="source_ticket" value="INC' not in page.content.decode()


def test_links_in_replies_are_clickable_and_everything_else_stays_escaped(agent_client, agent, vpn_incident):
    incident_services.incident_comment_add(incident=vpn_incident, author=agent,
                                           body="<script>alert(1)</script> read https://help.example.com/portal/kb/x/")
    page = agent_client.get(f"/agent/incidents/{vpn_incident.number}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert '<a href="https://help.example.com/portal/kb/x/" rel="nofollow">' in page
