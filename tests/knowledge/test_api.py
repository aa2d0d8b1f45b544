"""/api/v1/kb/articles/: read, search ranked, vote once; permissions in the query."""

import pytest

from knowledge.models import Article, Vote
from servicedesk.roles import role_of

pytestmark = pytest.mark.django_db


def test_it_needs_a_signed_in_caller(api_client, article_factory):
    article_factory()
    assert api_client.get("/api/v1/kb/articles/").status_code == 401


def test_requesters_list_published_public_articles_and_agents_more(client_for, article_factory, requester, agent):
    article_factory(title="Public")
    article_factory(title="Agents", audience="agents")
    article_factory(title="Draft", status="draft")
    article_factory(title="Retired", status="retired")
    assert [a["title"] for a in client_for(requester).get("/api/v1/kb/articles/").json()["results"]] == ["Public"]
    assert sorted(a["title"] for a in client_for(agent).get("/api/v1/kb/articles/").json()["results"]) \
        == ["Agents", "Draft", "Public"]


def test_q_ranks_the_list(client_for, article_factory, requester):
    article_factory(title="Home working", body="Use the VPN.")
    article_factory(title="VPN", body="Connect.")
    results = client_for(requester).get("/api/v1/kb/articles/", {"q": "vpn"}).json()["results"]
    assert [a["title"] for a in results] == ["VPN", "Home working"]
    assert results[0]["rank"] > results[1]["rank"] > 0
    listed = client_for(requester).get("/api/v1/kb/articles/").json()["results"]
    assert {a["rank"] for a in listed} == {None}


def test_the_detail_returns_sanitised_html_and_counts_a_view(client_for, article_factory, requester):
    article = article_factory(title="VPN", body="**Sign in** <script>alert(1)</script>")
    api = client_for(requester)
    first = api.get(f"/api/v1/kb/articles/{article.slug}/").json()
    second = api.get(f"/api/v1/kb/articles/{article.slug}/").json()
    assert first["html"] == "<p><strong>Sign in</strong> </p>\n"
    assert (first["view_count"], second["view_count"]) == (1, 2)
    assert Article.objects.get(id=article.id).view_count == 2
    assert first["my_vote"] is None and first["number"] == article.number


def test_hidden_articles_answer_404(client_for, article_factory, requester):
    draft = article_factory(title="Draft", status="draft")
    agents_only = article_factory(title="Agents", audience="agents")
    api = client_for(requester)
    for article in (draft, agents_only):
        assert api.get(f"/api/v1/kb/articles/{article.slug}/").status_code == 404
        assert api.post(f"/api/v1/kb/articles/{article.slug}/vote/", {"helpful": True}, format="json") \
            .status_code == 404
    assert Article.objects.filter(view_count__gt=0).count() == 0


def test_a_vote_counts_once_and_bad_input_names_the_field(client_for, article_factory, requester):
    article = article_factory()
    api = client_for(requester)
    url = f"/api/v1/kb/articles/{article.slug}/vote/"
    missing = api.post(url, {}, format="json")
    assert missing.status_code == 400 and "helpful" in missing.json()
    assert api.post(url, {"helpful": "maybe"}, format="json").status_code == 400
    voted = api.post(url, {"helpful": True}, format="json")
    assert voted.status_code == 201 and voted.json()["helpful_count"] == 1
    again = api.post(url, {"helpful": False}, format="json")
    assert again.status_code == 409 and "already voted" in again.json()["detail"]
    assert Vote.objects.get(article=article).helpful is True
    assert api.get(f"/api/v1/kb/articles/{article.slug}/").json()["my_vote"] is True
    article.refresh_from_db()
    assert (article.helpful_count, article.not_helpful_count) == (1, 0)


@pytest.mark.parametrize("rows", [5, 60])
@pytest.mark.parametrize("q", ["", "printer"])
def test_the_list_runs_a_constant_number_of_queries(client_for, article_factory, requester, rows, q,
                                                    django_assert_num_queries):
    from servicedesk.models import Service

    printing, laptops = Service.objects.create(name="Printing"), Service.objects.create(name="Laptops")
    for n in range(rows):
        article_factory(title=f"Printer {n}", body="Printer toner", services=[printing, laptops])
    api = client_for(requester)
    role_of(requester)  # the role is kept in the cache (servicedesk.roles), as after the person's first request
    # token auth (token, user), the count, the page, the services of the page's articles.
    with django_assert_num_queries(5):
        response = api.get("/api/v1/kb/articles/", {"q": q, "page_size": rows})
    results = response.json()["results"]
    assert len(results) == rows and results[0]["services"] == ["Laptops", "Printing"]
