"""SLA configuration refuses bad values with a message on the field at fault."""

from datetime import time

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from servicedesk.models import Team, Webhook
from sla import registry
from sla.models import (
    BusinessCalendar,
    EscalationStep,
    Holiday,
    OlaTarget,
    SlaPolicy,
    SlaTarget,
    WorkingInterval,
    find_overlap,
)

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict:
    with pytest.raises(ValidationError) as caught:
        obj.full_clean()
    return caught.value.message_dict


def test_it_refuses_a_time_zone_that_is_not_an_iana_name():
    errors = errors_of(BusinessCalendar(name="Mars", timezone="Mars/Olympus_Mons"))
    assert list(errors) == ["timezone"]
    assert "Unknown time zone 'Mars/Olympus_Mons'" in errors["timezone"][0]


def test_a_new_calendar_takes_the_configured_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    assert BusinessCalendar(name="Berlin").timezone == "Europe/Berlin"


def test_it_refuses_an_interval_that_overlaps_a_stored_one_naming_the_start(office):
    errors = errors_of(WorkingInterval(calendar=office, weekday=0, start=time(16), end=time(18)))
    assert list(errors) == ["start"]
    assert "Overlaps Monday 09:00-17:00" in errors["start"][0]


def test_an_overnight_shift_overlaps_the_next_mornings_interval(office):
    # Sunday 22:00-10:00 runs into Monday 09:00-17:00.
    errors = errors_of(WorkingInterval(calendar=office, weekday=6, start=time(22), end=time(10)))
    assert "Overlaps Monday 09:00-17:00" in errors["start"][0]


def test_intervals_that_only_touch_do_not_overlap(office):
    WorkingInterval(calendar=office, weekday=0, start=time(17), end=time(9)).full_clean()  # Mon 17:00-Tue 09:00


@pytest.mark.parametrize(("rows", "clash"), [
    ([(0, time(9), time(12)), (0, time(12), time(17))], False),
    ([(0, time(9), time(12)), (0, time(11), time(13))], True),
    ([(4, time(22), time(6)), (5, time(5), time(7))], True),       # Friday night into Saturday
    ([(6, time(22), time(6)), (0, time(6), time(14))], False),     # Sunday night ends as Monday starts
    ([(6, time(8), time(8)), (0, time(7), time(9))], True),        # a 24-hour shift
])
def test_find_overlap_reads_overnight_shifts_across_days_and_the_week_end(rows, clash):
    found = find_overlap([(index, *row) for index, row in enumerate(rows)])
    assert (found is not None) == clash


def test_a_holiday_date_is_unique_per_calendar(office):
    Holiday.objects.create(calendar=office, date="2026-12-25", name="Christmas Day")
    errors = errors_of(Holiday(calendar=office, date="2026-12-25", name="Again"))
    assert "__all__" in errors and "already exists" in errors["__all__"][0]


def test_it_refuses_a_resolution_target_shorter_than_the_first_response_naming_it(make_policy):
    policy = make_policy("Quick", targets=())
    errors = errors_of(SlaTarget(policy=policy, priority=1, first_response_minutes=60, resolution_minutes=30))
    assert list(errors) == ["resolution_minutes"]
    assert "at least the first response target (60 min)" in errors["resolution_minutes"][0]


def test_it_refuses_non_positive_targets_naming_each_field(make_policy):
    policy = make_policy("Zero", targets=())
    errors = errors_of(SlaTarget(policy=policy, priority=6, first_response_minutes=0, resolution_minutes=0))
    assert set(errors) == {"priority", "first_response_minutes", "resolution_minutes"}


def test_the_database_refuses_a_resolution_target_before_the_response_too(make_policy):
    policy = make_policy("Raw", targets=())
    with pytest.raises(IntegrityError), transaction.atomic():
        SlaTarget.objects.create(policy=policy, priority=1, first_response_minutes=60, resolution_minutes=30)


@pytest.mark.parametrize("percent", [0, 100])
def test_it_refuses_a_warning_threshold_outside_1_to_99(office, percent):
    errors = errors_of(SlaPolicy(name="P", calendar=office, warning_percent=percent))
    assert list(errors) == ["warning_percent"]


def test_pause_statuses_default_to_on_hold_awaiting_the_caller(office):
    assert SlaPolicy(name="P", calendar=office).pause_statuses == ["on_hold:awaiting_caller"]


@pytest.mark.parametrize("value", [["On Hold"], "on_hold", [1], ["on_hold:"]])
def test_it_refuses_pause_statuses_not_written_as_status_or_status_colon_reason(office, value):
    errors = errors_of(SlaPolicy(name="P", calendar=office, pause_statuses=value))
    assert list(errors) == ["pause_statuses"]


def test_it_refuses_a_malformed_ticket_type(office):
    errors = errors_of(SlaPolicy(name="P", calendar=office, ticket_type="Incident!"))
    assert list(errors) == ["ticket_type"]


def test_once_ticket_apps_registered_it_accepts_only_their_types(office, monkeypatch):
    monkeypatch.setattr(registry, "_types", {})
    registry.ticket_type("incident", "Incident")
    SlaPolicy(name="P", calendar=office, ticket_type="incident").full_clean()
    errors = errors_of(SlaPolicy(name="Q", calendar=office, ticket_type="incdent"))
    assert errors["ticket_type"] == ["Unknown ticket type 'incdent'; known: incident."]


def test_a_reassign_step_needs_its_team_and_a_webhook_step_its_webhook(make_policy):
    policy = make_policy("Steps", targets=())
    assert errors_of(EscalationStep(policy=policy, when="breach", action="reassign_team")) == {
        "team": ["Choose the team to reassign to."]}
    assert errors_of(EscalationStep(policy=policy, when="warning", action="webhook")) == {
        "webhook": ["Choose the webhook to call."]}
    team = Team.objects.create(name="Network")
    errors = errors_of(EscalationStep(policy=policy, when="warning", action="notify_assignee", team=team))
    assert list(errors) == ["team"]
    hook = Webhook.objects.create(name="Chat", url="https://hooks.example.com/x", secret="s")
    EscalationStep(policy=policy, when="breach", action="webhook", webhook=hook).full_clean()


def test_an_ola_target_is_positive_and_one_per_team_and_priority(office):
    team = Team.objects.create(name="Network")
    assert list(errors_of(OlaTarget(team=team, priority=1, minutes=0, calendar=office))) == ["minutes"]
    OlaTarget.objects.create(team=team, priority=1, minutes=60, calendar=office)
    assert "__all__" in errors_of(OlaTarget(team=team, priority=1, minutes=90, calendar=office))


def test_a_calendar_in_use_cannot_be_deleted(make_policy, office):
    make_policy("Uses the office", targets=())
    with pytest.raises(ProtectedError):
        office.delete()
    assert BusinessCalendar.objects.filter(id=office.id).exists()


def test_a_team_an_escalation_reassigns_to_cannot_be_deleted(make_policy):
    team = Team.objects.create(name="Major incidents")
    EscalationStep.objects.create(policy=make_policy("P", targets=()), when="breach", action="reassign_team",
                                  team=team)
    with pytest.raises(ProtectedError):
        team.delete()
