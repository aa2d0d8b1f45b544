"""A ticket's agent page shows the latest TIMELINE_RECENT_ENTRIES timeline entries and "Show N earlier entries"
(servicedesk.selectors.timeline_recent): a chatty ticket costs what a quiet one does, and nothing is lost, as the
link opens the whole timeline."""

import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from problems import services as problem_services
from requests_app.services import request_submit
from servicedesk.models import TimelineEntry
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db


def notes(ticket, author, n: int) -> None:
    """`n` internal notes, a second apart from now on, the newest saying "note n-1"."""
    start = timezone.now()  # after the entries the ticket was created with
    TimelineEntry.objects.bulk_create(TimelineEntry(
        content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk, kind="note", internal=True,
        author=author, body=f"note {i}", created_at=start + timezone.timedelta(seconds=i)) for i in range(n))


def shown(html: str) -> list[str]:
    return re.findall(r"<p>(note \d+)</p>", html)


@pytest.fixture(params=["incident", "request", "problem"])
def ticket_page(request, incident_factory, requester, agent):
    if request.param == "incident":
        ticket = incident_factory()
        return ticket, f"/agent/incidents/{ticket.number}/"
    if request.param == "request":
        ticket = request_submit(item=item("Headset"), answers={}, requester=requester, created_by=requester)
        return ticket, f"/agent/requests/{ticket.number}/"
    ticket = problem_services.problem_create(title="VPN drops every hour", created_by=agent)
    return ticket, f"/agent/problems/{ticket.number}/"


def test_the_page_shows_the_latest_entries_and_opens_the_rest_on_request(agent_client, agent, ticket_page, settings):
    settings.TIMELINE_RECENT_ENTRIES = 5
    ticket, url = ticket_page
    notes(ticket, agent, 12)
    page = agent_client.get(url).content.decode()
    assert shown(page) == [f"note {i}" for i in range(7, 12)]  # the latest five, oldest first
    earlier = TimelineEntry.objects.filter(object_id=ticket.pk,
                                           content_type=ContentType.objects.get_for_model(ticket)).count() - 5
    link = re.search(r'data-testid="timeline-earlier".*?<a href="([^"]+)">Show (\d+) earlier entries</a>', page, re.S)
    assert link and int(link.group(2)) == earlier and link.group(1) == f"{url}?timeline=all#timeline"
    everything = agent_client.get(f"{url}?timeline=all").content.decode()
    assert shown(everything) == [f"note {i}" for i in range(12)]
    assert 'data-testid="timeline-earlier"' not in everything


def test_a_long_timeline_costs_what_a_short_one_does(agent_client, agent, incident_factory, settings):
    settings.TIMELINE_RECENT_ENTRIES = 5
    quiet, chatty = incident_factory(), incident_factory()
    notes(quiet, agent, 6)  # one left out: the count is asked, as for the chatty one
    notes(chatty, agent, 300)
    agent_client.get(f"/agent/incidents/{quiet.number}/")  # warm: sessions, caches
    counted, sizes = {}, {}
    for ticket in (quiet, chatty):
        with CaptureQueriesContext(connection) as queries:
            page = agent_client.get(f"/agent/incidents/{ticket.number}/").content.decode()
        counted[ticket.number], sizes[ticket.number] = len(queries), len(page)
        assert len(shown(page)) == 5
    assert counted[quiet.number] == counted[chatty.number]
    assert abs(sizes[quiet.number] - sizes[chatty.number]) < 100  # the same page, but for a few digits


def test_no_link_when_everything_fits(agent_client, agent, incident_factory):
    ticket = incident_factory()
    notes(ticket, agent, 3)
    page = agent_client.get(f"/agent/incidents/{ticket.number}/").content.decode()
    assert shown(page) == ["note 0", "note 1", "note 2"]
    assert 'data-testid="timeline-earlier"' not in page
