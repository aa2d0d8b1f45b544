"""The agents' knowledge-base editor in the workspace (/agent/kb/): who may use it, the list, writing, the live
preview, the stale-version refusal, publishing, retiring and the version history."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from knowledge.models import Article, ArticleVersion, Category
from servicedesk.models import AuditLog, Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def vpn(db):
    return Service.objects.get_or_create(name="VPN")[0]


def rows(response) -> list[int]:
    return [int(x) for x in re.findall(r'data-testid="kb-row" data-id="(\d+)"', response.content.decode())]


# --- who may ------------------------------------------------------------------------------------------------


def test_requesters_get_403_on_every_editor_url(client, requester, article_factory):
    article = article_factory()
    client.force_login(requester)
    for url in ["/agent/kb/", "/agent/kb/new/", f"/agent/kb/{article.id}/edit/", f"/agent/kb/{article.id}/history/"]:
        assert client.get(url).status_code == 403, url
    for url in ["/agent/kb/new/", "/agent/kb/preview/", f"/agent/kb/{article.id}/edit/",
                f"/agent/kb/{article.id}/publish/", f"/agent/kb/{article.id}/retire/", f"/agent/kb/{article.id}/send/"]:
        assert client.post(url, {"title": "Mine now", "body": "x", "audience": "public"}).status_code == 403, url
    assert Article.objects.get(id=article.id).title == "Connect to the VPN"


def test_signed_out_visitors_are_sent_to_the_login_page(client):
    response = client.get("/agent/kb/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_the_workspace_sidebar_has_a_knowledge_section(agent_client, article_factory):
    article_factory(status="draft")
    body = agent_client.get("/agent/kb/").content.decode()
    assert 'data-testid="nav-knowledge"' in body
    assert 'data-testid="nav-kb"' in body and 'href="/agent/kb/new/"' in body
    assert 'data-testid="nav-kb-drafts"' in body and 'href="/agent/kb/?status=draft"' in body
    drafts = agent_client.get("/agent/kb/", {"status": "draft"}).content.decode()
    assert re.search(r'data-testid="nav-kb-drafts" aria-current="page"', drafts)


# --- the list -------------------------------------------------------------------------------------------------


def test_agents_see_every_article_agents_only_drafts_and_retired_included(agent_client, article_factory):
    public = article_factory(title="Connect to the VPN")
    internal = article_factory(title="VPN gateway failover", audience="agents")
    draft = article_factory(title="Printer jams", status="draft")
    retired = article_factory(title="Old fax machine", status="retired")
    response = agent_client.get("/agent/kb/")
    assert response.status_code == 200
    assert set(rows(response)) == {public.id, internal.id, draft.id, retired.id}
    assert "Agents only" in response.content.decode()


def test_the_list_filters_by_status_audience_category_and_words(agent_client, article_factory, category):
    other = Category.objects.create(name="Printing", slug="printing")
    vpn = article_factory(title="Connect to the VPN", body="Open the client.")
    failover = article_factory(title="VPN gateway failover", body="Switch gateways.", audience="agents")
    draft = article_factory(title="Printer jams", body="Open the tray.", status="draft", category=other)
    assert rows(agent_client.get("/agent/kb/", {"status": "draft"})) == [draft.id]
    assert set(rows(agent_client.get("/agent/kb/", {"status": "published"}))) == {vpn.id, failover.id}
    assert rows(agent_client.get("/agent/kb/", {"audience": "agents"})) == [failover.id]
    assert rows(agent_client.get("/agent/kb/", {"category": other.id})) == [draft.id]
    assert set(rows(agent_client.get("/agent/kb/", {"q": "vpn"}))) == {vpn.id, failover.id}
    assert rows(agent_client.get("/agent/kb/", {"q": "gateways", "audience": "agents"})) == [failover.id]
    # A value that is not a choice is ignored, not an error page.
    assert agent_client.get("/agent/kb/", {"status": "lost", "category": "x"}).status_code == 200


def test_the_list_pages_25_at_a_time(agent_client, article_factory):
    for n in range(27):
        article_factory(title=f"Wi-Fi tip {n:02d}")
    first = agent_client.get("/agent/kb/")
    second = agent_client.get("/agent/kb/", {"page": 2})
    assert len(rows(first)) == 25 and len(rows(second)) == 2
    assert set(rows(first)).isdisjoint(rows(second))
    assert "1–25 of 27" in first.content.decode()


def test_the_list_runs_a_constant_number_of_queries(agent_client, article_factory, category):
    services = [Service.objects.get_or_create(name=name)[0] for name in ("VPN", "Wi-Fi", "E-mail")]

    def count(n: int) -> int:
        for i in range(n):
            article_factory(title=f"Network tip {Article.objects.count()} {i}", services=services,
                            audience="agents" if i % 2 else "public")
        agent_client.get("/agent/kb/")  # warm the session and the role cache
        with CaptureQueriesContext(connection) as queries:
            response = agent_client.get("/agent/kb/")
        assert response.status_code == 200
        return len(queries), len(rows(response))

    few, shown_few = count(2)
    many, shown_many = count(23)
    assert (shown_few, shown_many) == (2, 25)
    assert few == many


# --- writing --------------------------------------------------------------------------------------------------


def test_an_agent_writes_a_draft_with_category_services_and_audience(agent_client, agent, category, vpn):
    response = agent_client.post("/agent/kb/new/", {
        "title": "  Reset the VPN client ", "body": "1. Quit the client\n2. Start it again\n",
        "category": category.id, "services": [vpn.id], "audience": "agents",
    })
    article = Article.objects.get()
    assert response.status_code == 302 and response.url == f"/agent/kb/{article.id}/edit/"
    assert (article.title, article.status, article.audience, article.category, article.author) == (
        "Reset the VPN client", "draft", "agents", category, agent)
    assert list(article.services.all()) == [vpn]
    assert "<li>Quit the client</li>" in article.body_html
    assert article.versions.get().number == 1


def test_bad_input_is_400_naming_the_field_and_stores_nothing(agent_client):
    response = agent_client.post("/agent/kb/new/", {"title": "   ", "body": "Text", "audience": "public"})
    assert response.status_code == 400
    assert 'id="title-error"' in response.content.decode()
    response = agent_client.post("/agent/kb/new/", {"title": "A title", "body": "Text", "audience": "everybody"})
    assert response.status_code == 400
    assert not Article.objects.exists() and not ArticleVersion.objects.exists()


def test_editing_adds_a_version_and_the_history_shows_each(agent_client, article_factory, vpn, make_user):
    article = article_factory(title="Connect to the VPN", body="Old text.", status="draft")
    page = agent_client.get(f"/agent/kb/{article.id}/edit/").content.decode()
    assert 'name="version" value="1"' in page and "Old text." in page
    response = agent_client.post(f"/agent/kb/{article.id}/edit/", {
        "title": "Connect to the VPN from home", "body": "New text.", "audience": "public", "version": 1,
        "services": [vpn.id], "category": "",
    })
    assert response.status_code == 302
    article.refresh_from_db()
    assert (article.title, article.body, article.version, article.category) == (
        "Connect to the VPN from home", "New text.", 2, None)
    assert list(article.services.all()) == [vpn]
    history = agent_client.get(f"/agent/kb/{article.id}/history/").content.decode()
    assert re.findall(r'data-testid="kb-version" data-number="(\d+)"', history) == ["2", "1"]
    assert "Old text." in history and "New text." in history


def test_a_stale_version_is_refused_with_409_naming_who_and_nothing_is_overwritten(
        agent_client, article_factory, make_user):
    from knowledge.services import article_update

    article = article_factory(body="First text.", status="draft")
    colleague = make_user("agent", username="carl", first_name="Carl", last_name="Colleague")
    article_update(article_id=article.id, actor=colleague, version=1, body="Carl's text.")
    response = agent_client.post(f"/agent/kb/{article.id}/edit/", {
        "title": article.title, "body": "My text, from version 1.", "audience": "public", "version": 1,
    })
    assert response.status_code == 409
    page = response.content.decode()
    assert 'data-testid="kb-conflict"' in page and "Carl Colleague" in page
    assert "My text, from version 1." in page  # what the agent typed is still there to copy
    article.refresh_from_db()
    assert (article.body, article.version) == ("Carl's text.", 2)
    # A form that lost its version is refused the same way.
    assert agent_client.post(f"/agent/kb/{article.id}/edit/", {
        "title": article.title, "body": "Blind write.", "audience": "public"}).status_code == 409


def test_publishing_and_retiring_change_what_readers_find_and_leave_an_audit_row(
        agent_client, client, article_factory, requester):
    article = article_factory(title="Add a printer", status="draft")
    assert agent_client.post(f"/agent/kb/{article.id}/publish/").status_code == 302
    article.refresh_from_db()
    assert article.status == "published" and article.published_at is not None
    assert AuditLog.objects.filter(action="article.published", object_id=str(article.id)).exists()
    reader = client.__class__()
    reader.force_login(requester)
    assert reader.get(f"/portal/kb/{article.slug}/").status_code == 200
    assert agent_client.post(f"/agent/kb/{article.id}/retire/").status_code == 302
    article.refresh_from_db()
    assert article.status == "retired"
    assert reader.get(f"/portal/kb/{article.slug}/").status_code == 404
    page = agent_client.get(f"/agent/kb/{article.id}/edit/").content.decode()
    assert 'data-testid="kb-publish"' in page and 'data-testid="kb-retire"' not in page


def test_publish_and_retire_only_take_post(agent_client, article_factory):
    article = article_factory(status="draft")
    assert agent_client.get(f"/agent/kb/{article.id}/publish/").status_code == 405
    assert Article.objects.get(id=article.id).status == "draft"


# --- preview --------------------------------------------------------------------------------------------------


def test_the_preview_renders_markdown_on_the_server_and_sanitises_it(agent_client):
    body = ("## Steps\n\n1. **Quit** the client\n\n<script>alert('x')</script>\n"
            "<img src=x onerror=alert(1)>\n\n[click](javascript:alert(1)) <a href=\"/portal/\" onclick=\"x()\">home</a>\n")
    response = agent_client.post("/agent/kb/preview/", {"body": body}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h2>Steps</h2>" in html and "<strong>Quit</strong>" in html
    for bad in ("<script", "alert('x')", "onerror", 'href="javascript', "onclick"):
        assert bad not in html, bad


def test_the_preview_button_works_without_javascript(agent_client):
    response = agent_client.post("/agent/kb/new/", {"title": "Draft", "body": "*soon*", "audience": "public",
                                                    "preview": "1"})
    assert response.status_code == 200 and "<em>soon</em>" in response.content.decode()
    assert not Article.objects.exists()
