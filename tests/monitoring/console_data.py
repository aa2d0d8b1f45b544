"""Read-side test data of the event console (test_console*, test_kpis, test_alerts_api, the browser test):
sources through monitoring.sources, alerts and events straight through the ORM with known times, as processing
would leave them."""

import hashlib
import itertools
from datetime import timedelta

from django.utils import timezone

from monitoring.models import SEVERITY_RANK, Alert, Classification, Event, EventSource
from monitoring.sources import event_source_create

_serial = itertools.count(1)


def make_source(name: str = "Prometheus", kind: str = EventSource.Kind.ALERTMANAGER, **fields) -> EventSource:
    existing = EventSource.objects.filter(name=name).first()
    return existing or event_source_create(name=name, kind=kind, **fields)[0]


def make_alert(source: EventSource, summary: str = "Disk almost full on db1", *, severity: str = "critical",
               status: str = Alert.Status.FIRING, live: bool = True, first_seen=None, last_seen=None,
               **fields) -> Alert:
    now = timezone.now()
    first_seen = first_seen or now - timedelta(minutes=10)
    n = next(_serial)
    fields.setdefault("classification", Classification.EXCEPTION if severity in ("critical", "major")
                      else Classification.WARNING)
    if status == Alert.Status.RESOLVED:
        fields.setdefault("cleared_at", last_seen or now)
    return Alert.objects.create(
        source=source, fingerprint=hashlib.sha256(f"{summary}-{n}".encode()).hexdigest()[:32],
        external_id=f"ext-{n}", status=status, live=live, severity=severity,
        severity_rank=SEVERITY_RANK[severity], summary=summary, first_seen=first_seen,
        last_seen=last_seen or first_seen, **fields)


def make_event(source: EventSource, *, alert: Alert | None = None, received_at=None, status="firing",
               severity="critical", summary="Disk almost full on db1", raw=None, **fields) -> Event:
    n = next(_serial)
    received_at = received_at or timezone.now()
    return Event.objects.create(
        source=source, received_at=received_at, external_id=f"ev-{n}", status=status, severity=severity,
        summary=summary, occurred_at=received_at, fingerprint=alert.fingerprint if alert else f"fp-{n}",
        dedup_key=hashlib.sha256(f"event-{n}".encode()).hexdigest(), raw=raw if raw is not None else {"n": n},
        alert=alert, processed_at=received_at if alert else None,
        outcome=Event.Outcome.ALERT_UPDATED if alert else Event.Outcome.PENDING, **fields)


def fixed_code():
    """The resolution code "fixed" (seeded by incidents' migration; a transactional test run before may have
    emptied the table, so bring it)."""
    from incidents.models import ResolutionCode

    return ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})[0]
