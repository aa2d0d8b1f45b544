"""Incident management's demo data: categories paired with the services they concern, canned responses,
assignment rules, a handful of showcase incidents whose SLA clocks are in telling states and, on request, many
realistic incidents inserted in bulk (for demos and benchmarks). Registered as this app's `seed_demo` step in
incidents.plugin; runs after the kernel's demo data (and sla's default policies). Idempotent.

SLA clocks: the showcase incidents are raised and moved through incidents' services with `now=` in the past, so
their clocks are what the services would have made (running, paused awaiting the caller, past due for the
first sweep to breach and escalate, resolved within and after target). Bulk-inserted incidents get their
clocks afterwards (at most DEMO_CLOCKS open and DEMO_HISTORY finished ones, so large N stays fast): the newest
resolved, closed and cancelled ones replay their history (raised, first reply, resolved), so they are met or
breached; open ones start their clocks when the demo is loaded (segment "Demo data loaded"), so they run
towards deadlines ahead instead of all being breached at the first sweep, which would mail an escalation for
each.
"""

import random
from dataclasses import replace
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Least
from django.utils import timezone

from incidents.models import AssignmentRule, CannedResponse, Category, Channel, Incident
from incidents.search import search_refresh
from incidents.sla import TICKET_TYPE, incident_facts, incident_sla_sync
from incidents.states import OPEN, HoldReason, Status
from servicedesk.demo import demo_requesters
from servicedesk.models import Service, Team, TimelineEntry
from servicedesk.numbering import number_block
from servicedesk.services import DEFAULT_PRIORITY_MATRIX
from sla.clocks import clocks_sync
from sla.models import SlaClock

CATEGORIES = {
    "Hardware": ["Laptop", "Printer", "Peripheral"],
    "Software": ["Installation", "Error", "Licence"],
    "Network": ["Connectivity", "VPN", "Wi-Fi"],
    "Access": ["Password", "Permissions", "Account locked"],
}

# The categories that make sense for each demo service (kernel's servicedesk.demo.SERVICES), so a generated
# "VPN" incident is filed under Network / VPN, never under Hardware / Printer.
SERVICE_CATEGORIES = {
    "E-mail": [("Software", "Error"), ("Access", "Password"), ("Access", "Permissions")],
    "VPN": [("Network", "VPN"), ("Network", "Connectivity"), ("Access", "Account locked")],
    "Wi-Fi": [("Network", "Wi-Fi"), ("Network", "Connectivity")],
    "ERP": [("Software", "Error"), ("Access", "Permissions"), ("Software", "Licence")],
    "CRM": [("Software", "Error"), ("Access", "Permissions"), ("Access", "Password")],
    "Checkout": [("Software", "Error"), ("Network", "Connectivity")],
    "Printing": [("Hardware", "Printer")],
    "Laptops": [("Hardware", "Laptop"), ("Hardware", "Peripheral"), ("Software", "Installation")],
    "Data warehouse": [("Software", "Error"), ("Access", "Permissions")],
}

# title, description, the category it belongs to when the service offers it (else one of the service's)
PROBLEMS = [
    ("{service} is very slow", "Pages take 20-30 seconds to load since this morning.", ("Software", "Error")),
    ("Cannot log in to {service}", "I get 'invalid credentials' although my password works elsewhere.",
     ("Access", "Password")),
    ("{service} shows an error 500", "The error appears when I save. Screenshot attached in my head.",
     ("Software", "Error")),
    ("{service} is down for the whole floor", "Nobody on the 3rd floor can reach it.", ("Network", "Connectivity")),
    ("Intermittent disconnects on {service}", "Drops every 10 minutes or so, reconnects by itself.",
     ("Network", "Connectivity")),
    ("{service}: data missing since yesterday", "Yesterday's entries are not visible any more.",
     ("Software", "Error")),
    ("Request timeout when exporting from {service}", "The export of last month's report never finishes.",
     ("Software", "Error")),
    ("{service} certificate warning", "Browser warns the certificate is not valid.", None),
]

RESOLUTIONS = ["fixed", "workaround", "duplicate", "not_reproducible", "user_error"]

# title, team (None = everyone), body. Placeholders: see incidents.models.CannedResponse.
CANNED_RESPONSES = [
    ("Acknowledge", None,
     "Hi {requester_first_name},\n\nThanks for reporting {number}. I have picked it up and will keep you "
     "posted here.\n\n{agent_name}, Service Desk"),
    ("Need more information", None,
     "Hi {requester_first_name},\n\nTo move {number} forward we need a little more: since when does it "
     "happen, what exactly do you see (a screenshot helps), and are colleagues affected too?\n\n"
     "Thanks,\n{agent_name}"),
    ("Fixed, please confirm", None,
     "Hi {requester_first_name},\n\nWe believe {number} is fixed. Could you check? If the problem is still "
     "there, just reply and we pick it up again.\n\n{agent_name}"),
    ("Part of a wider outage", None,
     "Hi {requester_first_name},\n\nThis is part of a wider disruption of {service} that we are working on "
     "right now. There is no need to report it again: we will update {number} as soon as it is back."),
    ("Password reset steps", "Service Desk",
     "Hi {requester_first_name},\n\nYou can reset your password yourself at https://password.example.com "
     "(you will need your phone for the code). Reply here if it does not work.\n\n{agent_name}"),
    ("Update the VPN client", "Network",
     "Hi {requester_first_name},\n\nPlease update the VPN client to the latest version from the Software "
     "Centre, restart, and tell us on {number} whether the drops continue.\n\n{agent_name}, Network team"),
]

# name, order, team, keywords, (category parent, child) or None
ASSIGNMENT_RULES = [
    ("Wi-Fi problems to Network", 10, "Network", "wi-fi, wifi, wireless, access point", None),
    ("VPN category to Network", 20, "Network", "", ("Network", "VPN")),
    ("Database words to Database", 30, "Database", "postgres, database, sql query, deadlock", None),
    ("Mail and calendar to Applications", 40, "Applications", "outlook, mailbox, calendar, e-mail", None),
    ("Printers stay with the Service Desk", 50, "Service Desk", "", ("Hardware", "Printer")),
]


def seed_workspace(teams: dict) -> None:
    """Categories, canned responses, assignment rules, and round robin for the first-line team. Idempotent:
    rows are found by title/name and left alone once they exist, so an admin's edits survive a re-seed."""
    for parent_name, children in CATEGORIES.items():
        parent, _ = Category.objects.get_or_create(name=parent_name, parent=None)
        for child in children:
            Category.objects.get_or_create(name=child, parent=parent)
    for title, team, body in CANNED_RESPONSES:
        CannedResponse.objects.get_or_create(title=title, defaults={"body": body,
                                                                    "team": teams[team] if team else None})
    for name, order, team, keywords, category in ASSIGNMENT_RULES:
        defaults = {"order": order, "team": teams[team], "keywords": keywords}
        if category:
            defaults["category"] = Category.objects.get(parent__name=category[0], name=category[1])
        AssignmentRule.objects.get_or_create(name=name, defaults=defaults)
    Team.objects.filter(name="Service Desk", assignment_strategy=Team.Strategy.MANUAL).update(
        assignment_strategy=Team.Strategy.ROUND_ROBIN)


INTAKE_PER_DAY = 12
# A larger history is denser rather than longer: a million incidents span three years (about 900 a day).
HISTORY_MAX_SECONDS = 3 * 365 * 86400


def _status_for_age(rng: random.Random, age_days: float) -> str:
    """A plausible status for an incident raised `age_days` ago: a desk closes what it resolves (auto-close
    after 7 days), so only the last three weeks hold open work; older incidents are closed or cancelled."""
    if age_days > 21:
        return Status.CANCELLED if rng.random() < 0.04 else Status.CLOSED
    status = rng.choice(RECENT_STATUSES)
    if status == Status.RESOLVED and age_days > 7:
        return Status.CLOSED
    if status == Status.NEW and age_days > 3:
        return Status.IN_PROGRESS
    return status


RECENT_STATUSES = ([Status.NEW] * 2 + [Status.IN_PROGRESS] * 4 + [Status.ON_HOLD] * 2 + [Status.RESOLVED] * 3
                   + [Status.CLOSED] * 6 + [Status.CANCELLED])


@transaction.atomic
def seed_tickets(total: int, *, seed: int = 2026, now=None, intake_per_day: float = INTAKE_PER_DAY) -> int:
    """Top the incident table up to `total` rows with realistic, varied incidents. Returns how many it made.

    The history is that of a desk taking `intake_per_day` incidents a day: `total` incidents span
    total / intake_per_day days (at most three years, denser beyond), and the open workload is what the last
    weeks left open. On PostgreSQL the rows are made server-side in a few statements (incidents.seed_bulk,
    about 1M in minutes); elsewhere (SQLite, the local run) bulk_create below."""
    missing = total - Incident.objects.count()
    if missing <= 0:
        return 0
    now = now or timezone.now()
    rng = random.Random(seed + missing)
    # A pool of requesters that grows with the history (40 for a demo, 5,000 at a million), so "my tickets"
    # of one requester stays the size a person has.
    requesters = demo_requesters(max(40, min(5000, total // 200)))
    history_seconds = max(3600, min(HISTORY_MAX_SECONDS, int(total / intake_per_day * 24 * 3600)))
    if connection.vendor == "postgresql":
        from incidents.seed_bulk import seed_tickets_sql

        seed_tickets_sql(missing, now=now, history_seconds=history_seconds,
                         requester_ids=sorted(u.id for u in requesters), seed=(seed + missing) % 1000 / 1000,
                         problems=PROBLEMS, service_categories=SERVICE_CATEGORIES, resolutions=RESOLUTIONS, rng=rng)
        return missing
    services = list(Service.objects.select_related("owner_team").prefetch_related("configuration_items"))
    cis = {s.id: list(s.configuration_items.all()) for s in services}
    categories = {(c.parent.name, c.name): c for c in Category.objects.filter(parent__isnull=False)
                  .select_related("parent")}
    agents_by_team = {}
    for team in Team.objects.prefetch_related("members"):
        agents_by_team[team.id] = list(team.members.all())
    numbers = number_block(Incident.NUMBER_PREFIX, missing)
    rows = []
    for number in numbers:
        service = rng.choice(services)
        title, description, kind = rng.choice(PROBLEMS)
        fitting = [categories[k] for k in SERVICE_CATEGORIES.get(service.name, []) if k in categories]
        category = categories[kind] if kind in categories and categories[kind] in fitting else (
            rng.choice(fitting) if fitting else None)
        impact, urgency = rng.choice(list(DEFAULT_PRIORITY_MATRIX))
        age_seconds = rng.randint(60, history_seconds)
        created = now - timedelta(seconds=age_seconds)
        status = _status_for_age(rng, age_seconds / 86400)
        team = service.owner_team
        members = agents_by_team.get(team.id, []) if team else []
        assignee = rng.choice(members) if members and status != Status.NEW else None
        resolved = status in (Status.RESOLVED, Status.CLOSED)
        # About a third of what is resolved is resolved at first contact, more in the last ten days (since the
        # demo's improvement gave the first line its runbooks); a few resolutions did not hold.
        first_contact = resolved and rng.random() < (0.5 if age_seconds < 10 * 86400 else 0.22)
        reopened = resolved and not first_contact and rng.random() < 0.06
        rows.append(Incident(
            number=number,
            title=title.format(service=service.name),
            description=description,
            requester=rng.choice(requesters),
            service=service,
            configuration_item=rng.choice(cis[service.id]) if cis[service.id] else None,
            category=category,
            channel=rng.choice([Channel.PORTAL, Channel.PORTAL, Channel.EMAIL, Channel.PHONE, Channel.API]),
            impact=impact,
            urgency=urgency,
            priority=DEFAULT_PRIORITY_MATRIX[(impact, urgency)],
            status=status,
            hold_reason=rng.choice(HoldReason.values) if status == Status.ON_HOLD else "",
            assignment_group=team,
            assignee=assignee,
            resolution_code=rng.choice(RESOLUTIONS) if resolved else "",
            resolution_notes="Restarted the service and confirmed with the caller." if resolved else "",
            first_responded_at=(min(now, created + timedelta(minutes=rng.randint(5, 240)))
                                if status != Status.NEW else None),
            resolved_at=min(now, created + timedelta(hours=rng.randint(1, 72))) if resolved else None,
            # Stamped when closed or cancelled, as the services do (a cancelled one at its last change, below).
            closed_at=(min(now, created + timedelta(days=rng.randint(4, 10))) if status == Status.CLOSED
                       else min(now, created + timedelta(hours=2)) if status == Status.CANCELLED else None),
            created_at=created,
            first_contact=first_contact,
            reopen_count=1 if reopened else 0,
        ))
    Incident.objects.bulk_create(rows, batch_size=2000)
    # bulk_create stamps updated_at with now (auto_now); one UPDATE gives each a plausible last change.
    ids = Incident.objects.filter(number__in=numbers).values_list("id", flat=True)
    Incident.objects.filter(id__in=ids).update(updated_at=Least(F("created_at") + timedelta(hours=2), Value(now)))
    incident_type = ContentType.objects.get_for_model(Incident)
    TimelineEntry.objects.bulk_create(
        [
            TimelineEntry(content_type=incident_type, object_id=i.id, kind=TimelineEntry.Kind.SYSTEM,
                          body=f"Incident raised through {i.get_channel_display().lower()}",
                          data={"event": "created", "priority": i.priority}, created_at=i.created_at)
            for i in Incident.objects.filter(number__in=numbers).only("id", "channel", "priority", "created_at")
        ],
        batch_size=5000,
    )
    search_refresh(list(ids))
    _seed_ratings(rng, numbers, now)
    return missing


RATING_COMMENTS = {
    5: ["Fixed in minutes, thank you!", "Very friendly and quick.", "Great help, explained everything."],
    4: ["Sorted, took a while to hear back.", "Good, works again."],
    3: ["Works now, but I had to chase it.", ""],
    2: ["Took three days for a small thing.", "Nobody told me it was fixed."],
    1: ["Closed without asking me: still broken.", "Had to explain it three times."],
}


def _seed_ratings(rng: random.Random, numbers, now) -> None:
    """About a third of the requesters rate their resolved incident, mostly well, some with a comment."""
    from servicedesk.models import Rating

    incident_type = ContentType.objects.get_for_model(Incident)
    ratings = []
    for i in (Incident.objects.filter(number__in=numbers, status__in=(Status.RESOLVED, Status.CLOSED))
              .only("id", "number", "requester_id", "resolved_at", "first_contact")):
        if rng.random() > 0.35:
            continue
        score = rng.choices([5, 4, 3, 2, 1], weights=[50 if i.first_contact else 35, 30, 12, 8, 5])[0]
        at = min(now, i.resolved_at + timedelta(hours=rng.randint(1, 30)))
        comment = rng.choice(RATING_COMMENTS[score]) if rng.random() < 0.5 else ""
        ratings.append(Rating(content_type=incident_type, object_id=i.id, number=i.number, score=score,
                              comment=comment, by_id=i.requester_id, created_at=at, updated_at=at))
    Rating.objects.bulk_create(ratings, batch_size=2000, ignore_conflicts=True)


# --- SLA clocks ---------------------------------------------------------------------------------------

# title, service, category, (impact, urgency), [(minutes before the seed, step)], what its clocks show. P2 runs
# on the 24x7 calendar, so those states hold on any weekday; the P3 one runs on office hours.
SHOWCASE = [
    ("Payroll export fails for the whole finance team", "ERP", ("Software", "Error"), (1, 2),
     [(9 * 60, "raise"), (8 * 60 + 50, "start")], "past due: the first sweep breaches it and mails the lead"),
    ("New starter cannot log in to the CRM", "CRM", ("Access", "Password"), (1, 2),
     [(25, "raise"), (20, "start"), (10, "hold")], "paused awaiting the caller after 15 running minutes"),
    ("Team printer on floor 2 prints blank pages", "Printing", ("Hardware", "Printer"), (2, 2),
     [(10, "raise"), (5, "start")], "running on office hours"),
    ("Checkout page timed out for some customers", "Checkout", ("Software", "Error"), (1, 2),
     [(180, "raise"), (175, "start"), (160, "resolve")], "resolved in 20 minutes: both clocks met"),
    ("Shared mailbox stopped receiving mail", "E-mail", ("Software", "Error"), (1, 2),
     [(12 * 60, "raise"), (11 * 60, "start"), (120, "resolve")], "resolved after 10 hours: both breached"),
]
# Bulk-inserted incidents given clocks, at most: open ones (one sync each) and finished ones (a replay of three
# syncs each, the newest). `dev.py run`'s 300 incidents all get theirs; large N stays fast.
DEMO_CLOCKS = 300
DEMO_HISTORY = 60


def seed_showcase(now=None) -> int:
    """Raise the showcase incidents through the services, each step at its own past instant. Returns how many
    it made (those whose title exists are left alone)."""
    from django.contrib.auth import get_user_model

    from incidents.services import incident_create, incident_transition

    now = now or timezone.now()
    users = get_user_model().objects.in_bulk(["requester", "agent"], field_name="username")
    desk = Team.objects.filter(name="Service Desk").first()
    if len(users) < 2 or desk is None:
        return 0
    existing = set(Incident.objects.filter(title__in=[s[0] for s in SHOWCASE]).values_list("title", flat=True))
    services = {s.name: s for s in Service.objects.all()}
    categories = {(c.parent.name, c.name): c for c in Category.objects.filter(parent__isnull=False)
                  .select_related("parent")}
    made = 0
    for title, service, category, (impact, urgency), steps, _shows in SHOWCASE:
        if title in existing:
            continue
        incident = None
        for minutes, step in steps:
            at = now - timedelta(minutes=minutes)
            if step == "raise":
                incident = incident_create(title=title, requester=users["requester"], created_by=users["agent"],
                                           impact=impact, urgency=urgency, service=services.get(service),
                                           category=categories.get(category),
                                           assignment_group=desk, assignee=users["agent"], channel=Channel.PHONE,
                                           now=at)
            elif step == "start":
                incident_transition(incident_id=incident.id, to=Status.IN_PROGRESS, actor=users["agent"], now=at)
            elif step == "hold":
                incident_transition(incident_id=incident.id, to=Status.ON_HOLD, actor=users["agent"], now=at,
                                    hold_reason=HoldReason.AWAITING_CALLER, reason="Asked for the error message")
            elif step == "resolve":
                incident_transition(incident_id=incident.id, to=Status.RESOLVED, actor=users["agent"], now=at,
                                    resolution_code="fixed", resolution_notes="Restarted the stuck service.")
        made += 1
    return made


def seed_clocks(*, now=None, limit: int = DEMO_CLOCKS, history: int = DEMO_HISTORY) -> int:
    """Clocks for incidents that have none (bulk-inserted ones): at most `limit` open ones and `history`
    finished ones, newest first. Returns how many incidents got clocks."""
    now = now or timezone.now()
    with_clocks = SlaClock.objects.filter(ticket_type=TICKET_TYPE).values("ticket_id")
    bare = Incident.objects.exclude(id__in=with_clocks).select_related("requester").order_by("-created_at")
    open_ones = list(bare.filter(status__in=OPEN)[:limit])
    closed_ones = list(bare.exclude(status__in=OPEN)[:history])
    for incident in open_ones:
        incident_sla_sync(incident, now=now, reason="Demo data loaded")
    for incident in closed_ones:
        _replay(incident)
    return len(open_ones) + len(closed_ones)


def _replay(incident: Incident) -> None:
    """A finished incident's clocks as its services would have moved them: raised, first reply, resolved (or
    cancelled), each at its recorded instant."""
    end = incident.resolved_at or incident.closed_at or incident.updated_at
    raised = replace(incident_facts(incident), status=Status.NEW, status_label=Status.NEW.label,
                     responded=False, resolved=False, cancelled=False)
    clocks_sync(raised, now=incident.created_at, reason="Incident raised")
    replied = incident.first_responded_at
    if replied is not None and incident.created_at < replied < end:
        clocks_sync(replace(raised, status=Status.IN_PROGRESS, status_label=Status.IN_PROGRESS.label,
                            responded=True), now=replied, reason="First public reply")
    incident_sla_sync(incident, now=max(end, incident.created_at),
                      reason="Cancelled" if incident.status == Status.CANCELLED else "Resolved")


@transaction.atomic
def seed_incidents(*, tickets: int = 0) -> str:
    teams = {team.name: team for team in Team.objects.all()}
    seed_workspace(teams)
    showcase = seed_showcase()
    made = seed_tickets(tickets) if tickets else 0
    clocked = seed_clocks()
    return f"{showcase} showcase and {made} generated incidents; clocks for {clocked} more"
