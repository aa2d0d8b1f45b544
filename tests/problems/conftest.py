import pytest

from incidents.models import ResolutionCode
from problems import services


@pytest.fixture
def fixed_code(db):
    """The resolution code problems default to (seeded by incidents' migration; a transactional test starts
    from an emptied database, so bring it)."""
    return ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})[0]


@pytest.fixture
def problem_factory(agent):
    def make(title="VPN drops every hour", **kwargs):
        kwargs.setdefault("created_by", agent)
        return services.problem_create(title=title, **kwargs)

    return make
