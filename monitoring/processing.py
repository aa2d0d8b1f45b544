"""Processing: what each stored event means. Run by the worker (outbox handler "monitoring.process"), one event
at a time in id order, each in its own savepoint, idempotent: an event already processed is skipped, and an
event the alert already knows (the same dedup key: Alertmanager re-sending a notification, a client retrying)
changes nothing.

For a firing event:
1. classify: the first matching Rule (or the defaults by severity) says informational / warning / exception,
   may suppress, and may set priority, service and team; an active maintenance window suppresses;
2. deduplicate: the live Alert of (source, fingerprint) takes the repeat (count, last seen), or a new one opens;
   firing again within the reopen window brings a cleared alert back;
3. correlate: an exception alert with no incident joins the open incident of a live alert of the same service,
   CI or Alertmanager group seen within the correlation window, else opens one (incidents.services);
4. track flapping: N status changes in M minutes hold the alert as flapping: its incident is left alone until it
   settles (flap_settle, run by beat).
For a resolved event the alert clears; when no alert of its incident fires any more, the incident is resolved,
or only noted (rule or settings, and always noted when a person has worked on it and the settings say so).
Incidents are only ever written through incidents.services.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from incidents.models import Incident
from incidents.states import OPEN, Status
from monitoring.models import (
    SEVERITY_RANK,
    Alert,
    Classification,
    Event,
    EventSource,
    MaintenanceWindow,
    MonitoringSettings,
    Rule,
    Severity,
)
from servicedesk.locks import advisory_xact_lock
from servicedesk.models import ConfigurationItem, Criticality, PriorityRule, Service, Team, TimelineEntry
from servicedesk.refcache import reference_data
from servicedesk.services import DEFAULT_PRIORITY_MATRIX

log = logging.getLogger(__name__)
Outcome = Event.Outcome

MONITORING_USERNAME = "monitoring"
DEFAULT_CLASSIFICATION = {
    Severity.CRITICAL: Classification.EXCEPTION, Severity.MAJOR: Classification.EXCEPTION,
    Severity.MINOR: Classification.WARNING, Severity.WARNING: Classification.WARNING,
    Severity.INFO: Classification.INFORMATIONAL,
}
# How urgent an exception is, by severity; the impact comes from the service's criticality.
URGENCY = {Severity.CRITICAL: 1, Severity.MAJOR: 2, Severity.MINOR: 3, Severity.WARNING: 3, Severity.INFO: 3}
IMPACT = {Criticality.CRITICAL: 1, Criticality.HIGH: 1, Criticality.MEDIUM: 2, Criticality.LOW: 3}
# Outcomes after which an event's dedup key counts as known.
APPLIED = (Outcome.ALERT_OPENED, Outcome.ALERT_UPDATED, Outcome.ALERT_CLEARED)


def monitoring_user():
    """The account monitoring's incidents are raised for and its timeline lines are written by; nobody signs
    in with it (no usable password, no role)."""
    user, created = get_user_model().objects.get_or_create(
        username=MONITORING_USERNAME, defaults={"first_name": "Monitoring", "is_active": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _read_configuration(now) -> dict:
    return {"settings": MonitoringSettings.current(),
            "rules": list(Rule.objects.filter(enabled=True).select_related("service", "team")),
            # Windows that ended more than a day ago cannot hold an event back; `_in_maintenance` checks the times.
            "windows": list(MaintenanceWindow.objects.filter(ends_at__gt=now - timedelta(days=1))),
            "user": monitoring_user()}


# Every batch of events read these four again (a fifth of a batch's processing): now once for every worker, until
# an admin saves or deletes a rule, a window or the settings, or a service, team or user a rule may point at (a
# deleted one is set to NULL on the rule without a signal of the rule's own), at most a minute
# (servicedesk.refcache; connected when the app is ready, monitoring/apps.py, so every process drops it).
_configuration = reference_data("monitoring:processing", lambda: _read_configuration(timezone.now()),
                                models=[MonitoringSettings, Rule, MaintenanceWindow, Service, Team, get_user_model()],
                                seconds=60)


@dataclass
class Batch:
    """One chunk's snapshot: its live alerts by (source, fingerprint), the dedup keys applied, what changed."""

    alerts: dict[tuple[int, str], Alert]
    known: set[tuple[int, str]]
    dirty: dict[int, tuple[Alert, set[str]]] = field(default_factory=dict)
    new: list[Alert] = field(default_factory=list)


@dataclass
class Context:
    """What processing a batch reads again and again, read once: settings, rules, windows, names."""

    now: datetime
    settings: MonitoringSettings
    rules: list[Rule]
    windows: list[MaintenanceWindow]
    services: dict[str, Service | None] = field(default_factory=dict)
    cis: dict[str, ConfigurationItem | None] = field(default_factory=dict)
    user: object = None
    sources: dict[int, EventSource] = field(default_factory=dict)
    batch: Batch | None = None

    @classmethod
    def load(cls, now=None) -> "Context":
        """The settings, rules and maintenance windows processing reads: as of `now` when given (a test, a
        replay), else as kept for every worker (`_configuration`: read once, dropped when any of them changes)."""
        if now is None:
            return cls(now=timezone.now(), **_configuration())
        return cls(now=now, **_read_configuration(now))

    def service(self, name: str) -> Service | None:
        if name not in self.services:
            self.names_prefetch(services={name})
        return self.services[name]

    def names_prefetch(self, *, services=(), cis=()) -> None:
        """Find the services and CIs these names give (case-insensitively, through the indexes on lower(name)),
        one query per model for all the names not seen yet: a chunk naming 500 hosts costs two queries."""
        for model, cache, names in ((Service, self.services, services), (ConfigurationItem, self.cis, cis)):
            wanted = set(names) - set(cache)
            if not wanted:
                continue
            lowered = {name.lower() for name in wanted if name}
            found = {}
            if lowered:
                for obj in model.objects.annotate(lname=Lower("name")).filter(lname__in=lowered).order_by("id"):
                    found.setdefault(obj.lname, obj)
            for name in wanted:
                cache[name] = found.get(name.lower()) if name else None

    def source(self, source_id: int) -> EventSource:
        if source_id not in self.sources:
            self.sources[source_id] = (EventSource.objects.select_related("default_service",
                                                                          "default_configuration_item")
                                       .get(id=source_id))
        return self.sources[source_id]

    def ci(self, name: str) -> ConfigurationItem | None:
        if name not in self.cis:
            self.names_prefetch(cis={name})
        return self.cis[name]


# --- entry points -----------------------------------------------------------------------------------------

CHUNK = 500


def process_events(event_ids: list[int], *, now=None) -> dict[str, int]:
    """Process the events not processed yet, in id order; returns the outcomes counted.

    Events go in chunks of 500, each chunk in one transaction (a savepoint when the caller holds one: the outbox
    handler runs a whole message in its own transaction, so its events are processed all or none): the chunk's
    events, their live alerts and the
    dedup keys already applied are read in three queries, alerts are folded in memory and written back with
    one UPDATE, and only what needs more (a new alert, an incident to open, reopen or resolve) is written as
    it happens. If anything in a chunk raises, the chunk is rolled back and its events are processed one by one,
    each in its own savepoint: an event whose processing raises is then marked `error` with the message
    (admin shows it) and the others go on."""
    ctx = Context.load(now)
    counts: dict[str, int] = {}
    ids = sorted(set(event_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        try:
            with transaction.atomic():
                outcomes = _process_chunk(chunk, ctx)
        except (OperationalError, InterfaceError):
            raise  # the database, not the events: the caller retries (the outbox message, the re-drive)
        except Exception:  # noqa: BLE001 - find the event at fault, one at a time
            log.warning("monitoring: a chunk of %s events failed; processing them one by one", len(chunk),
                        exc_info=True)
            ctx.batch = None
            outcomes = [process_one(event_id, ctx) for event_id in chunk]
        for outcome in outcomes:
            if outcome is not None:
                counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _process_chunk(ids: list[int], ctx: Context) -> list[str]:
    events = list(Event.objects.select_for_update(skip_locked=True)
                  .filter(id__in=ids, processed_at__isnull=True).order_by("id"))
    if not events:
        return []
    source_ids = {e.source_id for e in events}
    alerts = (Alert.objects.select_for_update(of=("self",)).select_related("incident", "rule")
              .filter(live=True, source_id__in=source_ids, fingerprint__in={e.fingerprint for e in events})
              .order_by("id"))
    known = (Event.objects.filter(source_id__in=source_ids, dedup_key__in={e.dedup_key for e in events},
                                  outcome__in=APPLIED).values_list("source_id", "dedup_key"))
    ctx.batch = Batch(alerts={(a.source_id, a.fingerprint): a for a in alerts}, known=set(known))
    ctx.names_prefetch(services={e.service_name for e in events}, cis={e.ci_name for e in events})
    try:
        outcomes = []
        for event in events:
            event.source = ctx.source(event.source_id)
            outcome = _process(event, ctx)
            if outcome in APPLIED:
                ctx.batch.known.add((event.source_id, event.dedup_key))
            event.outcome, event.processed_at = outcome, timezone.now()
            outcomes.append(outcome)
        _flush(ctx)
        rows_update(Event, events, ["outcome", "processed_at", "alert"])
        return outcomes
    finally:
        ctx.batch = None


def process_one(event_id: int, ctx: Context) -> str | None:
    try:
        with transaction.atomic():
            event = (Event.objects.select_for_update(skip_locked=True, of=("self",)).select_related("source")
                     .filter(id=event_id, processed_at__isnull=True).first())
            if event is None:
                return None  # done already, or another worker holds it right now
            outcome = _process(event, ctx)
            event.outcome = outcome
            event.processed_at = timezone.now()
            event.save(update_fields=["outcome", "processed_at", "alert"])
            return outcome
    except (OperationalError, InterfaceError):
        raise  # the database, not the event: the caller retries (the outbox message, the re-drive)
    except Exception as exc:  # noqa: BLE001 - one bad event must not stop the others; it is kept with the error
        log.exception("monitoring: event %s could not be processed", event_id)
        Event.objects.filter(id=event_id, processed_at__isnull=True).update(
            outcome=Outcome.ERROR, error=f"{exc.__class__.__name__}: {exc}"[:4000], processed_at=timezone.now())
        return Outcome.ERROR


def events_redrive(*, older_than=timedelta(minutes=2), batch: int = 5000, now=None) -> int:
    """Beat: process events still unprocessed a while after they arrived (their outbox message failed or was
    purged). Touches only unprocessed rows, through a partial index."""
    now = now or timezone.now()
    ids = list(Event.objects.filter(processed_at__isnull=True, received_at__lte=now - older_than)
               .order_by("received_at").values_list("id", flat=True)[:batch])
    if ids:
        process_events(ids)
    return len(ids)


# --- one event --------------------------------------------------------------------------------------------


def _process(event: Event, ctx: Context) -> str:
    if event.status == Alert.Status.RESOLVED:
        return _resolved(event, ctx)  # clears the live alert of its fingerprint: no service or CI to find
    service = ctx.service(event.service_name) or event.source.default_service
    ci = ctx.ci(event.ci_name) or event.source.default_configuration_item
    rule = match_rule(ctx.rules, event)
    if rule is not None and rule.service_id:
        service = rule.service
    if rule is not None and rule.suppress:
        return Outcome.SUPPRESSED
    if _in_maintenance(ctx.windows, service, ci, event.occurred_at):
        return Outcome.MAINTENANCE
    classification = (rule.classification if rule is not None and rule.classification
                      else DEFAULT_CLASSIFICATION[event.severity])
    if classification == Classification.INFORMATIONAL:
        return Outcome.INFORMATIONAL
    return _firing(event, ctx, rule=rule, classification=classification, service=service, ci=ci)


def match_rule(rules: list[Rule], event: Event) -> Rule | None:
    """The first rule (in order) whose every matcher holds for the event."""
    text = f"{event.summary}\n{event.description}".lower()
    for rule in rules:
        if rule.match_source_id and rule.match_source_id != event.source_id:
            continue
        if rule.match_severities and event.severity not in rule.match_severities:
            continue
        if rule.match_labels and not all(
                (key in event.labels) if want == "*" else event.labels.get(key) == want
                for key, want in rule.match_labels.items()):
            continue
        if rule.match_text and not all(word in text for word in rule.match_text.lower().split()):
            continue
        return rule
    return None


def _in_maintenance(windows, service, ci, at) -> bool:
    return any(
        w.starts_at <= at < w.ends_at
        and ((w.service_id and service is not None and w.service_id == service.id)
             or (w.configuration_item_id and ci is not None and w.configuration_item_id == ci.id))
        for w in windows
    )


# --- alerts: read from the chunk's snapshot, written back once (or at once when processing one event) -----


def _live_alert(event: Event, ctx: Context) -> Alert | None:
    if ctx.batch is not None:
        return ctx.batch.alerts.get((event.source_id, event.fingerprint))
    return (Alert.objects.select_for_update(of=("self",)).select_related("incident", "rule")
            .filter(source_id=event.source_id, fingerprint=event.fingerprint, live=True).first())


def _known(event: Event, ctx: Context) -> bool:
    """The same event (dedup key) was applied before: a re-sent notification or a client's retry."""
    if ctx.batch is not None:
        return (event.source_id, event.dedup_key) in ctx.batch.known
    return (Event.objects.filter(source_id=event.source_id, dedup_key=event.dedup_key, outcome__in=APPLIED)
            .exclude(id=event.id).exists())


def _save(alert: Alert, fields: list[str], ctx: Context) -> None:
    alert.updated_at = timezone.now()
    if ctx.batch is not None and alert.pk is None:
        return  # a new alert of this chunk: inserted as it stands at the next flush
    if ctx.batch is None:
        alert.save(update_fields=[*fields, "updated_at"])
        return
    _, dirty = ctx.batch.dirty.setdefault(alert.id, (alert, set()))
    dirty.update(fields)


def _flush(ctx: Context) -> None:
    """Write the chunk's changed alerts (one UPDATE), then insert its new ones (one INSERT), before anything
    reads alerts from the database. In that order: an alert marked not live makes room for its successor."""
    if ctx.batch is None:
        return
    if ctx.batch.dirty:
        changed = [alert for alert, _ in ctx.batch.dirty.values()]
        fields = sorted(set().union(*(f for _, f in ctx.batch.dirty.values())) | {"updated_at"})
        rows_update(Alert, changed, fields)
        ctx.batch.dirty.clear()
    if ctx.batch.new:
        Alert.objects.bulk_create(ctx.batch.new)
        ctx.batch.new.clear()


def rows_update(model, objs: list, fields: list[str]) -> None:
    """UPDATE the objects' `fields` by primary key: on PostgreSQL one UPDATE ... FROM (VALUES ...) for all of
    them, elsewhere an executemany. What bulk_update does, without its CASE expression per object and field
    (which costs more to build than the database spends writing a few hundred rows)."""
    if not objs:
        return
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    for obj in objs:  # a relation set to an object saved since (a new alert of this chunk): take its id now
        for f in columns:
            if f.is_relation and getattr(obj, f.attname) is None:
                related = obj._state.fields_cache.get(f.name)
                if related is not None:
                    setattr(obj, f.attname, related.pk)
    rows = [[obj.pk] + [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns] for obj in objs]
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg2.extras import execute_values

            sets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns)
            names = ", ".join([pk] + [quote(f.column) for f in columns])
            casts = [meta.pk.db_type(connection)] + [f.rel_db_type(connection) if f.is_relation
                                                     else f.db_type(connection) for f in columns]
            template = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
            execute_values(cursor.cursor, f"UPDATE {table} SET {sets} FROM (VALUES %s) AS v({names}) "
                                          f"WHERE {table}.{pk} = v.{pk}", rows, template=template, page_size=1000)
        else:
            sets = ", ".join(f"{quote(f.column)} = %s" for f in columns)
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = %s", [r[1:] + r[:1] for r in rows])


def _firing(event: Event, ctx: Context, *, rule, classification, service, ci) -> str:
    alert = _live_alert(event, ctx)
    if alert is not None and _known(event, ctx):
        event.alert = alert
        return Outcome.DUPLICATE
    if alert is not None and alert.status == Alert.Status.RESOLVED:
        if alert.cleared_at and alert.cleared_at < ctx.now - timedelta(minutes=ctx.settings.reopen_window_minutes):
            alert.live = False  # resolved long enough ago: this is a new episode
            _save(alert, ["live"], ctx)
            _flush(ctx)  # before a new live alert of this fingerprint is inserted
            if ctx.batch is not None:
                del ctx.batch.alerts[(alert.source_id, alert.fingerprint)]
            alert = None
        elif event.starts_at and alert.starts_at and event.starts_at <= alert.starts_at:
            event.alert = alert
            return Outcome.STALE  # the firing that this alert's resolution already ended, sent late
    if alert is None:
        alert = _alert_open(event, ctx, rule=rule, classification=classification, service=service, ci=ci)
        if alert is None:  # another worker opened it a moment ago: fold into theirs
            return _firing(event, ctx, rule=rule, classification=classification, service=service, ci=ci)
        if ctx.batch is not None:
            ctx.batch.alerts[(alert.source_id, alert.fingerprint)] = alert
        event.alert = alert
        if classification == Classification.EXCEPTION:
            _attach_incident(alert, event, ctx)
        return Outcome.ALERT_OPENED

    event.alert = alert
    fields = ["count", "last_seen"]
    alert.count += 1
    alert.last_seen = max(alert.last_seen, event.occurred_at)
    if SEVERITY_RANK[event.severity] < alert.severity_rank:  # got worse: say so, and maybe it needs an incident
        alert.severity, alert.severity_rank = event.severity, SEVERITY_RANK[event.severity]
        fields += ["severity", "severity_rank"]
        if classification == Classification.EXCEPTION and alert.classification != classification:
            alert.classification = classification
            fields.append("classification")
    refired = alert.status == Alert.Status.RESOLVED
    if refired:
        alert.status, alert.cleared_at, alert.starts_at = Alert.Status.FIRING, None, event.starts_at or event.occurred_at
        fields += ["status", "cleared_at", "starts_at"]
        _change(alert, event, ctx, fields)
    _save(alert, fields, ctx)
    if alert.classification == Classification.EXCEPTION and not alert.flapping:
        if alert.incident_id is None or alert.incident.status in (Status.CLOSED, Status.CANCELLED):
            _attach_incident(alert, event, ctx)
        elif refired:
            _incident_refired(alert, ctx)
    return Outcome.ALERT_UPDATED


def _alert_open(event: Event, ctx: Context, *, rule, classification, service, ci) -> Alert | None:
    """A new live alert. In a chunk it is inserted with the chunk's other new alerts at the next flush (one
    INSERT); a concurrent worker's alert of the same fingerprint then fails that INSERT, and the chunk is redone
    one event at a time. Alone, it is inserted now; None when another worker's came first."""
    at = event.occurred_at
    alert = Alert(
        source_id=event.source_id, fingerprint=event.fingerprint, external_id=event.external_id,
        group_key=event.group_key, status=Alert.Status.FIRING, severity=event.severity,
        severity_rank=SEVERITY_RANK[event.severity], classification=classification,
        summary=event.summary or event.external_id or "Alert", description=event.description,
        labels=event.labels, service=service, configuration_item=ci, rule=rule, first_seen=at, last_seen=at,
        starts_at=event.starts_at or at, changes=[at.isoformat()], created_at=ctx.now, updated_at=ctx.now,
    )
    if ctx.batch is not None:
        ctx.batch.new.append(alert)
        return alert
    try:
        with transaction.atomic():
            alert.save(force_insert=True)
            return alert
    except IntegrityError:
        return None


def _change(alert: Alert, event: Event, ctx: Context, fields: list[str]) -> None:
    """Record a firing/resolved change; too many within the flap window mark the alert flapping."""
    window = timedelta(minutes=ctx.settings.flap_minutes)
    at = event.occurred_at
    recent = [t for t in alert.changes if datetime.fromisoformat(t) > at - window][-(ctx.settings.flap_changes + 1):]
    alert.changes = [*recent, at.isoformat()]
    fields.append("changes")
    if not alert.flapping and len(alert.changes) >= ctx.settings.flap_changes:
        alert.flapping, alert.flapping_since = True, ctx.now
        fields += ["flapping", "flapping_since"]
        if alert.incident_id:
            _note(alert.incident_id, ctx, f"Alert “{alert.summary}” is flapping ({len(alert.changes)} changes "
                                          f"in {ctx.settings.flap_minutes} min): the incident is left as it is "
                                          "until it settles.", alert, "flapping")


def _resolved(event: Event, ctx: Context) -> str:
    alert = _live_alert(event, ctx)
    if alert is None:
        return Outcome.NO_ALERT
    event.alert = alert
    if alert.status == Alert.Status.RESOLVED or _known(event, ctx):
        return Outcome.DUPLICATE
    if event.starts_at and alert.starts_at and event.starts_at < alert.starts_at:
        return Outcome.STALE  # the end of an earlier firing, sent late: the current one goes on
    fields = ["status", "cleared_at", "last_seen"]
    alert.status, alert.cleared_at = Alert.Status.RESOLVED, event.occurred_at
    alert.last_seen = max(alert.last_seen, event.occurred_at)
    _change(alert, event, ctx, fields)
    _save(alert, fields, ctx)
    if alert.incident_id and not alert.flapping:
        _incident_recovered(alert, ctx)
    return Outcome.ALERT_CLEARED


# --- incidents --------------------------------------------------------------------------------------------


def _lock_keys(alert: Alert) -> None:
    """Serialise correlation per service, CI and group (PostgreSQL advisory locks until the transaction ends),
    so two workers never open two incidents for one outage."""
    keys = sorted({f"svc:{alert.service_id}" if alert.service_id else "",
                   f"ci:{alert.configuration_item_id}" if alert.configuration_item_id else "",
                   f"grp:{alert.source_id}:{alert.group_key}" if alert.group_key else "",
                   f"fp:{alert.source_id}:{alert.fingerprint}"} - {""})
    for key in keys:  # always in the same order: two workers never wait for each other in a circle
        advisory_xact_lock(f"monitoring-correlate:{key}")


def correlated_incident(alert: Alert, ctx: Context) -> Incident | None:
    """The open incident of another live alert of the same service, CI or Alertmanager group, seen within the
    correlation window."""
    same = Q()
    if alert.service_id:
        same |= Q(service_id=alert.service_id)
    if alert.configuration_item_id:
        same |= Q(configuration_item_id=alert.configuration_item_id)
    if alert.group_key:
        same |= Q(source_id=alert.source_id, group_key=alert.group_key)
    if not same:
        return None
    since = ctx.now - timedelta(minutes=ctx.settings.correlation_window_minutes)
    other = (Alert.objects.filter(same, live=True, last_seen__gte=since, incident__status__in=OPEN)
             .exclude(id=alert.id).select_related("incident").order_by("-last_seen").first())
    return other.incident if other else None


def _attach_incident(alert: Alert, event: Event, ctx: Context) -> None:
    from incidents.services import incident_create

    _flush(ctx)  # correlation reads the other alerts from the database
    _lock_keys(alert)
    incident = correlated_incident(alert, ctx)
    if incident is not None:
        alert.incident = incident
        _save(alert, ["incident"], ctx)
        _note(incident.id, ctx, f"Alert joined: {_describe(alert)}", alert, "alert_joined")
        return
    rule = alert.rule
    impact, urgency = _impact_urgency(alert, rule)
    incident = incident_create(
        title=alert.summary[:200], requester=ctx.user, created_by=None, description=_description(alert, event),
        impact=impact, urgency=urgency, channel="monitoring", service=alert.service,
        configuration_item=alert.configuration_item, assignment_group=rule.team if rule and rule.team_id else None,
        now=ctx.now,
    )
    alert.incident = incident
    _save(alert, ["incident"], ctx)
    _note(incident.id, ctx, f"Opened by alert: {_describe(alert)}", alert, "alert_opened")


def _impact_urgency(alert: Alert, rule: Rule | None) -> tuple[int, int]:
    """From the rule's priority (a pair of the priority matrix that gives it), else the service's criticality
    (impact) and the severity (urgency)."""
    if rule is not None and rule.priority:
        pairs = dict(DEFAULT_PRIORITY_MATRIX)
        pairs.update({(r.impact, r.urgency): r.priority for r in PriorityRule.objects.all()})
        matching = sorted(pair for pair, priority in pairs.items() if priority == rule.priority)
        if matching:
            return matching[0]
    impact = IMPACT.get(alert.service.criticality, 2) if alert.service_id else 2
    return impact, URGENCY[alert.severity]


def _description(alert: Alert, event: Event) -> str:
    lines = [alert.description or alert.summary, "", f"Source: {event.source.name}"]
    lines += [f"{key}: {value}" for key, value in sorted(alert.labels.items())]
    return "\n".join(lines)


def _describe(alert: Alert) -> str:
    where = alert.service.name if alert.service_id else (alert.configuration_item.name
                                                          if alert.configuration_item_id else "")
    return f"{alert.get_severity_display().lower()} “{alert.summary}”" + (f" on {where}" if where else "")


def _note(incident_id: int, ctx: Context, body: str, alert: Alert, event: str) -> None:
    from incidents.services import incident_system_note

    incident_system_note(incident_id=incident_id, body=body, actor=ctx.user,
                         data={"event": event, "alert": alert.id, "source": alert.source_id})


def _incident_refired(alert: Alert, ctx: Context) -> None:
    """A cleared alert fired again within the reopen window: its incident is reopened if it was resolved by
    now, or told so if it is still open."""
    from incidents.services import incident_reopen

    incident = alert.incident
    if incident.status == Status.RESOLVED:
        incident_reopen(incident_id=incident.id, actor=ctx.user,
                        reason=f"Alert “{alert.summary}” fired again")
    _note(incident.id, ctx, f"Alert fired again: {_describe(alert)}", alert, "alert_refired")


def _human_worked_on(incident: Incident, ctx: Context) -> bool:
    """Someone other than monitoring replied, noted or changed the incident."""
    kind = ContentType.objects.get_for_model(Incident)
    return (TimelineEntry.objects.filter(content_type=kind, object_id=incident.id, author__isnull=False)
            .exclude(author=ctx.user).exclude(kind=TimelineEntry.Kind.SYSTEM, data__event="created").exists())


def _incident_recovered(alert: Alert, ctx: Context) -> None:
    """The alert cleared: when none of its incident's alerts still fires (or flaps), the incident recovers."""
    from incidents.services import incident_resolve, incident_resume

    _flush(ctx)  # whether another alert still fires is read from the database
    incident = Incident.objects.get(id=alert.incident_id)
    _note(incident.id, ctx, f"Alert cleared: {_describe(alert)}", alert, "alert_cleared")
    if incident.status not in OPEN:
        return
    if Alert.objects.filter(incident_id=incident.id).filter(Q(status=Alert.Status.FIRING) | Q(flapping=True)).exists():
        return
    mode = (alert.rule.on_recovery if alert.rule_id and alert.rule.on_recovery else ctx.settings.on_recovery)
    if mode == Rule.OnRecovery.NOTE:
        _note(incident.id, ctx, "Every alert of this incident has cleared; resolve it when the service is "
                                "confirmed back (this rule only notes recoveries).", alert, "recovered_note")
        return
    if ctx.settings.recovery_spares_human_work and _human_worked_on(incident, ctx):
        _note(incident.id, ctx, "Every alert of this incident has cleared. A person has worked on it, so "
                                "monitoring leaves resolving it to them.", alert, "recovered_note")
        return
    if incident.status == Status.ON_HOLD:
        incident_resume(incident_id=incident.id, actor=ctx.user, reason="Every alert cleared")
    incident_resolve(incident_id=incident.id, actor=ctx.user, resolution_code=_resolution_code(), force=True,
                     resolution_notes="Resolved by monitoring: every alert of this incident has cleared.")


def _resolution_code() -> str:
    """`fixed`, or the first active code when admins retired that one (a recovery must not fail for it)."""
    from incidents.models import ResolutionCode

    codes = list(ResolutionCode.objects.filter(active=True).order_by("order", "code").values_list("code", flat=True))
    return "fixed" if "fixed" in codes or not codes else codes[0]


# --- flapping ---------------------------------------------------------------------------------------------


def flap_settle(*, now=None, batch: int = 500) -> int:
    """Beat: alerts marked flapping whose last change is older than the flap window have settled. Their incident
    catches up with where they settled: firing opens or reopens it, resolved lets it recover."""
    ctx = Context.load(now)
    since = ctx.now - timedelta(minutes=ctx.settings.flap_minutes)
    settled = 0
    for alert_id in (Alert.objects.filter(flapping=True).order_by("flapping_since")
                     .values_list("id", flat=True)[:batch]):
        with transaction.atomic():
            alert = (Alert.objects.select_for_update(skip_locked=True, of=("self",)).select_related("incident", "rule")
                     .filter(id=alert_id, flapping=True).first())
            if alert is None or (alert.changes and datetime.fromisoformat(alert.changes[-1]) > since):
                continue
            alert.flapping, alert.flapping_since = False, None
            _save(alert, ["flapping", "flapping_since"], ctx)
            settled += 1
            if alert.incident_id:
                _note(alert.incident_id, ctx, f"Alert settled ({alert.get_status_display().lower()}): "
                                              f"{_describe(alert)}", alert, "flap_settled")
            if alert.classification != Classification.EXCEPTION:
                continue
            if alert.status == Alert.Status.FIRING:
                if alert.incident_id is None or alert.incident.status in (Status.CLOSED, Status.CANCELLED):
                    _attach_incident(alert, alert.events.order_by("-id").select_related("source").first(), ctx)
                elif alert.incident.status == Status.RESOLVED:
                    _incident_refired(alert, ctx)
            elif alert.incident_id:
                _incident_recovered(alert, ctx)
    return settled
