"""The event-management figures of the KPI page, each computed in SQL (Trunc*, Count(filter=...), Avg over
datetime differences: date_trunc and FILTER on PostgreSQL; the same ORM expressions run on SQLite for the local
run). A handful of aggregate queries whatever the number of events; empty buckets are filled in Python.

- events per minute: events received per bucket of the period (a minute for the last hour, an hour for a day
  or a week, a day for 30 days), spelled as a rate per minute (count / minutes in the bucket);
- open alerts now: live firing alerts by severity (with the unacknowledged and flapping ones);
- noise reduction: of the period, events received -> alerts first seen -> incidents those alerts belong to,
  and the ratios events per incident and alerts per incident;
- MTTA / MTTR: mean of acknowledged_at - first_seen and of cleared_at - first_seen, over the alerts first seen
  in the period (those acknowledged / cleared), overall and by severity.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Avg, Count, F, Q
from django.db.models.functions import TruncDay, TruncHour, TruncMinute
from django.utils import timezone

from monitoring.models import Alert, Event, Severity


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    length: timedelta
    bucket: str  # minute | hour | day

    @property
    def bucket_minutes(self) -> int:
        return {"minute": 1, "hour": 60, "day": 1440}[self.bucket]


PERIODS = {
    "1h": Period("1h", "Last hour", timedelta(hours=1), "minute"),
    "24h": Period("24h", "Last 24 hours", timedelta(hours=24), "hour"),
    "7d": Period("7d", "Last 7 days", timedelta(days=7), "hour"),
    "30d": Period("30d", "Last 30 days", timedelta(days=30), "day"),
}
DEFAULT_PERIOD = "24h"
TRUNC = {"minute": TruncMinute, "hour": TruncHour, "day": TruncDay}


def period_of(key: str | None) -> Period:
    """The period a query parameter names; ValueError naming the choices for anything else."""
    key = (key or DEFAULT_PERIOD).strip()
    if key not in PERIODS:
        raise ValueError(f"period: choose one of {', '.join(PERIODS)}")
    return PERIODS[key]


def _floor(moment: datetime, bucket: str) -> datetime:
    """The start of `moment`'s bucket in the current time zone (what Trunc* answers in SQL)."""
    local = timezone.localtime(moment)
    if bucket == "minute":
        return local.replace(second=0, microsecond=0)
    if bucket == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return timezone.make_aware(datetime.combine(local.date(), time.min))


def _buckets(start: datetime, now: datetime, bucket: str) -> list[datetime]:
    """Every bucket start from the one holding `start` to the one holding `now`. Minutes and hours step in
    absolute time (a DST change neither skips nor repeats one); days step by calendar date."""
    first, out = _floor(start, bucket), []
    if bucket == "day":
        day = first.date()
        while day <= timezone.localtime(now).date():
            out.append(timezone.make_aware(datetime.combine(day, time.min)))
            day += timedelta(days=1)
        return out
    step = timedelta(minutes=1 if bucket == "minute" else 60)
    moment = first
    while moment <= now:
        out.append(_floor(moment, bucket))
        moment += step
    return list(dict.fromkeys(out))


def events_per_minute(period: Period, now=None) -> dict:
    """Events received per bucket as a rate per minute, oldest first, empty buckets as 0; one query."""
    now = now or timezone.now()
    start = now - period.length
    buckets = _buckets(start, now, period.bucket)
    rows = (Event.objects.filter(received_at__gte=buckets[0], received_at__lte=now).order_by()
            .annotate(at=TRUNC[period.bucket]("received_at")).values("at").annotate(n=Count("id")))
    counts = {row["at"]: row["n"] for row in rows}
    minutes = period.bucket_minutes
    points = [{"at": at, "events": counts.get(at, 0), "per_minute": round(counts.get(at, 0) / minutes, 2)}
              for at in buckets]
    total = sum(p["events"] for p in points)
    peak = max(points, key=lambda p: p["per_minute"]) if points else None
    return {"bucket": period.bucket, "points": points, "total": total,
            "mean_per_minute": round(total / max((now - buckets[0]).total_seconds() / 60, 1), 2),
            "peak": peak}


def open_alerts(now=None) -> dict:
    """Live firing alerts by severity (most severe first), unacknowledged and flapping; one aggregate."""
    firing = Q(status=Alert.Status.FIRING)
    figures = Alert.objects.filter(live=True).order_by().aggregate(
        total=Count("id", filter=firing),
        unacknowledged=Count("id", filter=firing & Q(acknowledged_at__isnull=True)),
        flapping=Count("id", filter=firing & Q(flapping=True)),
        **{f"sev_{s}": Count("id", filter=firing & Q(severity=s)) for s in Severity.values},
    )
    return {
        "total": figures["total"], "unacknowledged": figures["unacknowledged"], "flapping": figures["flapping"],
        "by_severity": [{"severity": s.value, "label": s.label, "count": figures[f"sev_{s.value}"]}
                        for s in Severity],
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 1) if b else None


def noise(period: Period, now=None) -> dict:
    """Events received in the period, alerts first seen in it, and the incidents those alerts belong to
    (opened by them or correlated onto); two queries."""
    now = now or timezone.now()
    start = start_of(period, now)
    events = Event.objects.filter(received_at__gt=start, received_at__lte=now).count()
    figures = Alert.objects.filter(first_seen__gt=start, first_seen__lte=now).order_by().aggregate(
        alerts=Count("id"), incidents=Count("incident", distinct=True),
        exceptions=Count("id", filter=Q(classification="exception")))
    alerts, incidents = figures["alerts"], figures["incidents"]
    return {
        "events": events, "alerts": alerts, "incidents": incidents, "exceptions": figures["exceptions"],
        "events_per_alert": _ratio(events, alerts),
        "events_per_incident": _ratio(events, incidents),
        "alerts_per_incident": _ratio(alerts, incidents),
        # Share of events that did not become an incident of their own: 1 - incidents / events.
        "reduction_percent": round(100 * (1 - incidents / events), 1) if events else None,
    }


def _minutes(delta) -> float | None:
    return round(delta.total_seconds() / 60, 1) if delta is not None else None


def spell(minutes: float | None) -> str:
    """12.5 -> "12.5 min", 150 -> "2.5 h", 4320 -> "3.0 days"; None -> ""."""
    if minutes is None:
        return ""
    if minutes >= 1440:
        return f"{minutes / 1440:.1f} days"
    if minutes >= 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes:.1f} min"


def response_times(period: Period, now=None) -> dict:
    """Mean time to acknowledge (acknowledged_at - first_seen) and to resolve (cleared_at - first_seen) of the
    alerts first seen in the period, overall and by severity; two queries."""
    now = now or timezone.now()
    in_period = Alert.objects.filter(first_seen__gt=start_of(period, now), first_seen__lte=now).order_by()
    acked, cleared = Q(acknowledged_at__isnull=False), Q(cleared_at__isnull=False)
    measures = {
        "mtta": Avg(F("acknowledged_at") - F("first_seen"), filter=acked),
        "mttr": Avg(F("cleared_at") - F("first_seen"), filter=cleared),
        "acknowledged": Count("id", filter=acked),
        "cleared": Count("id", filter=cleared),
        "alerts": Count("id"),
    }
    overall = in_period.aggregate(**measures)
    rows = {row["severity"]: row for row in in_period.values("severity").annotate(**measures)}

    def shaped(row, **extra):
        return {**extra, "alerts": row["alerts"] if row else 0,
                "acknowledged": row["acknowledged"] if row else 0, "cleared": row["cleared"] if row else 0,
                "mtta_minutes": _minutes(row["mtta"]) if row else None,
                "mttr_minutes": _minutes(row["mttr"]) if row else None,
                "mtta": spell(_minutes(row["mtta"])) if row else "", "mttr": spell(_minutes(row["mttr"])) if row else ""}

    return {"overall": shaped(overall),
            "by_severity": [shaped(rows.get(s.value), severity=s.value, label=s.label) for s in Severity]}


def start_of(period: Period, now) -> datetime:
    return now - period.length


def kpis(period: Period, now=None) -> dict:
    """Everything the KPI page shows, for one period (a moment `now` fixed for all of it)."""
    now = now or timezone.now()
    return {"period": period, "now": now, "events": events_per_minute(period, now), "open": open_alerts(now),
            "noise": noise(period, now), "times": response_times(period, now)}
