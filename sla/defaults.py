"""The calendars and policies a fresh install starts with, so every new incident has clocks from its first
minute. Created by migration sla.0002 and by `seed_demo`; keyed by name, so running again changes nothing and
an admin's later edits are kept.

| policy | calendar | priority | first response | resolution |
|---|---|---|---|---|
| Incidents: critical and high (24x7) | 24x7 | P1 | 15 min | 4 h |
| | | P2 | 30 min | 8 h |
| Incidents: office hours | Office hours (Mon-Fri 09:00-17:00) | P3 | 4 business h | 3 business days (24 h) |
| | | P4 | 8 business h | 5 business days (40 h) |
| | | P5 | 2 business days (16 h) | 10 business days (80 h) |

Both warn at 75 %, pause while on hold awaiting the caller, notify the assignee at warning and the team lead
at breach."""

from datetime import time

OFFICE = "Office hours"
ALWAYS = "24x7"

POLICIES = [
    # name, order, calendar, {priority: (first response minutes, resolution minutes)}
    ("Incidents: critical and high (24x7)", 10, ALWAYS, {1: (15, 4 * 60), 2: (30, 8 * 60)}),
    ("Incidents: office hours", 20, OFFICE, {3: (4 * 60, 24 * 60), 4: (8 * 60, 40 * 60),
                                              5: (16 * 60, 80 * 60)}),
]
STEPS = [("warning", "notify_assignee"), ("breach", "notify_team_lead")]


def ensure_defaults(apps=None) -> str:
    """Create what is missing of the defaults; `apps` is a migration's app registry (historical models)."""
    from django.conf import settings

    if apps is None:
        from django.apps import apps
    calendar_model = apps.get_model("sla", "BusinessCalendar")
    interval_model = apps.get_model("sla", "WorkingInterval")
    policy_model = apps.get_model("sla", "SlaPolicy")
    target_model = apps.get_model("sla", "SlaTarget")
    step_model = apps.get_model("sla", "EscalationStep")
    created = []

    always, new = calendar_model.objects.get_or_create(name=ALWAYS, defaults={"timezone": settings.TIME_ZONE,
                                                                            "is_24x7": True})
    created += [always.name] if new else []
    office, new = calendar_model.objects.get_or_create(name=OFFICE, defaults={"timezone": settings.TIME_ZONE})
    if new:
        created.append(office.name)
        interval_model.objects.bulk_create([
            interval_model(calendar=office, weekday=day, start=time(9), end=time(17)) for day in range(5)
        ])
    calendars = {ALWAYS: always, OFFICE: office}

    for name, order, calendar, targets in POLICIES:
        policy, new = policy_model.objects.get_or_create(name=name, defaults={
            "order": order, "ticket_type": "incident", "calendar": calendars[calendar], "warning_percent": 75,
            "pause_statuses": ["on_hold:awaiting_caller"],
        })
        if not new:
            continue
        created.append(name)
        target_model.objects.bulk_create([
            target_model(policy=policy, priority=p, first_response_minutes=r, resolution_minutes=s)
            for p, (r, s) in targets.items()
        ])
        step_model.objects.bulk_create([
            step_model(policy=policy, when=when, action=action) for when, action in STEPS
        ])
    return f"created {', '.join(created)}" if created else "default calendars and policies present"
