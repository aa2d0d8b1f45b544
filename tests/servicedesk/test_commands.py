import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from incidents.models import Incident
from servicedesk.models import ConfigurationItem, PriorityRule, Service, Team, TimelineEntry
from servicedesk.roles import role_of

pytestmark = pytest.mark.django_db


def counts():
    return {
        "users": get_user_model().objects.count(),
        "teams": Team.objects.count(),
        "services": Service.objects.count(),
        "cis": ConfigurationItem.objects.count(),
        "rules": PriorityRule.objects.count(),
        "incidents": Incident.objects.count(),
    }


def test_seed_demo_creates_one_user_per_role_and_is_idempotent(capsys):
    call_command("seed_demo")
    first = counts()
    call_command("seed_demo")
    assert counts() == first
    User = get_user_model()
    roles = {u: role_of(User.objects.get(username=u)).value for u in ("requester", "agent", "manager", "admin")}
    assert roles == {"requester": "requester", "agent": "agent", "manager": "manager", "admin": "admin"}
    assert first["rules"] == 9 and first["services"] >= 5 and first["cis"] >= 5
    assert User.objects.get(username="agent").check_password("Demo-2026!")
    assert "Demo-2026!" in capsys.readouterr().out


def test_seed_demo_makes_ten_thousand_tickets_in_under_a_minute():
    started = time.perf_counter()
    call_command("seed_demo", "--tickets", "10000", "--quiet-logins")
    took = time.perf_counter() - started
    from email_channel.demo import TITLES as EMAIL_DEMO
    from problems.demo_detection import TITLES as DETECTION_DEMO

    # 10,000 generated, plus the problem-detection demo's three look-alike incidents, the three that the
    # monitoring demo's alerts opened and the one the email channel's demo mail opened.
    assert (Incident.objects.exclude(title__in=[*DETECTION_DEMO, *EMAIL_DEMO]).exclude(channel="monitoring")
            .count() == 10000)
    assert Incident.objects.filter(title__in=EMAIL_DEMO).count() == len(EMAIL_DEMO)
    assert Incident.objects.filter(channel="monitoring").count() == 3
    assert Incident.objects.filter(title__in=DETECTION_DEMO).count() == len(DETECTION_DEMO)
    assert took < 60, f"took {took:.1f}s"
    assert len(set(Incident.objects.values_list("number", flat=True))) == Incident.objects.count()
    assert TimelineEntry.objects.filter(kind="system").count() >= 10000
    statuses = set(Incident.objects.values_list("status", flat=True))
    assert {"new", "in_progress", "on_hold", "resolved", "closed"} <= statuses
    call_command("seed_demo", "--tickets", "10000", "--quiet-logins")  # tops up: nothing more to make
    assert Incident.objects.count() == 10000 + len(DETECTION_DEMO) + 3 + len(EMAIL_DEMO)


def test_create_user_creates_then_updates_the_role_idempotently():
    call_command("create_user", "zoe", "--role", "agent", "--password", "pw-Zoe-2026", "--email", "zoe@example.com",
                 "--team", "Network", "--organisation", "Acme")
    zoe = get_user_model().objects.get(username="zoe")
    assert role_of(zoe).value == "agent"
    assert list(zoe.teams.values_list("name", flat=True)) == ["Network"]
    assert zoe.profile.organisation.name == "Acme"
    call_command("create_user", "zoe", "--role", "manager", "--team", "Network")
    zoe = get_user_model().objects.get(username="zoe")
    assert role_of(zoe).value == "manager"
    assert list(zoe.groups.values_list("name", flat=True)) == ["manager"]
    assert zoe.check_password("pw-Zoe-2026")  # unchanged when --password is omitted
    assert Team.objects.get(name="Network").lead == zoe


def test_create_user_refuses_an_unknown_role():
    with pytest.raises(CommandError, match="invalid choice: 'boss'"):
        call_command("create_user", "x", "--role", "boss")
