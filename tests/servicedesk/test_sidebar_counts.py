"""The sidebar's counts kept for SIDEBAR_COUNTS_SECONDS (servicedesk/sidebar.py), in Redis: the desk's once for
every agent, "mine" and "team" per person. The suite turns the keeping off (tests/conftest.py); these tests turn
it on (each test starts with an empty cache: tests/conftest.py)."""

import re
import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from servicedesk.sidebar import _cache_key

pytestmark = pytest.mark.django_db

COUNT = re.compile(r'data-testid="nav-queue-(\w+)"(?:(?!</a>).)*?data-testid="nav-count">(\d+)<', re.S)


def counts(client) -> dict:
    return dict(COUNT.findall(client.get("/agent/").content.decode()))


def count_queries(client, url="/agent/") -> list[str]:
    """The SQL of the aggregate queries (the sidebar's counts) one page ran."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"] and "FILTER" in q["sql"]]


@pytest.fixture
def keeping(settings):
    settings.SIDEBAR_COUNTS_SECONDS = 30
    return settings


def test_the_counts_are_counted_once_then_read_from_the_cache(keeping, agent, agent_client, incident_factory):
    incident_factory()
    assert counts(agent_client)["all"] == "1"
    stored = cache.get(_cache_key(agent.pk))  # in Redis: every web process reads the same entries
    assert {"incidents", "requests", "problems", "approvals"} <= set(stored)
    assert stored["incidents"][0] == {"mine": 0, "team": 0}
    assert cache.get("sidebar-counts:shared:incidents")[0]["all"] == 1
    assert cache.get("sidebar-counts:shared:monitoring") is not None
    assert count_queries(agent_client) == []  # the next page counts nothing
    # Someone else's change shows once the counts are older than SIDEBAR_COUNTS_SECONDS.
    incident_factory(title="The VPN drops")
    assert counts(agent_client)["all"] == "1"
    keeping.SIDEBAR_COUNTS_SECONDS = 1
    time.sleep(1.1)
    assert counts(agent_client)["all"] == "2"


def test_ones_own_change_shows_on_the_next_page(keeping, agent, agent_client, incident_factory):
    incident = incident_factory()
    assert counts(agent_client)["mine"] == "0"
    assert count_queries(agent_client) == []
    response = agent_client.post(f"/agent/incidents/{incident.number}/edit/",
                                 {"field": "assignee", "value": agent.username, "version": incident.version})
    assert response.status_code in (200, 302), response.content[:300]
    assert cache.get(_cache_key(agent.pk)) is None  # the POST dropped them
    assert counts(agent_client)["mine"] == "1"


def test_each_person_has_their_own_counts(keeping, agent, agent_client, make_user, client, incident_factory):
    from django.test import Client

    from incidents.services.lifecycle import incident_assign

    incident = incident_factory()
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    assert counts(agent_client)["mine"] == "1"
    other = make_user("agent", username="otto", teams=["Service Desk"])
    other_client = Client()
    other_client.force_login(other)
    assert counts(other_client)["mine"] == "0"
    assert counts(agent_client)["mine"] == "1"


def test_the_desks_counts_are_counted_once_for_every_agent(keeping, agent_client, make_user, incident_factory):
    from django.test import Client

    incident_factory()
    assert counts(agent_client)["all"] == "1"
    other = make_user("agent", username="otto", teams=["Service Desk"])
    other_client = Client()
    other_client.force_login(other)
    counted = count_queries(other_client)  # only this person's own counts: "mine" and "team" of each practice
    assert counted and all('"assignee_id" = ' in sql and "COUNT(" in sql for sql in counted), counted
    assert not any('COUNT("incidents_incident"."id") AS "all"' in sql for sql in counted)
    assert counts(other_client) == counts(agent_client)


def test_a_page_counts_each_practice_at_most_once(keeping, agent_client, incident_factory):
    """The dashboard's tiles and the sidebar share one count per page, cached or not."""
    incident_factory()
    first = count_queries(agent_client)
    assert len(first) == len(set(first)) and any("incidents_incident" in sql for sql in first)


def test_zero_counts_on_every_page(settings, agent_client, incident_factory):
    settings.SIDEBAR_COUNTS_SECONDS = 0
    incident_factory()
    assert counts(agent_client)["all"] == "1"
    assert any("incidents_incident" in sql for sql in count_queries(agent_client))
    incident_factory(title="The VPN drops")
    assert counts(agent_client)["all"] == "2"
