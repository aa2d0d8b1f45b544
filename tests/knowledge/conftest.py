import pytest

from knowledge.models import Audience, Category
from knowledge.services import article_create, article_publish


@pytest.fixture
def category(db):
    return Category.objects.create(name="Network", slug="network")


@pytest.fixture
def article_factory(agent, category):
    """Create an article through the services; published unless `status="draft"`."""

    def make(title="Connect to the VPN", body="Open the VPN client and sign in.", *, status="published",
             audience=Audience.PUBLIC, **kwargs):
        kwargs.setdefault("category", category)
        article = article_create(title=title, body=body, author=agent, audience=audience, **kwargs)
        if status == "published":
            article = article_publish(article_id=article.id, actor=agent)
        elif status == "retired":
            from knowledge.services import article_retire

            article = article_retire(article_id=article.id, actor=agent)
        return article

    return make
