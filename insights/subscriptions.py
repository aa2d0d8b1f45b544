"""The weekly e-mail of the insights dashboard: subscriptions, the beat sweep that sends what is due, the mail.

A person subscribes for one scope (a team or all their teams; a service or all services) on a weekday and a
local hour, at most once per scope. `next_due_at` is that weekday and hour in the site's time zone
(settings.TIME_ZONE), computed on the calendar so it stays at 07:00 local across daylight-saving changes. The
beat task (insights.tasks.insights_subscriptions_send, every 15 minutes) reads only the rows due (a partial
index on next_due_at of active rows), claims each with SELECT ... FOR UPDATE SKIP LOCKED, and in the same
transaction writes one "email.send" outbox message and moves next_due_at to the next week: two sweeps running at
once never send one subscription twice, and a rolled-back sweep sends nothing. A sweep that runs late (a worker
down for a day) sends once, not once per missed week.

The mail shows the last 7 whole days (ending yesterday) against the 7 before, for the scope as the subscriber
may see it at sending time: a person who no longer belongs to the subscribed team gets the figures of all the
teams they now see, with a line saying so; a person who is no longer staff (or is deactivated) gets nothing and
the subscription is switched off.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from insights.models import Subscription
from insights.scope import ScopeError, insights_allowed, scope_of, teams_visible
from insights.types import Scope, Tile
from servicedesk.errors import InvalidInput, NotAllowed
from servicedesk.notifications import email_enqueue

log = logging.getLogger(__name__)

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TEMPLATE = "insights_weekly"
SWEEP_LIMIT = 500  # per run; the rest waits for the next run (15 minutes)


def site_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def next_due(after: datetime, *, weekday: int, hour: int, tz: ZoneInfo | None = None) -> datetime:
    """The first `weekday` at `hour`:00 local time (in `tz`) strictly after `after`. Computed on the local
    calendar, then made aware, so 07:00 stays 07:00 on both sides of a DST change. On the spring-forward day an
    hour that does not exist (02:00 in Europe) falls an hour later."""
    tz = tz or site_zone()
    local = after.astimezone(tz)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    while True:
        candidate = datetime.combine(day, time(hour), tzinfo=tz)
        # A wall time in the gap does not exist: normalise through UTC (02:00 -> 03:00 summer time).
        candidate = candidate.astimezone(ZoneInfo("UTC")).astimezone(tz)
        if candidate > after:
            return candidate
        day += timedelta(days=7)


def _check_when(weekday, hour) -> tuple[int, int]:
    try:
        weekday = int(weekday)
    except (TypeError, ValueError):
        weekday = -1
    if not 0 <= weekday <= 6:
        raise InvalidInput("weekday: choose a day from 0 (Monday) to 6 (Sunday)", field="weekday")
    try:
        hour = int(hour)
    except (TypeError, ValueError):
        hour = -1
    if not 0 <= hour <= 23:
        raise InvalidInput("hour: choose an hour from 0 to 23", field="hour")
    return weekday, hour


def subscription_set(*, user, team=None, service=None, weekday=0, hour=7, active=True, now=None) -> Subscription:
    """Subscribe `user` (or change the day and hour, or pause with active=False) for the team/service scope;
    one subscription per user, team and service.

    The database refuses duplicates (a unique index on the ids, 0 for none); two concurrent calls never even
    try one: the person's own row is locked first (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the settings open every
    transaction IMMEDIATE, so writers are serialised), then the scope's rows are read with `team IS NULL` /
    `service IS NULL` for None, updated if there is one, created otherwise; a duplicate left by an older
    write is removed."""
    if not insights_allowed(user):
        raise NotAllowed("Only agents, managers and admins receive the insights e-mail.")
    weekday, hour = _check_when(weekday, hour)
    visible = teams_visible(user)
    if team is not None and visible is not None and all(t.id != team.id for t in visible):
        raise InvalidInput(f"team: you do not see {team.name}'s figures", field="team")
    now = now or timezone.now()
    values = {"weekday": weekday, "hour": hour, "active": bool(active),
              "next_due_at": next_due(now, weekday=weekday, hour=hour) if active else None}
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk").first()
        # team=None / service=None filter as IS NULL (an `=` on NULL would match nothing).
        rows = list(Subscription.objects.select_for_update().filter(user=user, team=team, service=service)
                    .order_by("id"))
        if not rows:
            return Subscription.objects.create(user=user, team=team, service=service, **values)
        subscription, extra = rows[0], rows[1:]
        if extra:
            Subscription.objects.filter(id__in=[s.id for s in extra]).delete()
        for name, value in values.items():
            setattr(subscription, name, value)
        subscription.save(update_fields=list(values))
    return subscription


def subscription_pause(*, subscription_id) -> bool:
    """Stop sending a subscription (active off, nothing due), whoever its person is now: it never fails for a
    person who is no longer staff. False when there is no such subscription."""
    return bool(Subscription.objects.filter(id=subscription_id).update(active=False, next_due_at=None))


def subscription_cancel(*, user, team=None, service=None) -> bool:
    """Unsubscribe `user` from the scope; False when there was no such subscription."""
    deleted, _ = Subscription.objects.filter(user=user, team=team, service=service).delete()
    return bool(deleted)


def subscriptions_of(user):
    return Subscription.objects.filter(user=user).select_related("team", "service").order_by("team__name", "id")


# --- the sweep -------------------------------------------------------------------------------------------


def subscriptions_send_due(*, now=None, limit: int = SWEEP_LIMIT) -> int:
    """Queue the weekly mail of every subscription due at `now`; returns how many mails were queued. Each
    subscription is claimed and advanced in its own transaction, with its mail. Its mail is made in a savepoint:
    one that fails (a figure that cannot be read or stored) is logged with the subscription's id, sends nothing
    this week, and its next_due_at still moves a week on, so it neither stops the sweep nor heads the queue of
    every following run."""
    now = now or timezone.now()
    sent = 0
    for _ in range(limit):
        with transaction.atomic():
            subscription = (Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                            .select_related("user", "team", "service")
                            .filter(active=True, next_due_at__lte=now).order_by("next_due_at", "id").first())
            if subscription is None:
                break
            try:
                with transaction.atomic():
                    sent += _send(subscription, now)
            except Exception:
                log.exception("insights subscription %s: the weekly mail could not be made; skipped this week",
                              subscription.id)
                Subscription.objects.filter(id=subscription.id).update(
                    next_due_at=next_due(now, weekday=subscription.weekday, hour=subscription.hour))
    return sent


def _send(subscription: Subscription, now: datetime) -> int:
    user = subscription.user
    if not user.is_active or not insights_allowed(user):
        # No longer staff: nothing to show, and nothing will be; switch it off rather than retry weekly.
        Subscription.objects.filter(id=subscription.id).update(active=False, next_due_at=None)
        log.info("insights subscription %s switched off: %s is not staff any more", subscription.id, user)
        return 0
    Subscription.objects.filter(id=subscription.id).update(
        next_due_at=next_due(now, weekday=subscription.weekday, hour=subscription.hour), last_sent_at=now)
    if not user.email:
        return 0
    context = weekly_context(subscription, today=timezone.localdate(now))
    email_enqueue(template=TEMPLATE, to=[user.email], context=context)
    return 1


def weekly_scope(subscription: Subscription, *, today: date) -> tuple[Scope, str]:
    """The last 7 whole days for the subscription as its person may see them now, and a note when that is not
    what they subscribed to."""
    date_to = today - timedelta(days=1)
    date_from = date_to - timedelta(days=6)
    try:
        return scope_of(subscription.user, date_from=date_from, date_to=date_to, team=subscription.team,
                        service=subscription.service), ""
    except ScopeError:
        scope = scope_of(subscription.user, date_from=date_from, date_to=date_to, service=subscription.service)
        return scope, (f"You no longer see {subscription.team.name}'s figures: these are the figures of all "
                       f"the teams you see now.")


def weekly_tiles(scope: Scope) -> list[Tile]:
    from insights.measures import MEASURES, format_value, measures_and_previous

    now, before = measures_and_previous(scope)
    return [Tile(measure, now.get(key), before.get(key), format_value(key, now.get(key)))
            for key, measure in MEASURES.items()]


TREND_WORDS = {"better": "better", "worse": "worse", "same": "unchanged", "": ""}
ARROWS = {"better": "▲", "worse": "▼", "same": "=", "": ""}


def weekly_context(subscription: Subscription, *, today: date) -> dict:
    """What templates/email/insights_weekly.* read: plain values only (it travels as JSON in the outbox)."""
    from insights.measures import format_value

    scope, note = weekly_scope(subscription, today=today)
    tiles = []
    for tile in weekly_tiles(scope):
        up = None if tile.value is None or tile.previous is None or tile.value == tile.previous \
            else tile.value > tile.previous
        tiles.append({
            "key": tile.measure.key, "label": tile.measure.label, "value": tile.display,
            "previous": format_value(tile.measure.key, tile.previous), "trend": tile.trend,
            "trend_word": TREND_WORDS[tile.trend] if tile.measure.better else
            ("up" if up else "down" if up is False else ("unchanged" if tile.value is not None else "")),
            "arrow": ARROWS[tile.trend] if tile.measure.better else ("↑" if up else "↓" if up is False else ""),
        })
    link = f"{settings.SITE_URL.rstrip('/')}{reverse('agent:insights')}?{urlencode(scope.query())}"
    user = subscription.user
    return {
        "name": user.get_full_name() or user.get_username(),
        "period": f"{scope.date_from:%-d %b} – {scope.date_to:%-d %b %Y}",
        "previous_period": f"{scope.previous().date_from:%-d %b} – {scope.previous().date_to:%-d %b %Y}",
        "team": scope.team_label, "service": scope.service_label, "note": note,
        "tiles": tiles, "dashboard_url": link,
        "manage_url": f"{settings.SITE_URL.rstrip('/')}{reverse('agent:insights_subscriptions')}",
        "weekday": WEEKDAYS[subscription.weekday], "hour": subscription.hour,
    }
