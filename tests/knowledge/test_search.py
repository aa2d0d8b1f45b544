"""Knowledge search: PostgreSQL full text over a stored, weighted tsvector, ranked; visibility in the query."""

import pytest
from django.db import connection

from knowledge.models import Article
from knowledge.selectors import articles_for_list
from knowledge.services import article_update
from servicedesk.workspace import find_number, search_everything

pytestmark = pytest.mark.django_db


def titles(user, q):
    return [a.title for a in articles_for_list(user, q)]


def test_the_search_document_is_stored_and_kept_on_save_behind_a_gin_index(article_factory, agent):
    article = article_factory(title="Printer jammed", body="Open tray two.")
    stored = Article.objects.values_list("search_vector", flat=True).get(id=article.id)
    assert "'printer':1A" in stored and "'tray':4B" in stored
    article_update(article_id=article.id, actor=agent, body="Call the toner hotline.")
    stored = Article.objects.values_list("search_vector", flat=True).get(id=article.id)
    assert "tray" not in stored and "'hotlin':6B" in stored
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'kb_article_search_gin'")
        assert "USING gin (search_vector)" in cursor.fetchone()[0]


def test_a_word_in_the_title_ranks_above_the_same_word_in_the_body(article_factory, requester):
    article_factory(title="Working from home", body="Start the VPN client first, then the VPN connects.")
    article_factory(title="VPN connection drops", body="Check your home router.")
    article_factory(title="Printer", body="Nothing about networks.")
    assert titles(requester, "vpn") == ["VPN connection drops", "Working from home"]
    ranks = [a.rank for a in articles_for_list(requester, "vpn")]
    assert ranks[0] > ranks[1] > 0


def test_it_stems_and_reads_web_search_syntax(article_factory, requester):
    article_factory(title="Printing from a laptop", body="Printers on every floor.")
    article_factory(title="Printer toner", body="Order toner.")
    assert set(titles(requester, "printers")) == {"Printing from a laptop", "Printer toner"}
    assert titles(requester, "printer -toner") == ["Printing from a laptop"]
    assert titles(requester, '"order toner"') == ["Printer toner"]
    assert titles(requester, "the") == []


def test_requesters_find_only_published_articles_for_everyone(article_factory, requester, agent):
    article_factory(title="VPN for everyone")
    article_factory(title="VPN gateway failover", audience="agents")
    article_factory(title="VPN draft", status="draft")
    article_factory(title="VPN retired", status="retired")
    assert titles(requester, "vpn") == ["VPN for everyone"]
    assert sorted(titles(agent, "vpn")) == ["VPN draft", "VPN for everyone", "VPN gateway failover"]
    # and without words: the whole list, under the same rules
    assert titles(requester, "") == ["VPN for everyone"]
    assert len(titles(agent, "")) == 3


def test_global_search_finds_articles_for_each_role(article_factory, requester, agent):
    public = article_factory(title="Reset your password", body="Forgot password?")
    hidden = article_factory(title="Password vault for agents", audience="agents")
    mine = {g.key: [r.title for r in g.results.rows] for g in search_everything(requester, "password")}
    theirs = {g.key: [r.title for r in g.results.rows] for g in search_everything(agent, "password")}
    assert mine["knowledge"] == ["Reset your password"]
    assert sorted(theirs["knowledge"]) == ["Password vault for agents", "Reset your password"]
    assert find_number(requester, public.number) == f"/portal/kb/{public.slug}/"
    assert find_number(requester, hidden.number) is None
    assert find_number(agent, hidden.number.lower()) == f"/portal/kb/{hidden.slug}/"


def test_the_search_page_lists_articles(client, article_factory, requester):
    article_factory(title="Set up e-mail on your phone", body="Install Outlook.")
    client.force_login(requester)
    response = client.get("/search/", {"q": "outlook"})
    assert response.status_code == 200
    assert b'data-kind="knowledge"' in response.content
    assert b"Set up e-mail on your phone" in response.content
