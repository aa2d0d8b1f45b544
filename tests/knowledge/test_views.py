"""Portal pages of the knowledge base, its admin, its registration with the kernel and its demo data."""

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from knowledge.models import Article, ArticleVersion, Vote
from servicedesk.registry import registry

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_it_plugs_in_through_the_registry():
    assert "kb" in [t.key for t in registry.tiles]
    assert "knowledge" in [p.key for p in registry.providers]
    assert "kb/articles" in [r.prefix for r in registry.routes]
    assert "knowledge" in [s.app for s in registry.demo_steps()]


def test_the_portal_home_shows_the_knowledge_base_tile(client, requester):
    client.force_login(requester)
    body = client.get("/portal/").content.decode()
    assert 'data-testid="kb-button"' in body and 'href="/portal/kb/"' in body


def test_the_index_lists_and_searches_what_the_person_may_read(client, article_factory, requester):
    article_factory(title="Connect to the VPN", body="Open the client.")
    article_factory(title="Add a printer", body="Follow-me printing.")
    article_factory(title="VPN failover", audience="agents")
    client.force_login(requester)
    listing = client.get("/portal/kb/").content.decode()
    assert re.findall(r'data-slug="([^"]+)"', listing) == ["add-a-printer", "connect-to-the-vpn"]
    found = client.get("/portal/kb/", {"q": "vpn"}).content.decode()
    assert re.findall(r'data-slug="([^"]+)"', found) == ["connect-to-the-vpn"]
    nothing = client.get("/portal/kb/", {"q": "zebra"}).content.decode()
    assert 'data-testid="kb-empty"' in nothing


@pytest.mark.parametrize("rows", [3, 30])
def test_the_index_runs_a_constant_number_of_queries(client, article_factory, requester, rows,
                                                     django_assert_max_num_queries):
    for n in range(rows):
        article_factory(title=f"Wi-Fi {n}")
    client.force_login(requester)
    with django_assert_max_num_queries(8):
        response = client.get("/portal/kb/", {"q": "wi-fi"})
    assert response.content.decode().count('data-testid="kb-item"') == rows


def test_the_article_page_renders_counts_a_view_and_takes_one_vote(client, article_factory, requester):
    article = article_factory(title="Reset your password", body="1. Go to **Forgot password**\n")
    client.force_login(requester)
    page = client.get(f"/portal/kb/{article.slug}/").content.decode()
    assert "<li>Go to <strong>Forgot password</strong></li>" in page
    assert 'data-testid="kb-vote-yes"' in page
    assert Article.objects.get(id=article.id).view_count == 1
    assert client.get(f"/portal/kb/{article.slug}/vote/").status_code == 405
    response = client.post(f"/portal/kb/{article.slug}/vote/", {"helpful": "yes"}, follow=True)
    assert "Thank you for your feedback." in response.content.decode()
    assert 'data-testid="kb-voted"' in response.content.decode()
    client.post(f"/portal/kb/{article.slug}/vote/", {"helpful": "no"})
    article.refresh_from_db()
    assert (article.helpful_count, article.not_helpful_count) == (1, 0)
    assert Vote.objects.filter(article=article, user=requester).count() == 1


def test_hidden_articles_are_404_in_the_portal(client, article_factory, requester, agent):
    draft = article_factory(title="Draft", status="draft")
    client.force_login(requester)
    assert client.get(f"/portal/kb/{draft.slug}/").status_code == 404
    assert client.post(f"/portal/kb/{draft.slug}/vote/", {"helpful": "yes"}).status_code == 404
    client.force_login(agent)
    assert b"Draft" in client.get(f"/portal/kb/{draft.slug}/").content


def test_templates_carry_no_inline_script_or_style():
    for path in (ROOT / "templates" / "knowledge").glob("*.html"):
        text = path.read_text()
        assert "<script" not in text and "style=" not in text and "<style" not in text, path


def test_admin_writes_through_the_services_and_shows_versions_read_only(admin_client, admin_user, category):
    response = admin_client.post("/admin/knowledge/article/add/", {
        "title": "Printer jammed", "slug": "printer-jammed", "category": category.id, "audience": "public",
        "body": "Open the **tray**.", "services": [], "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    article = Article.objects.get(slug="printer-jammed")
    assert article.body_html == "<p>Open the <strong>tray</strong>.</p>\n" and article.author == admin_user
    admin_client.post(f"/admin/knowledge/article/{article.id}/change/", {
        "title": "Printer jammed", "slug": "printer-jammed", "category": category.id, "audience": "public",
        "body": "Open tray two.", "services": [], "versions-TOTAL_FORMS": "1", "versions-INITIAL_FORMS": "1",
    })
    assert list(ArticleVersion.objects.filter(article=article).values_list("number", flat=True)) == [2, 1]
    page = admin_client.get(f"/admin/knowledge/article/{article.id}/change/").content.decode()
    assert "Open tray two." in page and 'name="versions-0-body"' not in page
    admin_client.post("/admin/knowledge/article/", {"action": "publish", "_selected_action": [article.id]})
    assert Article.objects.get(id=article.id).status == "published"


def test_the_demo_step_adds_published_articles_once(db):
    call_command("seed_demo", stdout=StringIO())
    count = Article.objects.filter(status="published").count()
    assert count >= 8
    call_command("seed_demo", stdout=StringIO())
    assert Article.objects.count() == count
    assert Article.objects.filter(slug="connect-to-the-vpn", services__name="VPN").exists()
