"""The knowledge base in a real browser: a requester opens it from the portal, searches, reads an article and
votes it helpful. Fails on any console message or CSP violation (tests/e2e/conftest.py)."""

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_requester_searches_the_knowledge_base_reads_an_article_and_votes_helpful(page, live_server):
    from knowledge.demo import seed_articles
    from knowledge.models import Article, Vote

    provision_user("agent", "agent", name="Aaron Agent")
    rita = provision_user("rita", "requester", name="Rita Quester")
    seed_articles()

    login(page, live_server, "rita")
    page.get_by_test_id("kb-button").click()
    expect(page).to_have_url(f"{live_server.url}/portal/kb/")
    expect(page.get_by_test_id("kb-item")).to_have_count(7)  # the eighth is for agents only
    page.get_by_label("Search the knowledge base").fill("vpn")
    page.get_by_test_id("kb-search").get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{live_server.url}/portal/kb/?q=vpn")
    items = page.get_by_test_id("kb-item")
    expect(items.first).to_contain_text("Connect to the VPN from home")  # the word in the title ranks first
    expect(page.get_by_text("VPN gateway failover")).to_have_count(0)
    screenshot(page, "kb-search-vpn")

    items.first.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Connect to the VPN from home")
    body = page.get_by_test_id("kb-body")
    expect(body.get_by_role("table")).to_be_visible()
    expect(body.get_by_role("heading", name="If it does not connect")).to_be_visible()
    page.get_by_test_id("kb-vote-yes").click()
    expect(page.get_by_text("Thank you for your feedback.")).to_be_visible()
    expect(page.get_by_test_id("kb-voted")).to_contain_text("you found this helpful")
    expect(page.get_by_test_id("kb-vote-yes")).to_have_count(0)
    screenshot(page, "kb-article-voted")

    article = Article.objects.get(slug="connect-to-the-vpn")
    assert (article.helpful_count, article.not_helpful_count, article.view_count) == (1, 0, 2)
    assert Vote.objects.get(article=article).user == rita
