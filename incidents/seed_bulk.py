"""Seeding a large incident history in a few SQL statements (PostgreSQL): `seed_demo --tickets 1000000`.

incidents.demo.seed_tickets builds every incident as a Python object and bulk-inserts them, which takes about a
millisecond per incident: fine for the local run's hundreds, twenty minutes for a million. On PostgreSQL the
same spread of incidents is made server-side by one `INSERT ... SELECT` over `generate_series`, with the
choices that must fit together (a service, one of its CIs, a category that makes sense for it, a problem's
title; an agent of the service's team) drawn from small tables of valid combinations that Python builds from
the demo's own lists, so what is inserted is as coherent as the Python path's. Then one statement each writes
the timelines (raised; taken on; resolved; closed), the search vectors (in the INSERT itself: the same
weighted title A / description B document that incidents.search.search_refresh computes, timeline comments
being none) and the ratings. `setseed` makes a run repeatable.

The spread: creation instants uniform over the history (about three years at a million), ids and numbers
rising with the creation instant as in a real desk, statuses from the age (incidents.demo._status_for_age:
only the last three weeks hold open work, older ones are closed or cancelled), priorities from the default
matrix, one requester in a pool that grows with the size, a location and a workstation name in each
description (the workstation names are rare words, the locations and the problems common ones) so full-text
search has both kinds of word to find.
"""

from django.contrib.contenttypes.models import ContentType
from django.db import connection

from incidents.models import Category, Incident
from servicedesk.bulkload import indexes_deferred, padded_number_sql, worth_deferring
from servicedesk.models import Rating, Service, Team

OFFICES = ["Amsterdam HQ", "Berlin office", "Lisbon office", "Madrid office", "Milan office", "Paris office",
           "Warsaw office", "Dublin office", "Prague office", "Vienna office", "Stockholm office",
           "Oslo office", "Helsinki office", "Copenhagen office", "Brussels office", "Zurich office",
           "Athens office", "Budapest office", "Bucharest office", "Sofia office", "warehouse Rotterdam",
           "warehouse Hamburg", "call centre Porto", "call centre Krakow"]
# Workstation names: WS00000..WS19999, a rare word each (about 50 incidents at a million, 0-1 at ten thousand).
HOSTS = 20000

# Status drawn from the age as incidents.demo._status_for_age does: weights of RECENT_STATUSES (of 18).
_STATUS_SQL = """
    CASE
      WHEN age_days > 21 THEN CASE WHEN r_status < 0.04 THEN 'cancelled' ELSE 'closed' END
      WHEN r_status < 2.0/18 THEN CASE WHEN age_days > 3 THEN 'in_progress' ELSE 'new' END
      WHEN r_status < 6.0/18 THEN 'in_progress'
      WHEN r_status < 8.0/18 THEN 'on_hold'
      WHEN r_status < 11.0/18 THEN CASE WHEN age_days > 7 THEN 'closed' ELSE 'resolved' END
      WHEN r_status < 17.0/18 THEN 'closed'
      ELSE 'cancelled'
    END"""


def _combos(rng, problems, service_categories) -> list[tuple]:
    """Every (service, CI, category, title, description, team, team size) a generated incident may have."""
    services = list(Service.objects.select_related("owner_team").prefetch_related("configuration_items")
                    .order_by("id"))
    categories = {(c.parent.name, c.name): c.id for c in Category.objects.filter(parent__isnull=False)
                  .select_related("parent")}
    sizes = {t.id: t.members.count() for t in Team.objects.all()}
    rows = []
    for service in services:
        fitting = [categories[k] for k in service_categories.get(service.name, []) if k in categories]
        cis = [ci.id for ci in service.configuration_items.all()] or [None]
        for title, description, kind in problems:
            category = categories.get(kind) if categories.get(kind) in fitting else (
                rng.choice(fitting) if fitting else None)
            for ci in cis:
                team = service.owner_team_id
                rows.append((service.id, ci, category, title.format(service=service.name), description,
                             team, sizes.get(team, 0)))
    return rows


def seed_tickets_sql(missing: int, *, now, history_seconds: int, requester_ids: list[int], seed: float,
                     problems, service_categories, resolutions, rng) -> list[int]:
    """Insert `missing` incidents and their timelines, search vectors and ratings. Returns the new ids' range
    as [first, last] (ids rise with the creation instant)."""
    combos = _combos(rng, problems, service_categories)
    agents = [(team.id, n + 1, user.id) for team in Team.objects.prefetch_related("members").order_by("id")
              for n, user in enumerate(sorted(team.members.all(), key=lambda u: u.id))]
    matrix = _priority_matrix()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        cursor.execute("CREATE TEMP TABLE seed_combo (idx int PRIMARY KEY, service_id bigint, ci_id bigint, "
                       "category_id bigint, title text, description text, team_id bigint, team_size int) "
                       "ON COMMIT DROP")
        cursor.executemany("INSERT INTO seed_combo VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                           [(i + 1, *c) for i, c in enumerate(combos)])
        cursor.execute("CREATE TEMP TABLE seed_agent (team_id bigint, idx int, user_id bigint, "
                       "PRIMARY KEY (team_id, idx)) ON COMMIT DROP")
        if agents:
            cursor.executemany("INSERT INTO seed_agent VALUES (%s, %s, %s)", agents)
        cursor.execute("SELECT coalesce(max(id), 0), count(*) FROM incidents_incident")
        before, existing = cursor.fetchone()
    # A big load builds the indexes once afterwards instead of updating twenty of them row by row.
    rebuild = worth_deferring(existing, missing)
    with indexes_deferred("incidents_incident", enabled=rebuild), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO incidents_incident (
                number, title, description, requester_id, created_at, updated_at, version, service_id,
                configuration_item_id, category_id, channel, impact, urgency, priority, status, hold_reason,
                assignment_group_id, assignee_id, major, resolution_code, resolution_notes, first_responded_at,
                resolved_at, closed_at, reopen_count, first_contact, search_vector)
            SELECT 'INC' || {padded_number_sql("seq")}, title, description, requester_id,
                   created_at,
                   least(%(now)s, greatest(created_at + interval '2 hours', first_responded_at, resolved_at,
                                           closed_at)),
                   1, service_id, ci_id, category_id, channel, impact, urgency,
                   (%(matrix)s::int[])[(impact - 1) * 3 + urgency], status,
                   CASE WHEN status = 'on_hold' THEN (ARRAY['awaiting_caller', 'awaiting_vendor',
                        'awaiting_change'])[1 + floor(r_hold * 3)::int] ELSE '' END,
                   team_id, assignee_id, false,
                   CASE WHEN solved THEN (%(resolutions)s::text[])[1 + floor(r_code * %(n_resolutions)s)::int]
                        ELSE '' END,
                   CASE WHEN solved THEN 'Restarted the service and confirmed with the caller.' ELSE '' END,
                   first_responded_at, resolved_at, closed_at,
                   CASE WHEN solved AND NOT first_contact AND r_reopen < 0.06 THEN 1 ELSE 0 END,
                   first_contact,
                   setweight(to_tsvector('english', title), 'A')
                   || setweight(to_tsvector('english', description), 'B')
            FROM (SELECT nextval('sd_number_inc') AS seq, * FROM (  -- once a row, in created_at order
                SELECT *,
                       CASE WHEN status <> 'new' THEN least(%(now)s, created_at + (5 + floor(r_reply * 236))
                            * interval '1 minute') END AS first_responded_at,
                       CASE WHEN solved THEN least(%(now)s, created_at + (1 + floor(r_resolve * 72))
                            * interval '1 hour') END AS resolved_at,
                       CASE WHEN status = 'closed' THEN least(%(now)s, created_at + (4 + floor(r_close * 7))
                            * interval '1 day')
                            WHEN status = 'cancelled' THEN least(%(now)s, created_at + (1 + floor(r_close * 48))
                            * interval '1 hour') END AS closed_at,
                       solved AND r_first < CASE WHEN age_days < 10 THEN 0.5 ELSE 0.22 END AS first_contact,
                       CASE WHEN status <> 'new' THEN (SELECT a.user_id FROM seed_agent a
                            WHERE a.team_id = s.team_id AND a.idx = 1 + floor(s.r_agent * s.team_size)::int)
                            END AS assignee_id
                FROM (
                    SELECT *, status IN ('resolved', 'closed') AS solved
                    FROM (
                        SELECT c.title,
                               c.description || ' Reported from the ' || (%(offices)s::text[])[
                                   1 + floor(r.r_office * %(n_offices)s)::int]
                               || ', workstation WS' || lpad(floor(r.r_host * {HOSTS})::int::text, 5, '0') || '.'
                               AS description,
                               (%(requesters)s::bigint[])[1 + floor(r.r_requester * %(n_requesters)s)::int]
                               AS requester_id,
                               %(now)s - r.age_seconds * interval '1 second' AS created_at,
                               r.age_seconds / 86400.0 AS age_days,
                               c.service_id, c.ci_id, c.category_id, c.team_id, c.team_size,
                               (ARRAY['portal', 'portal', 'email', 'phone', 'api'])[1 + floor(r.r_channel * 5)::int]
                               AS channel,
                               1 + floor(r.r_impact * 3)::int AS impact, 1 + floor(r.r_urgency * 3)::int AS urgency,
                               {_STATUS_SQL.replace("age_days", "(r.age_seconds / 86400.0)")
                                .replace("r_status", "r.r_status")} AS status,
                               r.r_hold, r.r_code, r.r_reopen, r.r_reply, r.r_resolve, r.r_close, r.r_first,
                               r.r_agent
                        FROM (
                            SELECT 60 + floor(random() * (%(history)s - 60))::bigint AS age_seconds,
                                   1 + floor(random() * %(n_combos)s)::int AS combo,
                                   random() AS r_office, random() AS r_host, random() AS r_requester,
                                   random() AS r_channel, random() AS r_impact, random() AS r_urgency,
                                   random() AS r_status, random() AS r_hold, random() AS r_code,
                                   random() AS r_reopen, random() AS r_reply, random() AS r_resolve,
                                   random() AS r_close, random() AS r_first, random() AS r_agent
                            FROM generate_series(1, %(missing)s)
                        ) r JOIN seed_combo c ON c.idx = r.combo
                    ) t
                ) s
                ORDER BY created_at
            ) x) numbered
            """,
            {"now": now, "matrix": matrix, "resolutions": list(resolutions), "n_resolutions": len(resolutions),
             "offices": OFFICES, "n_offices": len(OFFICES), "requesters": requester_ids,
             "n_requesters": len(requester_ids), "history": history_seconds, "n_combos": len(combos),
             "missing": missing},
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM incidents_incident WHERE id > %s", [before])
        first, last = cursor.fetchone()
    with indexes_deferred("servicedesk_timelineentry", enabled=rebuild), connection.cursor() as cursor:
        _timelines(cursor, first, last)
    with connection.cursor() as cursor:
        _ratings(cursor, first, last, now)
    return [first, last]


def _priority_matrix() -> list[int]:
    """The admin-editable impact x urgency matrix as a flat array, impact-major."""
    from servicedesk.services import priority_for

    return [priority_for(impact=impact, urgency=urgency) for impact in (1, 2, 3) for urgency in (1, 2, 3)]


def _timelines(cursor, first: int, last: int) -> None:
    """What the services would have written: raised; taken on (first reply); resolved; closed or cancelled."""
    content_type = ContentType.objects.get_for_model(Incident).id
    cursor.execute(
        """
        INSERT INTO servicedesk_timelineentry (content_type_id, object_id, kind, internal, author_id, body, data,
                                               created_at)
        SELECT %(ct)s, i.id, 'system', false, e.author_id, e.body, e.data, e.at
        FROM incidents_incident i
        CROSS JOIN LATERAL (VALUES
            (1, i.created_at, NULL::bigint,
             'Incident raised through ' || i.channel,
             jsonb_build_object('event', 'created', 'priority', i.priority)),
            (2, i.first_responded_at, i.assignee_id, 'New → In progress',
             jsonb_build_object('event', 'started', 'old', 'new', 'new', 'in_progress', 'hold_reason', '',
                                'reason', '')),
            (3, i.resolved_at, i.assignee_id,
             'In progress → Resolved — ' || i.resolution_code || ': ' || i.resolution_notes,
             jsonb_build_object('event', 'resolved', 'old', 'in_progress', 'new', 'resolved', 'hold_reason', '',
                                'reason', '')),
            (4, i.closed_at, NULL::bigint,
             CASE WHEN i.status = 'cancelled' THEN 'In progress → Cancelled' ELSE 'Resolved → Closed' END,
             jsonb_build_object('event', CASE WHEN i.status = 'cancelled' THEN 'cancelled' ELSE 'closed' END,
                                'old', CASE WHEN i.status = 'cancelled' THEN 'in_progress' ELSE 'resolved' END,
                                'new', i.status, 'hold_reason', '', 'reason', ''))
        ) AS e(step, at, author_id, body, data)
        WHERE i.id BETWEEN %(first)s AND %(last)s AND e.at IS NOT NULL
          AND (e.step <> 2 OR i.status <> 'new')
        ORDER BY i.id, e.step
        """,
        {"ct": content_type, "first": first, "last": last},
    )


RATING_COMMENTS = ["Fixed in minutes, thank you!", "Very friendly and quick.", "Good, works again.",
                   "Sorted, took a while to hear back.", "Works now, but I had to chase it.",
                   "Took three days for a small thing.", "Closed without asking me: still broken."]


def _ratings(cursor, first: int, last: int, now) -> None:
    """About a third of the requesters rate their resolved incident, mostly well, some with a comment."""
    content_type = ContentType.objects.get_for_model(Incident).id
    cursor.execute(
        f"""
        INSERT INTO {Rating._meta.db_table} (content_type_id, object_id, number, score, comment, by_id, created_at,
                                             updated_at)
        SELECT %(ct)s, id, number, score,
               CASE WHEN r_comment < 0.5 THEN (%(comments)s::text[])[8 - score - floor(r_comment * 2)::int]
                    ELSE '' END,
               requester_id, at, at
        FROM (
            SELECT id, number, requester_id, random() AS r_comment,
                   least(%(now)s, resolved_at + (1 + floor(random() * 30)) * interval '1 hour') AS at,
                   CASE WHEN r < CASE WHEN first_contact THEN 0.5 ELSE 0.35 END THEN 5
                        WHEN r < 0.80 THEN 4 WHEN r < 0.90 THEN 3 WHEN r < 0.96 THEN 2 ELSE 1 END AS score
            FROM (SELECT *, random() AS r, random() AS r_rate FROM incidents_incident
                  WHERE id BETWEEN %(first)s AND %(last)s AND status IN ('resolved', 'closed')) i
            WHERE r_rate < 0.35
        ) rated
        ON CONFLICT DO NOTHING
        """,
        {"ct": content_type, "first": first, "last": last, "now": now, "comments": RATING_COMMENTS},
    )
