"""Reads of alerts with permission in the query: agents (and managers, admins) see every alert, requesters none.
The console's states map onto the partial index `alert_console_idx` (live alerts by status, severity rank and
last seen), so a console page costs O(page), not O(history)."""

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet, Window

from monitoring.models import Alert, MonitoringSettings, Severity
from servicedesk.roles import is_staff_role

# What the console and the API can show. "firing" (the default): what is wrong now; "resolved": cleared but
# still live (within the reopen window); "live": both; "acknowledged" / "unacknowledged": live alerts someone
# is / nobody is on yet (unacknowledged ones are those still firing: a cleared alert needs nobody).
STATES = {
    "firing": ("Firing", Q(live=True, status=Alert.Status.FIRING)),
    "unacknowledged": ("Firing, not acknowledged", Q(live=True, status=Alert.Status.FIRING,
                                                     acknowledged_at__isnull=True)),
    "acknowledged": ("Acknowledged", Q(live=True, acknowledged_at__isnull=False)),
    "resolved": ("Recently resolved", Q(live=True, status=Alert.Status.RESOLVED)),
    "live": ("All live", Q(live=True)),
}
DEFAULT_STATE = "firing"


def alerts_for(user) -> QuerySet[Alert]:
    """Every alert `user` may see (agents: all; requesters and anonymous: none), with what a row shows joined:
    source, service, CI, incident and who acknowledged it, in the one query."""
    if user is None or not user.is_authenticated or not is_staff_role(user):
        return Alert.objects.none()
    return Alert.objects.select_related("source", "service", "configuration_item", "incident", "acknowledged_by")


class ConsoleParamsError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ConsoleParams:
    state: str = DEFAULT_STATE
    severities: tuple[str, ...] = ()
    service: int | None = None
    source: int | None = None
    q: str = ""
    errors: dict = field(default_factory=dict, compare=False)

    def query(self) -> dict:
        """The parameters as a query string dict (for links and the polling URL)."""
        out = {"state": self.state}
        if self.severities:
            out["severity"] = list(self.severities)
        if self.service:
            out["service"] = self.service
        if self.source:
            out["source"] = self.source
        if self.q:
            out["q"] = self.q
        return out


def _id(value: str, name: str, errors: dict) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit():
        errors[name] = f"give the id of a {name} (a number), not {value[:40]!r}"
        return None
    return int(value)


def console_params(query) -> ConsoleParams:
    """The console's filters from a QueryDict (or a dict of lists). Bad values raise ConsoleParamsError naming
    each field at fault."""
    errors: dict[str, str] = {}
    get = query.get
    getlist = query.getlist if hasattr(query, "getlist") else (lambda k: query.get(k) or [])
    state = (get("state") or DEFAULT_STATE).strip()
    if state not in STATES:
        errors["state"] = f"choose one of {', '.join(STATES)}"
    severities = tuple(dict.fromkeys(s.strip() for value in getlist("severity") for s in str(value).split(",")
                                     if s.strip()))
    unknown = [s for s in severities if s not in Severity.values]
    if unknown:
        errors["severity"] = f"unknown severity {unknown[0]!r}: choose from {', '.join(Severity.values)}"
    service = _id(get("service"), "service", errors)
    source = _id(get("source"), "source", errors)
    q = (get("q") or "").strip()[:200]
    if errors:
        raise ConsoleParamsError(errors)
    return ConsoleParams(state=state, severities=severities, service=service, source=source, q=q)


def console_alerts(user, params: ConsoleParams) -> QuerySet[Alert]:
    """The console's rows: the state's alerts narrowed by the filters, most severe first, then latest seen."""
    alerts = alerts_for(user).filter(STATES[params.state][1])
    if params.severities:
        alerts = alerts.filter(severity__in=params.severities)
    if params.service:
        alerts = alerts.filter(service_id=params.service)
    if params.source:
        alerts = alerts.filter(source_id=params.source)
    if params.q:
        alerts = alerts.filter(summary__icontains=params.q)
    return alerts.order_by("severity_rank", "-last_seen", "-id")


def console_counts(user) -> dict[str, int]:
    """Firing and unacknowledged live alerts, in one aggregate over the live partial index."""
    if user is None or not user.is_authenticated or not is_staff_role(user):
        return {"firing": 0, "unacknowledged": 0}
    return Alert.objects.filter(live=True).order_by().aggregate(
        firing=Count("id", filter=STATES["firing"][1]),
        unacknowledged=Count("id", filter=STATES["unacknowledged"][1]),
    )


def firing_alerts_of_incident(incident_id) -> QuerySet[Alert]:
    """The alerts of this incident that still fire (index alert_incident_idx: incident, status)."""
    return Alert.objects.filter(incident_id=incident_id, status=Alert.Status.FIRING).order_by("severity_rank",
                                                                                               "-last_seen", "-id")


def alerts_of_incident(user, number: str, limit: int = 20) -> list[Alert]:
    """The incident's alerts (every status) for its page's side panel, firing first; one query. The panel shows
    the alerts' own columns: nothing joined (each join costs PostgreSQL planning time on every incident page)."""
    return list(alerts_for(user).select_related(None).filter(incident__number=number)
                .only("id", "summary", "status", "severity", "severity_rank", "count", "last_seen", "flapping")
                .order_by("status", "severity_rank", "-last_seen", "-id")[:limit])  # "firing" < "resolved"


def interlock_on() -> bool:
    """MonitoringSettings.resolve_interlock, read without writing (the row may not exist yet: the default)."""
    value = MonitoringSettings.objects.filter(pk=1).values_list("resolve_interlock", flat=True).first()
    return MonitoringSettings._meta.get_field("resolve_interlock").default if value is None else value


NAMED = 3  # alerts named in the objection; the rest are counted


def alerts_objection(incident) -> str:
    """The resolve interlock (servicedesk.registry.ResolveCheck "alerts"): a sentence while the incident has
    alerts that still fire and the interlock is on in MonitoringSettings, else "". Two queries at most: the
    firing alerts (with their total, a window count, so one query names some and counts all) and, only when
    there are some, the settings."""
    rows = list(firing_alerts_of_incident(incident.id)
                .annotate(total=Window(expression=Count("id")))
                .values_list("summary", "total")[:NAMED])
    if not rows or not interlock_on():
        return ""
    total = rows[0][1]
    names = "; ".join(summary for summary, _ in rows)
    more = f" and {total - NAMED} more" if total > NAMED else ""
    return f"{total} alert{'s' if total != 1 else ''} of this incident still fire{'s' if total == 1 else ''}: " \
           f"{names}{more}."
