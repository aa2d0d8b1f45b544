"""The demo's problems: linked to demo incidents, one known error with a workaround, one resolved with its
incidents resolved, one under investigation; seeding again adds nothing."""

import pytest
from django.core.management import call_command

from incidents.states import OPEN as INCIDENT_OPEN
from problems.demo import MAIL, SPOOLER, VPN, seed_problems
from problems.models import Problem
from problems.states import Status
from servicedesk.registry import registry

pytestmark = pytest.mark.django_db


def test_the_demo_step_runs_after_incidents_and_knowledge():
    steps = [step.app for step in registry.demo_steps()]
    assert steps.index("problems") > steps.index("incidents")
    assert steps.index("problems") > steps.index("knowledge")


def test_seed_demo_adds_three_problems_over_demo_incidents_once(fixed_code):
    call_command("seed_demo", "--tickets", "120", "--quiet-logins")
    problems = {problem.title: problem for problem in Problem.objects.all()}
    assert set(problems) == {VPN, SPOOLER, MAIL}

    vpn = problems[VPN]
    assert vpn.status == Status.KNOWN_ERROR and vpn.workaround and vpn.root_cause
    assert vpn.incidents.count() == 3 and set(vpn.incidents.values_list("service__name", flat=True)) == {"VPN"}
    assert len(vpn.analysis["five_whys"]) == 5 and vpn.knowledge_article is not None
    assert vpn.assignee.username == "nina"

    spooler = problems[SPOOLER]
    assert spooler.status == Status.RESOLVED and spooler.resolution_code == "fixed"
    assert spooler.incidents.count() == 2
    assert not spooler.incidents.filter(status__in=sorted(INCIDENT_OPEN)).exists()

    assert problems[MAIL].status == Status.INVESTIGATING and problems[MAIL].incidents.count() == 1
    assert seed_problems() == "0 problems added, 3 already there"
    assert Problem.objects.count() == 3
