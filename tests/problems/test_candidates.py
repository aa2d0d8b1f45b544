"""Deciding on problem candidates (problems.candidates): accepting creates the problem with the incidents
linked, dismissing remembers the size; managers and admins decide, agents and requesters may not; the
detector's beat entry follows the settings."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from incidents.models import Category
from problems.candidates import (
    DETECT_TASK,
    DETECT_TASK_NAME,
    candidate_accept,
    candidate_dismiss,
    detection_settings_save,
)
from problems.detection import candidates_detect
from problems.models import CandidateState, DetectionSettings, ProblemCandidate
from servicedesk.errors import NotAllowed, TransitionNotAllowed
from servicedesk.models import AuditLog, Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(make_user):
    return make_user("manager", username="mona", teams=["Service Desk"])


@pytest.fixture
def candidate(incident_factory):
    service = Service.objects.create(name="Payroll")
    category = Category.objects.create(name="Application")
    incidents = [incident_factory(title=f"Payslip {n} shows the wrong month", service=service, category=category,
                                  now=timezone.now() - timedelta(days=n + 1)) for n in range(3)]
    candidates_detect()
    found = ProblemCandidate.objects.get()
    found.planted = incidents
    return found


def test_accepting_creates_a_problem_linking_the_incidents(candidate, manager):
    problem = candidate_accept(candidate_id=candidate.id, actor=manager)

    assert problem.number.startswith("PRB")
    assert problem.title == candidate.title
    assert set(problem.incidents.values_list("id", flat=True)) == {i.id for i in candidate.planted}
    assert list(problem.services.values_list("name", flat=True)) == ["Payroll"]
    assert problem.category.name == "Application"
    assert "3 incidents" in problem.description and problem.created_by == manager
    candidate.refresh_from_db()
    assert candidate.state == CandidateState.ACCEPTED and candidate.problem == problem
    assert candidate.decided_by == manager and candidate.decided_at is not None
    assert AuditLog.objects.filter(action="problemcandidate.accepted", object_id=str(candidate.id)).exists()


def test_an_accepted_candidate_is_left_alone_and_its_incidents_no_longer_count(candidate, manager,
                                                                                incident_factory):
    candidate_accept(candidate_id=candidate.id, actor=manager)

    result = candidates_detect()

    assert result.found == 0
    assert ProblemCandidate.objects.get().state == CandidateState.ACCEPTED


def test_dismissing_remembers_the_size_seen(candidate, manager):
    dismissed = candidate_dismiss(candidate_id=candidate.id, actor=manager)

    assert dismissed.state == CandidateState.DISMISSED and dismissed.size_when_dismissed == 3
    assert AuditLog.objects.filter(action="problemcandidate.dismissed").exists()


def test_a_decided_candidate_cannot_be_decided_again(candidate, manager):
    candidate_dismiss(candidate_id=candidate.id, actor=manager)

    with pytest.raises(TransitionNotAllowed):
        candidate_accept(candidate_id=candidate.id, actor=manager)
    with pytest.raises(TransitionNotAllowed):
        candidate_dismiss(candidate_id=candidate.id, actor=manager)


def test_admins_decide_too(candidate, admin_user):
    assert candidate_accept(candidate_id=candidate.id, actor=admin_user).created_by == admin_user


@pytest.mark.parametrize("role", ["agent", "requester"])
def test_agents_and_requesters_cannot_decide(candidate, make_user, role):
    user = make_user(role)

    with pytest.raises(NotAllowed):
        candidate_accept(candidate_id=candidate.id, actor=user)
    with pytest.raises(NotAllowed):
        candidate_dismiss(candidate_id=candidate.id, actor=user)
    candidate.refresh_from_db()
    assert candidate.state == CandidateState.OPEN and not candidate.planted[0].problems.exists()


def test_the_beat_entry_runs_the_detector_at_the_configured_interval(db):
    task = PeriodicTask.objects.get(name=DETECT_TASK_NAME)  # created by migration problems.0003_detection
    assert task.task == DETECT_TASK == "problems.tasks.problems_detect" and task.enabled
    assert (task.interval.every, task.interval.period) == (DetectionSettings.get().interval_minutes, "minutes")

    settings = DetectionSettings.get()
    settings.interval_minutes = 15
    detection_settings_save(settings=settings, actor=None)

    task.refresh_from_db()
    assert (task.interval.every, task.interval.period) == (15, "minutes")


def test_saving_the_settings_in_admin_re_times_the_beat_entry(admin_client):
    url = reverse("admin:problems_detectionsettings_change", args=[DetectionSettings.get().pk])
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, {"window_days": "14", "min_incidents": "4", "similarity": "0.6",
                                       "interval_minutes": "30", "_save": "Save"})

    assert response.status_code == 302
    settings = DetectionSettings.get()
    assert (settings.window_days, settings.min_incidents, settings.similarity) == (14, 4, 0.6)
    interval = PeriodicTask.objects.get(name=DETECT_TASK_NAME).interval
    assert (interval.every, interval.period) == (30, "minutes")


def test_the_beat_task_is_registered_and_runs_the_detector(candidate):
    from servicedesk.celery import app

    ProblemCandidate.objects.all().delete()
    app.loader.import_default_modules()
    outcome = app.tasks[DETECT_TASK].apply().get()

    assert outcome["found"] == outcome["created"] == 1
    assert ProblemCandidate.objects.get().evidence["count"] == 3
