"""Problem candidates in a real browser: the detector found three look-alike incidents; an agent sees the
candidate without buttons; a manager reviews it (also at phone width), dismisses another one and accepts this
one, and the problem is recorded with the incidents linked. Fails on any console message or CSP violation."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_manager_reviews_candidates_dismisses_one_and_accepts_the_other(new_page, live_server):
    from incidents.models import Category
    from incidents.services import incident_create
    from problems.detection import candidates_detect
    from problems.models import CandidateState, DetectionSettings, ProblemCandidate
    from servicedesk.models import Service

    DetectionSettings.get()
    provision_user("agent", "agent", name="Aaron Agent")
    provision_user("manager", "manager", name="Maya Manager")
    rita = provision_user("rita", "requester", name="Rita Quester")
    now = timezone.now()
    badge = [incident_create(title=title, requester=rita, created_by=rita, now=now - timedelta(days=n + 1))
             for n, title in enumerate(["Badge reader at the main entrance rejects my card",
                                        "Badge reader at the main entrance rejects cards",
                                        "Main entrance badge reader rejects my new card"])]
    printing = Service.objects.get_or_create(name="Printing")[0]
    hardware = Category.objects.get_or_create(name="Printer", parent=None)[0]
    for n, title in enumerate(["Tray 2 empty", "Paper jam on floor 2", "Toner low warning"]):
        incident_create(title=title, requester=rita, created_by=rita, service=printing, category=hardware,
                        now=now - timedelta(days=n + 1))
    candidates_detect()
    assert ProblemCandidate.objects.count() == 2

    agent = new_page()
    login(agent, live_server, "agent")
    agent.goto(f"{live_server.url}/agent/problems/candidates/")
    expect(agent.get_by_test_id("candidate")).to_have_count(2)
    expect(agent.get_by_test_id("candidate-accept")).to_have_count(0)

    page = new_page()
    login(page, live_server, "manager")
    page.goto(f"{live_server.url}/agent/problems/candidates/")
    badge_card = page.get_by_test_id("candidate").filter(has_text="Alike titles")
    expect(badge_card.get_by_test_id("candidate-incident")).to_have_count(3)
    expect(badge_card.get_by_test_id("candidate-count")).to_have_text("3")
    for incident in badge:
        expect(badge_card.get_by_role("link", name=incident.number)).to_be_visible()
    screenshot(page, "problem-candidates")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(badge_card.get_by_test_id("candidate-accept")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "problem-candidates-390")
    page.set_viewport_size({"width": 1366, "height": 900})

    page.get_by_test_id("candidate").filter(has_text="Printing / Printer").get_by_test_id("candidate-dismiss").click()
    expect(page.get_by_text("proposed again only if it grows past 3 incidents")).to_be_visible()
    expect(page.get_by_test_id("candidate")).to_have_count(1)

    page.get_by_test_id("candidate-accept").click()
    expect(page.get_by_text("recorded with 3 linked incidents")).to_be_visible()
    accepted = ProblemCandidate.objects.get(state=CandidateState.ACCEPTED)
    assert set(accepted.problem.incidents.values_list("id", flat=True)) == {i.id for i in badge}
    screenshot(page, "problem-candidate-accepted")
