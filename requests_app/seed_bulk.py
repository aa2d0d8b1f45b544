"""A large history of service requests for `seed_demo --tickets N` (N requests, like N incidents).

On PostgreSQL one `INSERT ... SELECT generate_series` makes the rows server-side (a million in about a minute),
then one statement their timelines; elsewhere (SQLite, the local run) the same spread is built in Python and
bulk-inserted. Requests span the same history as the incidents (three years at a million); only the last weeks
hold open work (in fulfilment, a few failed), older requests are closed (delivered, or rejected) or cancelled.
No generated request waits for approval: an approval is a row with an approver, which these do not have.
Automated items are delivered by their handler (`fulfilled_by_handler`), the others by an agent of the item's
fulfilment team. Idempotent: tops the table up to N.
"""

import random
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from requests_app.models import CatalogItem, ServiceRequest
from servicedesk.bulkload import indexes_deferred, padded_number_sql, worth_deferring
from servicedesk.models import Team, TimelineEntry
from servicedesk.numbering import number_block

# Same density as incidents.demo: at most three years, denser beyond.
INTAKE_PER_DAY = 12
HISTORY_MAX_SECONDS = 3 * 365 * 86400
NOTES = ["For the new starter in finance.", "Replacement, the old one is broken.", "Needed for the audit.",
         "Project work until the end of the quarter.", "Moving to the Lisbon office.", "Temporary access."]


def _status(r: float, age_days: float) -> str:
    if age_days > 30:
        return "cancelled" if r < 0.08 else "closed"
    if r < 0.30:
        return "in_fulfilment"
    if r < 0.33:
        return "failed"
    if r < 0.50:
        return "closed" if age_days > 7 else "fulfilled"
    return "cancelled" if r > 0.95 else "closed"


@transaction.atomic
def seed_request_history(total: int, *, seed: int = 2026, now=None) -> int:
    """Top the service request table up to `total` rows. Returns how many it made."""
    missing = total - ServiceRequest.objects.count()
    items = list(CatalogItem.objects.filter(active=True).order_by("id"))
    if missing <= 0 or not items:
        return 0
    from servicedesk.demo import demo_requesters

    now = now or timezone.now()
    requesters = sorted(u.id for u in demo_requesters(max(40, min(5000, total // 200))))
    history = max(3600, min(HISTORY_MAX_SECONDS, int(total / INTAKE_PER_DAY * 86400)))
    members = {t.id: sorted(u.id for u in t.members.all()) for t in Team.objects.prefetch_related("members")}
    if connection.vendor == "postgresql":
        _seed_sql(missing, items, requesters, members, history, now, (seed + missing) % 1000 / 1000)
    else:
        _seed_python(missing, items, requesters, members, history, now, random.Random(seed + missing))
    return missing


def _seed_sql(missing, items, requesters, members, history, now, seed) -> None:
    combos = [(n + 1, item.id, item.name, item.fulfilment_team_id, bool(item.handler),
               members.get(item.fulfilment_team_id) or [None]) for n, item in enumerate(items)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        cursor.execute("CREATE TEMP TABLE seed_item (idx int PRIMARY KEY, item_id bigint, name text, team_id bigint, "
                       "automated boolean, agents int[]) ON COMMIT DROP")
        cursor.executemany("INSERT INTO seed_item VALUES (%s, %s, %s, %s, %s, %s)", combos)
        cursor.execute("SELECT coalesce(max(id), 0), count(*) FROM requests_app_servicerequest")
        before, existing = cursor.fetchone()
    rebuild = worth_deferring(existing, missing)
    with indexes_deferred("requests_app_servicerequest", enabled=rebuild), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO requests_app_servicerequest (
                number, title, description, created_at, updated_at, version, answers, priority, status,
                fulfilled_at, closed_at, assignee_id, assignment_group_id, created_by_id, item_id, requester_id,
                updated_by_id, fulfilled_by_handler)
            SELECT 'REQ' || {padded_number_sql("seq")}, name, description, created_at,
                   least(%(now)s, greatest(created_at + interval '1 hour', fulfilled_at, closed_at)), 1, '{{}}',
                   4, status, fulfilled_at, closed_at,
                   CASE WHEN NOT automated OR status = 'failed' THEN agent END, team_id, requester_id, item_id,
                   requester_id, NULL, automated AND fulfilled_at IS NOT NULL
            FROM (SELECT nextval('sd_number_req') AS seq, * FROM (  -- once a row, in created_at order
                SELECT *,
                       CASE WHEN status IN ('fulfilled', 'closed') AND NOT rejected
                            THEN least(%(now)s, created_at + CASE WHEN automated THEN interval '2 minutes'
                                 ELSE (2 + floor(r_fulfil * 96)) * interval '1 hour' END) END AS fulfilled_at,
                       CASE WHEN status IN ('closed', 'cancelled')
                            THEN least(%(now)s, created_at + (3 + floor(r_close * 8)) * interval '1 day') END
                            AS closed_at
                FROM (
                    SELECT i.name, i.team_id, i.automated, i.item_id,
                           i.agents[1 + floor(r.r_agent * array_length(i.agents, 1))::int] AS agent,
                           CASE WHEN r.r_note < 0.3 THEN (%(notes)s::text[])[1 + floor(r.r_note * 20)::int]
                                ELSE '' END AS description,
                           (%(requesters)s::int[])[1 + floor(r.r_requester * %(n_requesters)s)::int]
                           AS requester_id,
                           %(now)s - r.age_seconds * interval '1 second' AS created_at,
                           CASE WHEN r.age_seconds > 30 * 86400
                                THEN CASE WHEN r.r_status < 0.08 THEN 'cancelled' ELSE 'closed' END
                                WHEN r.r_status < 0.30 THEN 'in_fulfilment'
                                WHEN r.r_status < 0.33 THEN 'failed'
                                WHEN r.r_status < 0.50 THEN CASE WHEN r.age_seconds > 7 * 86400 THEN 'closed'
                                                                 ELSE 'fulfilled' END
                                WHEN r.r_status > 0.95 THEN 'cancelled' ELSE 'closed' END AS status,
                           NOT i.automated AND r.r_reject < 0.04 AS rejected,
                           r.r_fulfil, r.r_close
                    FROM (
                        SELECT 60 + floor(random() * (%(history)s - 60))::bigint AS age_seconds,
                               1 + floor(random() * %(n_items)s)::int AS idx,
                               random() AS r_agent, random() AS r_note, random() AS r_requester,
                               random() AS r_status, random() AS r_reject, random() AS r_fulfil, random() AS r_close
                        FROM generate_series(1, %(missing)s)
                    ) r JOIN seed_item i ON i.idx = r.idx
                ) s
                ORDER BY created_at
            ) x) numbered
            """,
            {"now": now, "notes": NOTES, "requesters": requesters, "n_requesters": len(requesters),
             "history": history, "n_items": len(items), "missing": missing},
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM requests_app_servicerequest WHERE id > %s", [before])
        first, last = cursor.fetchone()
    with indexes_deferred("servicedesk_timelineentry", enabled=rebuild), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO servicedesk_timelineentry (content_type_id, object_id, kind, internal, author_id, body, data,
                                                   created_at)
            SELECT %(ct)s, r.id, 'system', false, e.author_id, e.body, e.data, e.at
            FROM requests_app_servicerequest r
            CROSS JOIN LATERAL (VALUES
                (r.created_at, r.requester_id, 'Requested ' || r.title,
                 jsonb_build_object('event', 'created', 'item', r.item_id)),
                (r.created_at, NULL::int, 'In fulfilment',
                 jsonb_build_object('event', 'status', 'from', 'submitted', 'to', 'in_fulfilment')),
                (r.fulfilled_at, r.assignee_id, 'Fulfilled',
                 jsonb_build_object('event', 'status', 'from', 'in_fulfilment', 'to', 'fulfilled')),
                (r.closed_at, NULL::int, CASE WHEN r.status = 'cancelled' THEN 'Cancelled' ELSE 'Closed' END,
                 jsonb_build_object('event', 'status', 'from', CASE WHEN r.fulfilled_at IS NULL THEN 'in_fulfilment'
                                    ELSE 'fulfilled' END, 'to', r.status))
            ) AS e(at, author_id, body, data)
            WHERE r.id BETWEEN %(first)s AND %(last)s AND e.at IS NOT NULL
            ORDER BY r.id, e.at
            """,
            {"ct": ContentType.objects.get_for_model(ServiceRequest).id, "first": first, "last": last},
        )


def _seed_python(missing, items, requesters, members, history, now, rng) -> None:
    """The same spread, built in Python (SQLite)."""
    numbers = number_block(ServiceRequest.NUMBER_PREFIX, missing)
    rows = []
    for number in numbers:
        item = rng.choice(items)
        age = rng.randint(60, history)
        created = now - timedelta(seconds=age)
        status = _status(rng.random(), age / 86400)
        rejected = not item.handler and rng.random() < 0.04
        fulfilled = (min(now, created + (timedelta(minutes=2) if item.handler else
                                         timedelta(hours=rng.randint(2, 97))))
                     if status in ("fulfilled", "closed") and not rejected else None)
        closed = min(now, created + timedelta(days=rng.randint(3, 10))) if status in ("closed", "cancelled") else None
        agents = members.get(item.fulfilment_team_id) or [None]
        rows.append(ServiceRequest(
            number=number, title=item.name, description=rng.choice(NOTES) if rng.random() < 0.3 else "",
            requester_id=(requester := rng.choice(requesters)), item=item,
            status=status, assignment_group_id=item.fulfilment_team_id,
            assignee_id=rng.choice(agents) if not item.handler or status == "failed" else None,
            created_by_id=requester, fulfilled_at=fulfilled, closed_at=closed,
            fulfilled_by_handler=bool(item.handler) and fulfilled is not None, created_at=created))
    ServiceRequest.objects.bulk_create(rows, batch_size=2000)
    content_type = ContentType.objects.get_for_model(ServiceRequest)
    made = ServiceRequest.objects.filter(number__in=numbers).only("id", "title", "item_id", "requester_id",
                                                                   "created_at")
    TimelineEntry.objects.bulk_create(
        [TimelineEntry(content_type=content_type, object_id=r.id, kind=TimelineEntry.Kind.SYSTEM,
                       author_id=r.requester_id, body=f"Requested {r.title}",
                       data={"event": "created", "item": r.item_id}, created_at=r.created_at) for r in made],
        batch_size=5000)
