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


def test_kept_rows_are_read_once_and_dropped_when_saved(django_assert_num_queries):
    from incidents.models import Category
    from servicedesk.models import Team
    from servicedesk.refcache import rows_cached

    team = Team.objects.create(name="Network")
    parent = Category.objects.create(name="Hardware")
    child = Category.objects.create(name="Printer", parent=parent)
    with django_assert_num_queries(2):  # one per model, the category's parent joined
        rows = rows_cached({Team: [team.pk], Category: [child.pk]})
    assert rows[Team][team.pk].name == "Network" and str(rows[Category][child.pk]) == "Hardware / Printer"
    with django_assert_num_queries(0):
        assert str(rows_cached({Category: [child.pk]})[Category][child.pk]) == "Hardware / Printer"
    team.name = "Networks"
    team.save()
    parent.name = "Devices"
    parent.save()  # the child shows its parent's name: dropped as well
    rows = rows_cached({Team: [team.pk], Category: [child.pk]})
    assert rows[Team][team.pk].name == "Networks" and str(rows[Category][child.pk]) == "Devices / Printer"
    team.delete()
    assert rows_cached({Team: [team.pk]})[Team] == {}


def test_the_incident_page_shows_its_team_service_and_category_from_the_kept_rows(agent_client, incident_factory):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from incidents.models import Category
    from servicedesk.models import Service, Team

    parent = Category.objects.create(name="Hardware")
    incident = incident_factory(service=Service.objects.create(name="Printing"),
                                category=Category.objects.create(name="Printer", parent=parent))
    incident.assignment_group = Team.objects.create(name="Field service")
    incident.save()
    agent_client.get(f"/agent/incidents/{incident.number}/")  # reads and keeps them
    with CaptureQueriesContext(connection) as queries:
        page = agent_client.get(f"/agent/incidents/{incident.number}/").content.decode()
    for shown in ("Field service", "Printing", "Hardware / Printer"):
        assert shown in page
    read = " ".join(q["sql"] for q in queries.captured_queries)
    assert '"servicedesk_service"' not in read and '"incidents_category"' not in read
    parent.name = "Devices"
    parent.save()
    assert "Devices / Printer" in agent_client.get(f"/agent/incidents/{incident.number}/").content.decode()


def test_an_entry_kept_again_before_the_change_commits_is_dropped_at_commit(django_capture_on_commit_callbacks):
    """Another request may read the old rows (the change is not committed yet) and keep them in between."""
    from django.core.cache import cache
    from django.db import transaction

    from servicedesk.refcache import KEY_PREFIX

    old_rows = list(active_resolution_codes())
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        ResolutionCode.objects.create(code="rebooted", label="Rebooted", order=99)
        cache.set(KEY_PREFIX + "incidents:resolution-codes", old_rows)  # what that other request kept
    assert "rebooted" in codes()
