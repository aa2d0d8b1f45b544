from datetime import time

import pytest

from sla.models import BusinessCalendar, SlaPolicy, SlaTarget, WorkingInterval


@pytest.fixture
def office(db):
    calendar = BusinessCalendar.objects.create(name="London office", timezone="Europe/London")
    WorkingInterval.objects.bulk_create(
        [WorkingInterval(calendar=calendar, weekday=day, start=time(9), end=time(17)) for day in range(5)]
    )
    return calendar


@pytest.fixture
def make_policy(office):
    def make(name, order=100, targets=(1, 2, 3, 4, 5), **kwargs):
        kwargs.setdefault("calendar", office)
        policy = SlaPolicy.objects.create(name=name, order=order, **kwargs)
        SlaTarget.objects.bulk_create([
            SlaTarget(policy=policy, priority=p, first_response_minutes=30, resolution_minutes=240) for p in targets
        ])
        return policy

    return make
