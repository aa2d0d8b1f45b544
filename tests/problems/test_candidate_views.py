"""The candidate review page /agent/problems/candidates/: agents see open candidates with evidence and
incidents, managers (and admins) accept or dismiss with POST, requesters get 403; the page costs the same
queries whatever the number of candidates."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents.models import Category
from problems.detection import candidates_detect
from problems.models import CandidateState, ProblemCandidate
from servicedesk.models import Service

pytestmark = pytest.mark.django_db
URL = "/agent/problems/candidates/"


@pytest.fixture
def manager(make_user):
    return make_user("manager", username="mona", teams=["Service Desk"])


def plant(incident_factory, name: str, size: int = 3):
    service = Service.objects.create(name=name)
    category, _ = Category.objects.get_or_create(name="Application")
    made = [incident_factory(title=f"{name} error {n}", service=service, category=category,
                             now=timezone.now() - timedelta(days=n + 1)) for n in range(size)]
    return made


@pytest.fixture
def candidate(incident_factory):
    incidents = plant(incident_factory, "Payroll")
    candidates_detect()
    found = ProblemCandidate.objects.get()
    found.planted = incidents
    return found


def test_the_url_is_named_and_sits_under_the_agent_problems(db):
    assert reverse("agent:problem_candidates") == URL


def test_agents_see_candidates_with_evidence_and_incidents_but_no_buttons(client, agent, candidate):
    client.force_login(agent)
    response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert candidate.title in html
    assert "Same service and category" in html and "Payroll / Application" in html
    for incident in candidate.planted:
        assert incident.number in html and reverse("agent:incident", kwargs={"number": incident.number}) in html
    assert 'data-testid="candidate-accept"' not in html and "Managers accept or dismiss them" in html


def test_managers_see_accept_and_dismiss(client, manager, candidate):
    client.force_login(manager)
    html = client.get(URL).content.decode()

    assert 'data-testid="candidate-accept"' in html and 'data-testid="candidate-dismiss"' in html


def test_a_manager_accepts_and_the_problem_links_the_incidents(client, manager, candidate):
    client.force_login(manager)
    response = client.post(reverse("agent:problem_candidate_accept", kwargs={"candidate_id": candidate.id}))

    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.state == CandidateState.ACCEPTED
    assert set(candidate.problem.incidents.values_list("id", flat=True)) == {i.id for i in candidate.planted}
    assert candidate.problem.number in response.url or response.url == URL
    assert candidate.title not in client.get(URL).content.decode()


def test_a_manager_dismisses_and_the_candidate_leaves_the_page(client, manager, candidate):
    client.force_login(manager)
    response = client.post(reverse("agent:problem_candidate_dismiss", kwargs={"candidate_id": candidate.id}),
                           follow=True)

    assert response.status_code == 200
    html = response.content.decode()
    assert "proposed again only if it grows past 3 incidents" in html
    assert 'data-testid="candidate"' not in html
    assert ProblemCandidate.objects.get().state == CandidateState.DISMISSED


def test_deciding_twice_says_so_instead_of_failing(client, manager, candidate):
    client.force_login(manager)
    url = reverse("agent:problem_candidate_dismiss", kwargs={"candidate_id": candidate.id})
    client.post(url)

    response = client.post(url, follow=True)

    assert response.status_code == 200 and "already dismissed" in response.content.decode()


def test_agents_cannot_decide(client, agent, candidate):
    client.force_login(agent)
    for name in ("agent:problem_candidate_accept", "agent:problem_candidate_dismiss"):
        assert client.post(reverse(name, kwargs={"candidate_id": candidate.id})).status_code == 403
    assert ProblemCandidate.objects.get().state == CandidateState.OPEN


def test_requesters_get_403_everywhere(client, requester, candidate):
    client.force_login(requester)
    assert client.get(URL).status_code == 403
    for name in ("agent:problem_candidate_accept", "agent:problem_candidate_dismiss"):
        assert client.post(reverse(name, kwargs={"candidate_id": candidate.id})).status_code == 403
    assert ProblemCandidate.objects.get().state == CandidateState.OPEN


def test_deciding_needs_a_post(client, manager, candidate):
    client.force_login(manager)
    assert client.get(reverse("agent:problem_candidate_accept", kwargs={"candidate_id": candidate.id})).status_code == 405


def test_the_page_costs_the_same_queries_for_one_or_many_candidates(client, agent, incident_factory):
    plant(incident_factory, "Alpha")
    candidates_detect()
    client.force_login(agent)
    client.get(URL)  # warm caches (content types, settings row)
    with CaptureQueriesContext(connection) as one:
        assert client.get(URL).status_code == 200
    for name in ("Beta", "Gamma", "Delta"):
        plant(incident_factory, name, size=4)
    candidates_detect()
    shown = ProblemCandidate.objects.count()
    assert shown >= 4
    with CaptureQueriesContext(connection) as many:
        assert client.get(URL).content.decode().count('data-testid="candidate"') == shown
    assert len(many) == len(one)


def test_an_empty_review_page_says_when_detection_runs(client, agent):
    client.force_login(agent)
    html = client.get(URL).content.decode()
    assert "No candidate to review" in html and "every 60 minutes" in html
