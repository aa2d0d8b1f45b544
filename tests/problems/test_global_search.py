"""Global search: agents find problems by number and by words; requesters find nothing, not even by number."""

import pytest

from problems import services
from servicedesk import workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def known(agent):
    problem = services.problem_create(title="VPN drops every hour", created_by=agent)
    services.problem_update(problem_id=problem.id, actor=agent, workaround="Reconnect the tunnel client")
    return problem


def test_agents_find_problems_by_words_ranked_and_by_number(agent, known):
    groups = {group.key: group for group in workspace.search_everything(agent, "tunnel")}
    rows = groups["problems"].results.rows
    assert [row.number for row in rows] == [known.number]
    assert rows[0].kind == "problem" and rows[0].snippet == "Reconnect the tunnel client"
    number = int(known.number[3:])
    assert workspace.find_number(agent, f"prb{number}") is not None
    assert workspace.find_number(agent, known.number).endswith(f"{known.number}/")


def test_the_agents_search_page_lists_problems(client, agent, known):
    client.force_login(agent)
    page = client.get("/search/", {"q": "vpn hour"})
    assert page.status_code == 200 and known.number in page.content.decode()
    assert client.get("/search/", {"q": known.number}).status_code == 302


def test_requesters_find_no_problem(client, requester, known):
    assert "problems" not in {group.key for group in workspace.search_everything(requester, "vpn")}
    assert workspace.find_number(requester, known.number) is None
    client.force_login(requester)
    by_number = client.get("/search/", {"q": known.number})
    assert by_number.status_code == 200  # no redirect to the problem
    by_words = client.get("/search/", {"q": "vpn hour"})
    assert by_words.status_code == 200 and known.title not in by_words.content.decode()
