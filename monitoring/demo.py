"""Monitoring's demo data (the "monitoring" step of seed_demo, after the incidents): two event sources, a few
rules, maintenance windows, and an hour of events sent through the real ingest path and processed, so the event
console, the KPIs and the incidents raised by monitoring have something to show:

- Checkout: HighErrorRate (critical, web-1, acknowledged by `agent`) and, five minutes later, the latency
  check (major, web-2): one incident, two alerts (correlated by service), repeats folded;
- VPN: a gateway down for half an hour, then back: its incident was resolved by monitoring;
- E-mail: the SMTP queue check flapping (held, its incident left alone);
- ERP: replication lag warning (an alert, no incident); backups done (informational); a test-environment
  alert (suppressed by a rule); Wi-Fi in a maintenance window (suppressed).

Idempotent: a second run finds the sources and sends nothing again.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from monitoring.ingest import ingest
from monitoring.models import Alert, EventSource, MaintenanceWindow, Rule
from monitoring.processing import process_events
from monitoring.services import alert_acknowledge
from monitoring.sources import event_source_create
from servicedesk.models import Service, Team


def _iso(at) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _am(alertname, *, severity, service, instance, summary, starts, ends=None, fingerprint, env="prod"):
    alert = {
        "status": "resolved" if ends else "firing",
        "labels": {"alertname": alertname, "severity": severity, "service": service, "instance": instance,
                   "env": env},
        "annotations": {"summary": summary, "runbook_url": f"https://runbooks.example/{alertname.lower()}"},
        "startsAt": _iso(starts),
        "endsAt": _iso(ends) if ends else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph", "fingerprint": fingerprint,
    }
    return {"receiver": "servicedesk", "status": alert["status"], "alerts": [alert], "version": "4",
            "groupKey": f'{{}}:{{alertname="{alertname}", service="{service}"}}', "groupLabels": {},
            "commonLabels": alert["labels"], "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager.example:9093", "truncatedAlerts": 0}


def seed_monitoring() -> str:
    if EventSource.objects.filter(name="Prometheus").exists():
        return "sources exist already (tokens are shown once: rotate with manage.py create_event_source --rotate)"
    prometheus, token = event_source_create(name="Prometheus", kind=EventSource.Kind.ALERTMANAGER)
    bridge, _ = event_source_create(name="Zabbix bridge", kind=EventSource.Kind.GENERIC)
    services = {s.name: s for s in Service.objects.all()}
    teams = {t.name: t for t in Team.objects.all()}
    now = timezone.now().replace(microsecond=0)

    Rule.objects.create(name="Test environments are noise", order=10, match_labels={"env": "test"}, suppress=True)
    Rule.objects.create(name="Data warehouse pages the Database team", order=20, match_severities=["critical", "major"],
                        match_labels={"service": "Data warehouse"}, priority=2, team=teams.get("Database"))
    Rule.objects.create(name="Backups are information", order=30, match_text="backup",
                        classification="informational")
    if "Wi-Fi" in services:
        MaintenanceWindow.objects.create(name="Wi-Fi controller firmware", service=services["Wi-Fi"],
                                         starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2),
                                         reason="Vendor firmware upgrade, access points restart one by one.")
    if "Printing" in services:
        MaintenanceWindow.objects.create(name="Print server patching", service=services["Printing"],
                                         starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=2, hours=3))

    ids: list[int] = []

    def send_am(at, **kw):
        ids.extend(ingest(prometheus, _am(**kw), kind="alertmanager", now=at))

    def send(at, events):
        ids.extend(ingest(bridge, {"events": events}, kind="generic", now=at))

    t = now - timedelta(minutes=55)
    # VPN: down for half an hour, back since 25 minutes: monitoring resolved its incident.
    send_am(t, alertname="GatewayDown", severity="critical", service="VPN", instance="vpn-gw-1",
            summary="VPN gateway vpn-gw-1 is not answering", starts=t, fingerprint="d3m0vpn0000000001")
    send_am(t + timedelta(minutes=30), alertname="GatewayDown", severity="critical", service="VPN",
            instance="vpn-gw-1", summary="VPN gateway vpn-gw-1 is not answering", starts=t,
            ends=t + timedelta(minutes=30), fingerprint="d3m0vpn0000000001")
    # Checkout: errors then latency, one incident; Alertmanager repeats folded.
    t = now - timedelta(minutes=20)
    send_am(t, alertname="HighErrorRate", severity="critical", service="Checkout", instance="web-1",
            summary="5xx rate above 5%", starts=t, fingerprint="d3m0checkout00001")
    for minutes in (5, 10, 15):
        send(t + timedelta(minutes=minutes), [{
            "source_id": "checkout-latency-web-2", "status": "firing", "severity": "major",
            "summary": "Checkout p99 latency above 2 s", "service": "Checkout", "configuration_item": "web-2",
            "labels": {"check": "http_latency", "host": "web-2"},
            "occurred_at": (t + timedelta(minutes=minutes)).isoformat()}])
    # E-mail: the SMTP queue check flaps.
    t = now - timedelta(minutes=9)
    for step, status in enumerate(["firing", "resolved", "firing", "resolved", "firing"]):
        send(t + timedelta(minutes=step * 2), [{
            "source_id": "mail-01-smtp-queue", "status": status, "severity": "major",
            "summary": "SMTP queue on mail-01 above 500 messages", "service": "E-mail",
            "configuration_item": "mail-01", "occurred_at": (t + timedelta(minutes=step * 2)).isoformat()}])
    # Warnings, information, noise, maintenance.
    t = now - timedelta(minutes=12)
    send(t, [
        {"source_id": "erp-db-replication", "status": "firing", "severity": "warning",
         "summary": "ERP database replication lag above 30 s", "service": "ERP", "configuration_item": "erp-db",
         "occurred_at": t.isoformat()},
        {"source_id": "dwh-backup", "status": "firing", "severity": "info", "summary": "Nightly backup completed",
         "service": "Data warehouse", "occurred_at": t.isoformat()},
        {"source_id": "staging-web", "status": "firing", "severity": "critical", "summary": "Staging web down",
         "labels": {"env": "test"}, "occurred_at": t.isoformat()},
        {"source_id": "wlc-hq-aps", "status": "firing", "severity": "major",
         "summary": "12 access points offline", "service": "Wi-Fi", "occurred_at": t.isoformat()},
    ])
    counts = process_events(ids, now=now)
    # Aaron was paged for checkout and acknowledged its error alert four minutes in (the KPIs' MTTA).
    agent = get_user_model().objects.filter(username="agent").first()
    first = Alert.objects.filter(source=prometheus, fingerprint="d3m0checkout00001").first()
    if agent is not None and first is not None:
        alert_acknowledge(alert_id=first.id, actor=agent, now=first.first_seen + timedelta(minutes=4))
    made = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    return (f"2 event sources, 3 rules, {len(ids)} events ({made}). Prometheus source token (shown once): {token}")
