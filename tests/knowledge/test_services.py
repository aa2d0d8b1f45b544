"""Writes of the knowledge base go through knowledge.services: versions, publishing, votes and views."""

import threading

import pytest
from django.db import connection

from knowledge.models import Article, ArticleStatus, ArticleVersion, Vote
from knowledge.services import (
    AlreadyVoted,
    article_create,
    article_publish,
    article_retire,
    article_update,
    article_viewed,
    article_vote,
)
from servicedesk.errors import InvalidInput, StaleVersion, TransitionNotAllowed
from servicedesk.models import AuditLog, Service

pytestmark = pytest.mark.django_db


def test_it_creates_a_draft_with_a_first_version_and_a_unique_slug(agent):
    first = article_create(title="Reset your password", body="Go to **Forgot password**.", author=agent)
    second = article_create(title="Reset your password", body="Another one.", author=agent)
    assert first.status == ArticleStatus.DRAFT and first.published_at is None
    assert (first.slug, second.slug) == ("reset-your-password", "reset-your-password-2")
    assert first.body_html == "<p>Go to <strong>Forgot password</strong>.</p>\n"
    assert [(v.number, v.title, v.edited_by) for v in first.versions.all()] == [(1, "Reset your password", agent)]
    assert first.author == agent and first.version == 1


def test_it_adds_a_version_per_change_of_title_or_body_and_none_for_other_fields(agent, admin_user, category):
    article = article_create(title="VPN", body="v1", author=agent)
    article_update(article_id=article.id, actor=admin_user, body="v2")
    article_update(article_id=article.id, actor=agent, title="VPN from home")
    article = article_update(article_id=article.id, actor=agent, category=category, audience="agents")
    assert article.version == 3
    history = list(ArticleVersion.objects.filter(article=article).order_by("number")
                   .values_list("number", "title", "body", "edited_by__username"))
    assert history == [(1, "VPN", "v1", "agnes"), (2, "VPN", "v2", "root"), (3, "VPN from home", "v2", "agnes")]
    assert article.category == category and article.audience == "agents"
    assert article.body_html == "<p>v2</p>\n"


def test_it_refuses_a_stale_version_and_bad_input(agent):
    article = article_create(title="VPN", body="v1", author=agent)
    article_update(article_id=article.id, actor=agent, body="v2", version=1)
    with pytest.raises(StaleVersion):
        article_update(article_id=article.id, actor=agent, body="v3", version=1)
    with pytest.raises(InvalidInput) as bad:
        article_update(article_id=article.id, actor=agent, body="   ")
    assert bad.value.field == "body"
    with pytest.raises(InvalidInput) as unknown:
        article_update(article_id=article.id, actor=agent, view_count=1000)
    assert unknown.value.field == "view_count"
    assert Article.objects.get(id=article.id).body == "v2"


def test_it_links_services(agent):
    vpn = Service.objects.create(name="VPN")
    article = article_create(title="VPN", body="x", author=agent, services=[vpn])
    assert list(article.services.all()) == [vpn]
    article_update(article_id=article.id, actor=agent, services=[])
    assert not article.services.exists()


def test_publishing_and_retiring_are_audited_and_guarded(agent):
    article = article_create(title="VPN", body="x", author=agent)
    article = article_publish(article_id=article.id, actor=agent)
    assert article.status == ArticleStatus.PUBLISHED and article.published_at is not None
    assert article_publish(article_id=article.id, actor=agent).published_at == article.published_at  # no-op
    article = article_retire(article_id=article.id, actor=agent)
    assert article.status == ArticleStatus.RETIRED
    assert list(AuditLog.objects.filter(object_id=str(article.id)).order_by("id").values_list("action", flat=True)) \
        == ["article.published", "article.retired"]
    assert article_publish(article_id=article.id, actor=agent).status == ArticleStatus.PUBLISHED
    article_retire(article_id=article.id, actor=agent)
    with pytest.raises(TransitionNotAllowed):
        from knowledge.services import _set_status

        _set_status(article.id, agent, ArticleStatus.DRAFT, {ArticleStatus.PUBLISHED})


def test_a_person_votes_once_per_article(article_factory, requester, other_requester):
    article = article_factory()
    article_vote(article_id=article.id, user=requester, helpful=True)
    with pytest.raises(AlreadyVoted):
        article_vote(article_id=article.id, user=requester, helpful=False)
    article_vote(article_id=article.id, user=other_requester, helpful=False)
    article.refresh_from_db()
    assert (article.helpful_count, article.not_helpful_count) == (1, 1)
    assert Vote.objects.filter(article=article).count() == 2
    with pytest.raises(InvalidInput):
        article_vote(article_id=article.id, user=other_requester, helpful="yes")


def test_views_are_counted_in_the_database_without_touching_updated_at(article_factory):
    article = article_factory()
    for _ in range(3):
        article_viewed(article_id=article.id)
    fresh = Article.objects.get(id=article.id)
    assert fresh.view_count == 3
    assert fresh.updated_at == article.updated_at


@pytest.mark.django_db(transaction=True)
def test_concurrent_views_and_double_votes_lose_nothing_and_count_once(make_user, agent):
    article = article_create(title="VPN", body="x", author=agent)
    voter = make_user("requester", username="vera")
    barrier = threading.Barrier(4)
    errors = []

    def read_and_vote():
        try:
            barrier.wait()
            for _ in range(5):
                article_viewed(article_id=article.id)
            try:
                article_vote(article_id=article.id, user=voter, helpful=True)
            except AlreadyVoted:
                pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=read_and_vote) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    article.refresh_from_db()
    assert (article.view_count, article.helpful_count) == (20, 1)
