"""Problem detection (problems.detection): clusters of recurring incidents become candidates, by the same
service (or CI) and category, or by similar titles (pg_trgm); noise does not; a candidate is proposed once,
a dismissal is remembered until the cluster grows, and accepted ones are left alone."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.models import Category, Incident
from problems.detection import candidates_detect, centre_clusters, clusters_find, trigram_similarity
from problems.models import CandidateState, DetectionSettings, ProblemCandidate
from servicedesk.models import ConfigurationItem, Service

pytestmark = pytest.mark.django_db

NOISE = [
    "Printer on floor 3 is jammed", "Cannot open payroll spreadsheet", "New starter needs a laptop",
    "Monitor flickers after lunch", "Password expired on phone", "Teams camera shows black screen",
    "Coffee machine display broken", "Shared drive quota full", "Calendar invite not received",
    "Keyboard missing letter keys",
]


@pytest.fixture
def settings_row():
    row = DetectionSettings.get()
    row.window_days, row.min_incidents, row.similarity = 30, 3, 0.5
    row.save()
    return row


@pytest.fixture
def world(db):
    network = Category.objects.create(name="Network")
    hardware = Category.objects.create(name="Hardware")
    vpn = Service.objects.create(name="VPN")
    mail = Service.objects.create(name="Mail")
    gateway = ConfigurationItem.objects.create(name="vpn-gw-01")
    return {"network": network, "hardware": hardware, "vpn": vpn, "mail": mail, "gateway": gateway}


@pytest.fixture
def raise_incident(incident_factory):
    def make(title, *, days_ago=1, **kwargs):
        return incident_factory(title=title, now=timezone.now() - timedelta(days=days_ago, minutes=len(title)),
                                **kwargs)
    return make


@pytest.fixture
def noise(raise_incident, world):
    """Ten unrelated incidents, each on its own, some with a service and category but never three alike."""
    made = []
    for n, title in enumerate(NOISE):
        extra = {}
        if n % 3 == 0:
            extra = {"service": world["mail"], "category": world["hardware"] if n % 2 else world["network"]}
        made.append(raise_incident(title, days_ago=n + 1, **extra))
    return made


def test_it_finds_a_planted_service_and_category_cluster_among_noise(settings_row, world, noise, raise_incident):
    planted = [raise_incident(t, service=world["vpn"], category=world["network"], days_ago=d) for t, d in
               [("Cannot reach intranet from home", 2), ("Connection refused at login", 5), ("Slow at night", 9)]]

    result = candidates_detect()

    candidate = ProblemCandidate.objects.get(key=f"service:{world['vpn'].id}|category:{world['network'].id}")
    assert result.created == 1 and ProblemCandidate.objects.count() == 1
    assert set(candidate.incidents.values_list("id", flat=True)) == {i.id for i in planted}
    assert candidate.state == CandidateState.OPEN
    assert candidate.evidence["rule"] == "service"
    assert candidate.evidence["count"] == 3
    assert candidate.evidence["shared"] == "VPN / Network"
    assert candidate.evidence["first_seen"] == min(i.created_at for i in planted).isoformat()
    assert candidate.evidence["last_seen"] == max(i.created_at for i in planted).isoformat()
    assert candidate.title.startswith("Recurring VPN / Network")


def test_it_groups_by_configuration_item_when_the_services_differ(settings_row, world, raise_incident):
    for service in (world["vpn"], world["mail"], None):
        raise_incident(f"Gateway {service} timeouts", service=service, configuration_item=world["gateway"],
                       category=world["network"])

    candidates_detect()

    candidate = ProblemCandidate.objects.get()
    assert candidate.key == f"ci:{world['gateway'].id}|category:{world['network'].id}"
    assert candidate.evidence["shared"] == "vpn-gw-01 / Network"


def test_a_ci_cluster_inside_a_service_cluster_is_not_proposed_twice(settings_row, world, raise_incident):
    for n in range(3):
        raise_incident(f"Case {n}", service=world["vpn"], configuration_item=world["gateway"],
                       category=world["network"])

    candidates_detect()

    assert list(ProblemCandidate.objects.values_list("key", flat=True)) == [
        f"service:{world['vpn'].id}|category:{world['network'].id}"]


def test_it_finds_similar_titles_with_pg_trgm_and_not_the_noise(settings_row, world, noise, raise_incident):
    planted = [raise_incident(t, days_ago=d) for t, d in [
        ("VPN disconnects every 10 minutes", 3), ("VPN disconnects every few minutes", 4),
        ("vpn disconnects every 5 minutes", 6), ("VPN keeps disconnecting every minutes", 7)]]

    result = candidates_detect()

    assert result.found == 1
    candidate = ProblemCandidate.objects.get()
    assert candidate.key.startswith("similar:")
    assert set(candidate.incidents.values_list("id", flat=True)) == {i.id for i in planted}
    assert candidate.evidence["rule"] == "similar"
    assert candidate.evidence["count"] == 4
    assert candidate.evidence["similarity"] >= 0.5
    assert candidate.evidence["shared_terms"][:3] == ["every", "minutes", "vpn"]
    assert "vpn" in candidate.title.lower()


def test_below_the_minimum_or_outside_the_window_nothing_is_proposed(settings_row, world, raise_incident):
    raise_incident("Outlook crashes on start", service=world["mail"], category=world["hardware"])
    raise_incident("Outlook crashes on startup", service=world["mail"], category=world["hardware"])
    raise_incident("Outlook crashes on start up", service=world["mail"], category=world["hardware"], days_ago=40)

    assert candidates_detect().found == 0
    settings_row.window_days = 60
    settings_row.save()
    assert candidates_detect().found == 1


def test_incidents_already_linked_to_a_problem_or_cancelled_do_not_count(settings_row, world, raise_incident, agent):
    from incidents.services import incident_cancel
    from problems.services import problem_create

    made = [raise_incident(f"Disk full on share {n}", service=world["vpn"], category=world["hardware"])
            for n in range(4)]
    problem_create(title="Share fills up", created_by=agent, incidents=[made[0]])
    incident_cancel(incident_id=made[1].id, actor=agent, reason="raised twice")

    assert candidates_detect().found == 0
    assert clusters_find() == []


def test_running_twice_proposes_each_cluster_once_and_writes_nothing_new(settings_row, world, raise_incident):
    for n in range(3):
        raise_incident(f"Badge reader {n} rejects cards", service=world["vpn"], category=world["hardware"])
    candidates_detect()
    candidate = ProblemCandidate.objects.get()

    again = candidates_detect()

    assert ProblemCandidate.objects.count() == 1
    assert again.created == again.updated == 0
    assert ProblemCandidate.objects.get().updated_at == candidate.updated_at


def test_an_open_candidate_takes_in_new_incidents_of_its_cluster(settings_row, world, raise_incident):
    for n in range(3):
        raise_incident(f"Badge reader {n} rejects cards", service=world["vpn"], category=world["hardware"])
    candidates_detect()
    newcomer = raise_incident("Badge reader 9 rejects cards", service=world["vpn"], category=world["hardware"],
                              days_ago=0)

    result = candidates_detect()

    candidate = ProblemCandidate.objects.get()
    assert result.updated == 1
    assert candidate.evidence["count"] == 4
    assert newcomer in candidate.incidents.all()


def test_a_similar_cluster_keeps_its_key_as_it_grows(settings_row, raise_incident):
    for n in range(3):
        raise_incident(f"SAP login page times out {n}", days_ago=5 - n)
    candidates_detect()
    key = ProblemCandidate.objects.get().key
    # An older look-alike arrives late (imported): the first incident id changes, the candidate does not.
    raise_incident("SAP login page times out again", days_ago=20)

    candidates_detect()

    candidate = ProblemCandidate.objects.get()
    assert candidate.key == key and candidate.evidence["count"] == 4


def test_a_dismissed_candidate_is_not_proposed_again_until_it_grows(settings_row, world, raise_incident, make_user):
    from problems.candidates import candidate_dismiss

    manager = make_user("manager")
    for n in range(3):
        raise_incident(f"Scanner {n} offline", service=world["mail"], category=world["hardware"])
    candidates_detect()
    candidate = candidate_dismiss(candidate_id=ProblemCandidate.objects.get().id, actor=manager)
    assert candidate.size_when_dismissed == 3

    result = candidates_detect()
    assert result.kept_dismissed == 1
    assert ProblemCandidate.objects.get().state == CandidateState.DISMISSED

    raise_incident("Scanner 7 offline", service=world["mail"], category=world["hardware"], days_ago=0)
    result = candidates_detect()

    candidate = ProblemCandidate.objects.get()
    assert result.reopened == 1
    assert candidate.state == CandidateState.OPEN and candidate.evidence["count"] == 4
    assert candidate.decided_by is None


def test_an_open_candidate_nothing_supports_any_more_is_removed(settings_row, world, raise_incident, agent):
    from problems.services import problem_create, problem_link_incidents

    made = [raise_incident(f"Wifi drops {n}", service=world["vpn"], category=world["network"]) for n in range(3)]
    candidates_detect()
    problem = problem_create(title="Wifi", created_by=agent)
    problem_link_incidents(problem_id=problem.id, actor=agent, incidents=[made[0]])  # linked by hand meanwhile

    result = candidates_detect()

    assert result.removed == 1 and not ProblemCandidate.objects.exists()


def test_detection_costs_the_same_number_of_queries_for_more_incidents(settings_row, world, raise_incident):
    def count_queries():
        ProblemCandidate.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            candidates_detect()
        return len(queries)

    for n in range(3):
        raise_incident(f"Door {n} sensor stuck", service=world["vpn"], category=world["hardware"])
        raise_incident(f"Projector in room {n} flickers badly", days_ago=2)
    small = count_queries()
    for n in range(3, 12):
        raise_incident(f"Door {n} sensor stuck", service=world["vpn"], category=world["hardware"])
        raise_incident(f"Projector in room {n} flickers badly", days_ago=2)
    for title in NOISE:
        raise_incident(title, service=world["mail"], days_ago=3)
    assert Incident.objects.count() == 34
    assert count_queries() == small


def test_the_trigram_index_exists_for_the_similarity_join(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'incident_title_trgm'")
        (definition,) = cursor.fetchone()
    assert "gin" in definition and "gin_trgm_ops" in definition


def test_the_python_similarity_matches_pg_trgm(db):
    pairs = [("VPN disconnects every 10 minutes", "vpn disconnects every 5 minutes"),
             ("Printer jammed", "Payroll spreadsheet"), ("Outlook crashes", "Outlook crashes on start")]
    with connection.cursor() as cursor:
        for a, b in pairs:
            cursor.execute("SELECT similarity(%s, %s)", [a, b])
            assert trigram_similarity(a, b) == pytest.approx(cursor.fetchone()[0], abs=1e-6)


def test_centres_take_their_neighbours_instead_of_chaining():
    # 1-2-3-4-5 a chain; 3 is alike 1, 2, 4 and 5's only link is 4: 3 takes 1, 2, 4; 5 is left alone.
    pairs = [(1, 2, .6), (1, 3, .7), (2, 3, .6), (3, 4, .55), (4, 5, .9)]
    assert centre_clusters(pairs, 3) == [([1, 2, 3, 4], .55)]
    assert centre_clusters(pairs, 5) == []


def test_the_demo_step_plants_look_alike_incidents_and_proposes_them_once(settings_row, make_user):
    from problems.demo_detection import TITLES, seed_detection

    make_user("requester", username="nina")
    first = seed_detection()
    second = seed_detection()

    candidate = ProblemCandidate.objects.get()
    assert sorted(candidate.incidents.values_list("title", flat=True)) == sorted(TITLES)
    assert first.endswith("1 new candidates") and second.endswith("0 new candidates")
    assert Incident.objects.filter(title__in=TITLES).count() == 3
