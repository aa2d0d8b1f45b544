"""Reference lists kept in the cache (servicedesk.refcache): read once, dropped by any save or delete through the
ORM, so an admin's change shows on the next page."""

import pytest

from incidents.models import ResolutionCode
from incidents.workspace import active_resolution_codes

pytestmark = pytest.mark.django_db


def codes():
    return [c.code for c in active_resolution_codes()]


def test_reference_data_is_read_once_then_from_the_cache(django_assert_num_queries):
    with django_assert_num_queries(1):
        first = codes()
    with django_assert_num_queries(0):
        assert codes() == first


def test_a_saved_or_deleted_row_shows_on_the_next_read():
    before = codes()
    code = ResolutionCode.objects.create(code="rebooted", label="Rebooted", order=99)
    assert codes() == before + ["rebooted"]
    code.active = False
    code.save()
    assert codes() == before
    code.active = True
    code.save()
    assert "rebooted" in codes()
    code.delete()
    assert codes() == before
