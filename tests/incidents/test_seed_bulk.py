"""seed_demo --tickets N on PostgreSQL (incidents.seed_bulk, requests_app.seed_bulk): the right numbers of rows,
relations that fit together, timelines, search vectors equal to the services' own, and a top-up that adds
nothing the second time."""

from collections import Counter

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from incidents.models import Incident
from incidents.search import search_filter, search_refresh
from incidents.states import OPEN
from requests_app.models import ServiceRequest
from servicedesk.models import Rating, TeamMembership, TimelineEntry

pytestmark = [pytest.mark.django_db(transaction=False),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="the server-side seeder is PostgreSQL's")]

N = 3000


@pytest.fixture
def seeded():
    call_command("seed_demo", "--tickets", str(N), "--quiet-logins")


def test_it_makes_n_incidents_and_n_requests_with_fitting_relations(seeded):
    from email_channel.demo import TITLES as EMAIL_DEMO
    from incidents.demo import SERVICE_CATEGORIES, SHOWCASE
    from problems.demo_detection import TITLES as DETECTION_DEMO

    others = [*EMAIL_DEMO, *DETECTION_DEMO, *[s[0] for s in SHOWCASE]]
    generated = Incident.objects.exclude(title__in=others).exclude(channel="monitoring")
    assert generated.count() == N - len(SHOWCASE)  # the showcase counts towards N
    assert ServiceRequest.objects.count() == N
    assert len(set(Incident.objects.values_list("number", flat=True))) == Incident.objects.count()

    members = set(TeamMembership.objects.values_list("team_id", "user_id"))
    now = timezone.now()
    for i in generated.select_related("service", "category__parent", "configuration_item"):
        assert i.assignment_group_id == i.service.owner_team_id
        assert i.configuration_item is None or i.service in i.configuration_item.services.all()
        if i.category:
            assert (i.category.parent.name, i.category.name) in SERVICE_CATEGORIES[i.service.name]
        assert i.assignee_id is None or (i.assignment_group_id, i.assignee_id) in members
        if i.status == "new":
            assert i.assignee_id is None
        assert i.created_at <= i.updated_at <= now
        assert (i.resolved_at is not None) == (i.status in ("resolved", "closed"))
        assert (i.hold_reason != "") == (i.status == "on_hold")
        assert i.service.name in i.title or "{service}" not in i.title
        assert "workstation WS" in i.description

    statuses = Counter(generated.values_list("status", flat=True))
    assert statuses["closed"] > N * 0.8 and sum(statuses[s] for s in OPEN) > 0
    assert set(statuses) >= {"new", "in_progress", "on_hold", "closed", "cancelled"}
    ages = generated.order_by("created_at").values_list("created_at", flat=True)
    assert (now - ages[0]).days > 200  # N / 12 a day: about 250 days
    # Numbers rise with the creation instant, as on a real desk.
    by_number = list(generated.order_by("number").values_list("created_at", flat=True))
    assert by_number == sorted(by_number)


def test_timelines_ratings_and_search_vectors_are_what_the_services_make(seeded):
    kind = ContentType.objects.get_for_model(Incident)
    sample = list(Incident.objects.exclude(channel="monitoring").order_by("id")[100:400])
    entries = Counter(TimelineEntry.objects.filter(content_type=kind, object_id__in=[i.id for i in sample])
                      .values_list("object_id", flat=True))
    for i in sample:
        expected = 1 + (i.status != "new") + (i.resolved_at is not None) + (i.closed_at is not None)
        assert entries[i.id] == expected, (i.number, i.status)
    assert not Rating.objects.filter(content_type=kind).exclude(
        object_id__in=Incident.objects.filter(status__in=("resolved", "closed")).values("id")).exists()

    vectors = dict(Incident.objects.filter(id__in=[i.id for i in sample]).values_list("id", "search_vector"))
    search_refresh([i.id for i in sample])
    assert dict(Incident.objects.filter(id__in=[i.id for i in sample]).values_list("id", "search_vector")) == vectors

    # Common words find many, a workstation name few, ranked newest first like the search page.
    common = search_filter(Incident.objects.all(), "slow", include_internal=True)
    assert common.count() > N / 20
    host = sample[0].description.split("workstation ")[1].rstrip(".")
    rare = search_filter(Incident.objects.all(), host, include_internal=True)
    assert sample[0] in rare and rare.count() < 10


def test_a_second_run_tops_up_nothing(seeded):
    counts = Incident.objects.count(), ServiceRequest.objects.count(), TimelineEntry.objects.count()
    call_command("seed_demo", "--tickets", str(N), "--quiet-logins")
    assert (Incident.objects.count(), ServiceRequest.objects.count(), TimelineEntry.objects.count()) == counts
