"""Ingestion: turn what a monitoring tool sent into Event rows, stored in bulk in one transaction, and hand
their processing to the outbox on commit.

Validation is plain Python rather than DRF serializers: a batch of 1,000 events is checked in a few
milliseconds, every problem is reported with the path of the value at fault (`events[3].occurred_at: ...`),
and nothing is stored unless the whole payload is valid. The three formats (generic JSON, Alertmanager's
webhook, Grafana's alerting webhook) all become the same normalised event; `raw` keeps what the sender sent.
"""

import hashlib
import json
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from monitoring.models import Event, EventSource, Severity
from servicedesk.outbox import outbox_enqueue

MAX_BATCH = 1000
MAX_TEXT = 10_000
MAX_LABELS = 64
# A timestamp this far in the future is a sender's clock or unit error (milliseconds for seconds...).
MAX_FUTURE = timedelta(minutes=10)
PROCESS_HANDLER = "monitoring.process"

GENERIC_FIELDS = {"source_id", "status", "severity", "summary", "description", "service", "configuration_item",
                  "labels", "occurred_at"}
STATUSES = ("firing", "resolved")
SEVERITIES = frozenset(Severity.values)

# What tools call their severities, mapped onto ours. Anything unknown is a warning (said in docs).
SEVERITY_WORDS = {
    "critical": Severity.CRITICAL, "crit": Severity.CRITICAL, "emergency": Severity.CRITICAL,
    "fatal": Severity.CRITICAL, "page": Severity.CRITICAL, "disaster": Severity.CRITICAL, "p1": Severity.CRITICAL,
    "major": Severity.MAJOR, "error": Severity.MAJOR, "high": Severity.MAJOR, "p2": Severity.MAJOR,
    "minor": Severity.MINOR, "average": Severity.MINOR, "medium": Severity.MINOR, "p3": Severity.MINOR,
    "warning": Severity.WARNING, "warn": Severity.WARNING, "low": Severity.WARNING, "p4": Severity.WARNING,
    "info": Severity.INFO, "information": Severity.INFO, "informational": Severity.INFO, "none": Severity.INFO,
    "ok": Severity.INFO, "p5": Severity.INFO,
}


class PayloadError(Exception):
    """The payload is not acceptable: `errors` maps the path of each bad value to what is wrong with it."""

    def __init__(self, errors: dict[str, str], *, status: int = 400):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.status = status


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = str(part).encode()
        h.update(len(data).to_bytes(4, "big"))
        h.update(data)
    return h.hexdigest()


def derived_fingerprint(source: EventSource, *, labels: dict, service: str, ci: str, summary: str) -> str:
    """For events that carry no id of their own: the same labels (or service, CI and summary) are the same
    alert."""
    if labels:
        return _digest(source.id, json.dumps(labels, sort_keys=True))[:32]
    return _digest(source.id, service, ci, summary.strip().lower())[:32]


def _timestamp(value, path: str, errors: dict, *, now: datetime, required: bool = True) -> datetime | None:
    if value is None:
        if required:
            errors[path] = "required: an ISO 8601 timestamp with a time zone, e.g. 2026-11-29T18:00:42Z"
        return None
    if not isinstance(value, str):
        errors[path] = f"must be an ISO 8601 string, not {type(value).__name__}"
        return None
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        # Go's RFC 3339 with nanoseconds (Alertmanager: 2026-11-29T18:00:42.617226509Z): Python keeps microseconds.
        text = value.strip()
        if "." in text:
            head, _, tail = text.partition(".")
            digits = "".join(c for c in tail if c.isdigit())
            zone = tail[len(digits):]
            try:
                parsed = parse_datetime(f"{head}.{digits[:6]}{zone}")
            except ValueError:
                parsed = None
    if parsed is None:
        errors[path] = f"{value!r} is not an ISO 8601 timestamp"
        return None
    if timezone.is_naive(parsed):
        errors[path] = f"{value!r} has no time zone: add Z or an offset such as +01:00"
        return None
    if parsed > now + MAX_FUTURE:
        errors[path] = f"{value!r} is in the future"
        return None
    return parsed


def _text(value, path: str, errors: dict, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    if value is None or value == "":
        if required:
            errors[path] = "required"
        return ""
    if not isinstance(value, str):
        errors[path] = f"must be a string, not {type(value).__name__}"
        return ""
    if len(value) > limit:
        errors[path] = f"longer than {limit} characters"
        return ""
    return value.strip()


def _labels(value, path: str, errors: dict) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors[path] = f"must be an object of string values, not {type(value).__name__}"
        return {}
    if len(value) > MAX_LABELS:
        errors[path] = f"at most {MAX_LABELS} labels"
        return {}
    for key, item in value.items():
        if not isinstance(item, str):
            errors[f"{path}.{key}"] = f"must be a string, not {type(item).__name__}"
        elif len(item) > 1000 or len(key) > 200:
            errors[f"{path}.{key}"] = "too long (labels: 200 characters per name, 1,000 per value)"
    return value


def _event(source, *, external_id, status, severity, summary, description, service, ci, labels, occurred_at,
           starts_at, fingerprint, group_key, dedup_parts, raw, now) -> dict:
    """One row of monitoring_event, as plain values (the insert is the hot path: no model instances)."""
    return {
        "source_id": source.id, "received_at": now, "external_id": external_id[:200], "status": status,
        "severity": severity, "summary": summary[:300], "description": description, "service_name": service[:160],
        "ci_name": ci[:200], "labels": labels, "occurred_at": occurred_at, "starts_at": starts_at,
        "fingerprint": fingerprint[:128], "group_key": group_key[:500], "dedup_key": _digest(*dedup_parts), "raw": raw,
    }


# --- generic JSON -----------------------------------------------------------------------------------------


def parse_generic(source: EventSource, body, *, now: datetime | None = None) -> list[dict]:
    """`{...}` (one event) or `{"events": [...]}`; see docs/monitoring.md for the fields."""
    now = now or timezone.now()
    if not isinstance(body, dict):
        raise PayloadError({"body": "must be a JSON object: one event, or {\"events\": [...]}"})
    if "events" in body:
        extra = sorted(set(body) - {"events"})
        if extra:
            raise PayloadError({extra[0]: "unknown field beside events (a batch holds only \"events\")"})
        items = body["events"]
        if not isinstance(items, list):
            raise PayloadError({"events": f"must be a list of events, not {type(items).__name__}"})
        if not items:
            raise PayloadError({"events": "empty: send at least one event"})
        if len(items) > MAX_BATCH:
            raise PayloadError({"events": f"{len(items)} events in one batch: at most {MAX_BATCH}"}, status=413)
        prefix = "events[{}]"
    else:
        items, prefix = [body], "{}"
    errors: dict[str, str] = {}
    events: list[dict] = []
    seen: dict[tuple, int] = {}
    for index, item in enumerate(items):
        at = prefix.format(index) if prefix != "{}" else ""

        def path(name: str, at: str = at) -> str:
            return f"{at}.{name}" if at else name

        if not isinstance(item, dict):
            errors[at or "body"] = f"must be an object, not {type(item).__name__}"
            continue
        for name in sorted(set(item) - GENERIC_FIELDS):
            errors[path(name)] = f"unknown field (known: {', '.join(sorted(GENERIC_FIELDS))})"
        status = item.get("status")
        if status not in STATUSES:
            errors[path("status")] = f"required: firing or resolved, not {status!r}" if status is not None \
                else "required: firing or resolved"
        severity = item.get("severity", Severity.WARNING)
        if severity not in SEVERITIES:
            errors[path("severity")] = f"one of {', '.join(Severity.values)}, not {severity!r}"
        external_id = _text(item.get("source_id"), path("source_id"), errors, limit=200)
        summary = _text(item.get("summary"), path("summary"), errors, required=status == "firing" and not external_id,
                        limit=300)
        description = _text(item.get("description"), path("description"), errors)
        service = _text(item.get("service"), path("service"), errors, limit=160)
        ci = _text(item.get("configuration_item"), path("configuration_item"), errors, limit=200)
        labels = _labels(item.get("labels"), path("labels"), errors)
        occurred_at = _timestamp(item.get("occurred_at"), path("occurred_at"), errors, now=now, required=False) \
            if item.get("occurred_at") is not None else now
        if errors:
            continue
        fingerprint = external_id or derived_fingerprint(source, labels=labels, service=service, ci=ci,
                                                         summary=summary)
        key = (fingerprint, status, occurred_at)
        if key in seen:
            errors[at or "body"] = (f"the same event as {prefix.format(seen[key])} (same source_id, status and "
                                    "occurred_at): send it once")
            continue
        seen[key] = index
        events.append(_event(
            source, external_id=external_id, status=status, severity=severity, summary=summary or external_id,
            description=description, service=service, ci=ci, labels=labels, occurred_at=occurred_at,
            starts_at=occurred_at if status == "firing" else None, fingerprint=fingerprint, group_key="",
            dedup_parts=(source.id, fingerprint, status, occurred_at.isoformat()), raw=item, now=now,
        ))
    if errors:
        raise PayloadError(errors)
    return events


# --- Alertmanager (webhook version 4) and Grafana alerting (version 1) -------------------------------------

ZERO_TIME = "0001-01-01T00:00:00Z"


def severity_from(labels: dict, source: EventSource) -> str:
    word = str(labels.get(source.severity_label or "severity", "")).strip().lower()
    return SEVERITY_WORDS.get(word, Severity.WARNING)


def parse_alertmanager(source: EventSource, body, *, now: datetime | None = None, kind: str = "alertmanager") -> list[dict]:
    """One Event per alert of the notification. Unknown top-level fields are ignored (newer Alertmanager and
    Grafana versions add some); what each alert must hold is checked."""
    now = now or timezone.now()
    tool = "Alertmanager" if kind == "alertmanager" else "Grafana"
    if not isinstance(body, dict):
        raise PayloadError({"body": f"must be the JSON object {tool}'s webhook sends"})
    errors: dict[str, str] = {}
    version = body.get("version")
    expected = "4" if kind == "alertmanager" else "1"
    if version is not None and str(version) != expected:
        errors["version"] = f"{tool} webhook version {expected} is supported, not {version!r}"
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        errors["alerts"] = "required: the list of alerts"
        raise PayloadError(errors)
    if len(alerts) > MAX_BATCH:
        raise PayloadError({"alerts": f"{len(alerts)} alerts in one notification: at most {MAX_BATCH}"}, status=413)
    group_key = body.get("groupKey") or ""
    if not isinstance(group_key, str):
        errors["groupKey"] = "must be a string"
        group_key = ""
    common_annotations = body.get("commonAnnotations") if isinstance(body.get("commonAnnotations"), dict) else {}
    events: list[dict] = []
    for index, alert in enumerate(alerts):
        at = f"alerts[{index}]"
        if not isinstance(alert, dict):
            errors[at] = f"must be an object, not {type(alert).__name__}"
            continue
        status = alert.get("status")
        if status not in STATUSES:
            errors[f"{at}.status"] = f"firing or resolved, not {status!r}"
        labels = _labels(alert.get("labels"), f"{at}.labels", errors)
        annotations = alert.get("annotations") or {}
        if not isinstance(annotations, dict):
            errors[f"{at}.annotations"] = "must be an object"
            annotations = {}
        starts_at = _timestamp(alert.get("startsAt"), f"{at}.startsAt", errors, now=now)
        ends_raw = alert.get("endsAt")
        ends_at = None
        if status == "resolved":
            ends_at = _timestamp(ends_raw, f"{at}.endsAt", errors, now=now)
        fingerprint = alert.get("fingerprint")
        if fingerprint is not None and (not isinstance(fingerprint, str) or not fingerprint or len(fingerprint) > 128):
            errors[f"{at}.fingerprint"] = "must be a non-empty string of at most 128 characters"
        if errors:
            continue
        summary = (annotations.get("summary") or annotations.get("title") or labels.get("alertname")
                   or common_annotations.get("summary") or "Alert")
        description = annotations.get("description") or annotations.get("message") or ""
        service = labels.get(source.service_label, "") if source.service_label else ""
        ci = labels.get(source.ci_label, "") if source.ci_label else ""
        fingerprint = fingerprint or derived_fingerprint(source, labels=labels, service=service, ci=ci,
                                                         summary=summary)
        occurred_at = (ends_at if status == "resolved" and ends_at else starts_at)
        events.append(_event(
            source, external_id=fingerprint, status=status, severity=severity_from(labels, source),
            summary=str(summary), description=str(description), service=str(service), ci=str(ci), labels=labels,
            occurred_at=occurred_at, starts_at=starts_at, fingerprint=fingerprint,
            group_key=group_key, dedup_parts=(source.id, fingerprint, status, starts_at.isoformat()),
            raw={**alert, "groupKey": group_key, "receiver": body.get("receiver", "")}, now=now,
        ))
    if errors:
        raise PayloadError(errors)
    return events


def parse_grafana(source: EventSource, body, *, now: datetime | None = None) -> list[dict]:
    return parse_alertmanager(source, body, now=now, kind="grafana")


PARSERS = {"generic": parse_generic, "alertmanager": parse_alertmanager, "grafana": parse_grafana}


# --- storing --------------------------------------------------------------------------------------------


COLUMNS = ("source_id", "received_at", "external_id", "status", "severity", "summary", "description",
           "service_name", "ci_name", "labels", "occurred_at", "starts_at", "fingerprint", "group_key", "dedup_key",
           "raw")
JSON_COLUMNS = {"labels", "raw"}


@transaction.atomic
def events_store(events: list[dict]) -> list[int]:
    """Insert the events and queue their processing as one outbox message, in one transaction: either all of
    them are stored and will be processed, or none is. On PostgreSQL one multi-row INSERT ... RETURNING id
    (psycopg2's execute_values): the ORM's bulk_create costs more in Python than the database spends writing."""
    if not events:
        return []
    if connection.vendor == "postgresql":
        from psycopg2.extras import execute_values

        columns = ", ".join(COLUMNS) + ", outcome, error"
        template = "(" + ", ".join("%s::jsonb" if c in JSON_COLUMNS else "%s" for c in COLUMNS) + ", '', '')"
        rows = [tuple(json.dumps(e[c]) if c in JSON_COLUMNS else e[c] for c in COLUMNS) for e in events]
        with connection.cursor() as cursor:
            ids = [row[0] for row in execute_values(
                cursor.cursor,  # the psycopg2 cursor under Django's wrapper
                f"INSERT INTO {Event._meta.db_table} ({columns}) VALUES %s RETURNING id", rows,
                template=template, page_size=len(rows), fetch=True)]
    else:
        ids = [e.id for e in Event.objects.bulk_create(Event(**event) for event in events)]
    outbox_enqueue(PROCESS_HANDLER, {"event_ids": ids})
    return ids


def ingest(source: EventSource, body, *, kind: str, now: datetime | None = None) -> list[int]:
    """Validate `body` as `kind` from `source` and store it; PayloadError when anything is wrong."""
    return events_store(PARSERS[kind](source, body, now=now))
