"""Processing: classification, deduplication, correlation, incidents opened, resolved, reopened and left alone,
flapping, maintenance, idempotency. Events go in through the real ingest path (monitoring.ingest) and are
processed with monitoring.processing at a fixed "now", against the real database."""

import copy
from datetime import datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.models import Incident
from incidents.services import incident_comment_add
from monitoring.ingest import ingest
from monitoring.models import Alert, Event, MaintenanceWindow, MonitoringSettings, Rule
from monitoring.processing import events_redrive, flap_settle, process_events
from servicedesk.models import OutboxMessage, Team, TimelineEntry
from servicedesk.outbox import outbox_process
from tests.monitoring.conftest import fixture

T0 = datetime.fromisoformat("2026-11-29T18:00:43+00:00")  # just after the fixture alert started


def am(source, name, *, now=T0, **alert_changes):
    body = fixture(name)
    body["alerts"][0].update(alert_changes)
    ids = ingest(source, body, kind="alertmanager", now=now + timedelta(seconds=5))
    process_events(ids, now=now)
    return Event.objects.filter(id__in=ids).order_by("id")


def generic(source, at, **fields):
    body = {"status": "firing", "severity": "critical", "summary": "Checkout 5xx", "service": "checkout",
            "occurred_at": at.isoformat(), **fields}
    ids = ingest(source, body, kind="generic", now=at + timedelta(seconds=1))
    process_events(ids, now=at)
    return Event.objects.get(id=ids[0])


def timeline(incident):
    kind = ContentType.objects.get_for_model(Incident)
    return list(TimelineEntry.objects.filter(content_type=kind, object_id=incident.id).order_by("id"))


@pytest.mark.django_db
class TestAlertmanagerFixtures:
    def test_firing_opens_one_incident(self, am_source, checkout):
        (event,) = am(am_source, "alertmanager-firing.json")
        assert event.outcome == "opened" and event.processed_at is not None
        alert = Alert.objects.get()
        assert (alert.status, alert.classification, alert.count, alert.service) == (
            "firing", "exception", 1, checkout)
        incident = alert.incident
        assert incident.channel == "monitoring" and incident.title == "5xx rate above 5%"
        assert incident.service == checkout and incident.requester.username == "monitoring"
        assert incident.priority == 1  # high criticality service (impact 1) x critical (urgency 1)
        assert any("Opened by alert" in e.body and e.internal for e in timeline(incident))

    def test_repeats_deduplicate(self, am_source, checkout):
        am(am_source, "alertmanager-firing.json")
        (again,) = am(am_source, "alertmanager-firing.json")  # Alertmanager re-sends the group
        assert again.outcome == "duplicate"
        alert = Alert.objects.get()
        assert alert.count == 1 and Incident.objects.count() == 1

    def test_resolved_clears_and_auto_resolves(self, am_source, checkout):
        am(am_source, "alertmanager-firing.json")
        (event,) = am(am_source, "alertmanager-resolved.json", now=T0 + timedelta(seconds=3))
        assert event.outcome == "cleared"
        alert = Alert.objects.get()
        assert alert.status == "resolved" and alert.cleared_at.isoformat() == "2026-11-29T18:00:45+00:00"
        incident = Incident.objects.get()
        assert incident.status == "resolved" and incident.resolution_code == "fixed"
        assert "every alert" in incident.resolution_notes
        # Alertmanager re-sends the resolved notification: nothing changes twice.
        (again,) = am(am_source, "alertmanager-resolved.json", now=T0 + timedelta(seconds=4))
        assert again.outcome == "duplicate"
        assert Incident.objects.get().version == incident.version

    def test_late_resend_of_the_old_firing_is_stale(self, am_source, checkout):
        am(am_source, "alertmanager-firing.json")
        am(am_source, "alertmanager-resolved.json", now=T0 + timedelta(seconds=3))
        (late,) = am(am_source, "alertmanager-firing.json", now=T0 + timedelta(seconds=6))
        assert late.outcome in ("stale", "duplicate")
        assert Incident.objects.get().status == "resolved" and Alert.objects.get().status == "resolved"

    def test_firing_again_within_the_reopen_window_reopens(self, am_source, checkout):
        am(am_source, "alertmanager-firing.json")
        am(am_source, "alertmanager-resolved.json", now=T0 + timedelta(seconds=3))
        (again,) = am(am_source, "alertmanager-firing.json", now=T0 + timedelta(minutes=5),
                      startsAt="2026-11-29T18:05:00Z")
        assert again.outcome == "repeated"
        alert = Alert.objects.get()
        assert alert.status == "firing" and alert.count == 2 and alert.cleared_at is None
        incident = Incident.objects.get()
        assert incident.status == "in_progress" and incident.reopen_count == 1

    def test_firing_after_the_reopen_window_is_a_new_alert_and_incident(self, am_source, checkout):
        am(am_source, "alertmanager-firing.json")
        am(am_source, "alertmanager-resolved.json", now=T0 + timedelta(seconds=3))
        later = T0 + timedelta(hours=3)
        (again,) = am(am_source, "alertmanager-firing.json", now=later, startsAt="2026-11-29T21:00:00Z")
        assert again.outcome == "opened"
        assert Alert.objects.filter(live=True).count() == 1 and Alert.objects.count() == 2
        assert Incident.objects.count() == 2
        assert Incident.objects.filter(status="resolved").count() == 1

    def test_processing_twice_changes_nothing_twice(self, am_source, checkout):
        body = fixture("alertmanager-firing.json")
        ids = ingest(am_source, body, kind="alertmanager", now=T0)
        assert process_events(ids, now=T0) == {"opened": 1}
        assert process_events(ids, now=T0) == {}
        assert Alert.objects.get().count == 1 and Incident.objects.count() == 1

    def test_outbox_message_runs_the_processing(self, am_source, checkout):
        ids = ingest(am_source, fixture("alertmanager-firing.json"), kind="alertmanager", now=T0)
        message = OutboxMessage.objects.get(handler="monitoring.process")
        assert outbox_process(message.id) == "done"
        assert Event.objects.get(id=ids[0]).outcome == "opened"


@pytest.mark.django_db
class TestCorrelation:
    def test_same_service_within_window_joins_the_incident(self, generic_source, checkout):
        generic(generic_source, T0, source_id="5xx")
        event = generic(generic_source, T0 + timedelta(minutes=5), source_id="latency", summary="p99 > 2s")
        assert event.outcome == "opened"
        assert Alert.objects.count() == 2 and Incident.objects.count() == 1
        incident = Incident.objects.get()
        assert any("Alert joined" in e.body for e in timeline(incident))
        # one clears: the incident waits for the other
        generic(generic_source, T0 + timedelta(minutes=6), source_id="5xx", status="resolved")
        assert Incident.objects.get().status == "new"
        generic(generic_source, T0 + timedelta(minutes=7), source_id="latency", status="resolved")
        assert Incident.objects.get().status == "resolved"

    def test_outside_the_window_opens_another(self, generic_source, checkout):
        generic(generic_source, T0, source_id="5xx")
        generic(generic_source, T0 + timedelta(minutes=45), source_id="latency", summary="p99 > 2s")
        assert Incident.objects.count() == 2

    def test_other_service_opens_another(self, generic_source, checkout):
        from servicedesk.models import Service

        Service.objects.create(name="payments")
        generic(generic_source, T0, source_id="5xx")
        generic(generic_source, T0 + timedelta(minutes=1), source_id="pay", service="payments")
        assert Incident.objects.count() == 2

    def test_same_alertmanager_group_joins(self, am_source):
        body = fixture("alertmanager-firing.json")  # no service known: correlation by group key
        ids = ingest(am_source, body, kind="alertmanager", now=T0)
        second = copy.deepcopy(body)
        second["alerts"][0]["labels"]["instance"] = "web-2"
        second["alerts"][0]["fingerprint"] = "ffff000011112222"
        ids += ingest(am_source, second, kind="alertmanager", now=T0)
        process_events(ids, now=T0)
        assert Alert.objects.count() == 2 and Incident.objects.count() == 1

    def test_repeats_count(self, generic_source, checkout):
        for minute in range(3):
            generic(generic_source, T0 + timedelta(minutes=minute), source_id="5xx")
        alert = Alert.objects.get()
        assert alert.count == 3 and alert.last_seen == T0 + timedelta(minutes=2) and alert.first_seen == T0


@pytest.mark.django_db
class TestClassification:
    def test_defaults_by_severity(self, generic_source, checkout):
        assert generic(generic_source, T0, source_id="a", severity="warning").outcome == "opened"
        assert generic(generic_source, T0, source_id="b", severity="minor").outcome == "opened"
        assert generic(generic_source, T0, source_id="c", severity="info").outcome == "informational"
        assert Alert.objects.filter(classification="warning").count() == 2
        assert not Incident.objects.exists()

    def test_rule_suppresses(self, generic_source, checkout):
        Rule.objects.create(name="Ignore test hosts", match_labels={"env": "test"}, suppress=True)
        event = generic(generic_source, T0, source_id="a", labels={"env": "test"})
        assert event.outcome == "suppressed" and not Alert.objects.exists()
        assert generic(generic_source, T0, source_id="b", labels={"env": "prod"}).outcome == "opened"

    def test_first_matching_rule_sets_class_priority_team(self, generic_source, checkout):
        team = Team.objects.create(name="Web ops")
        Rule.objects.create(name="Disk warnings page", order=1, match_severities=["warning"], match_text="disk",
                            classification="exception", priority=3, team=team, match_source=generic_source)
        Rule.objects.create(name="Everything else", order=2, classification="informational")
        event = generic(generic_source, T0, source_id="a", severity="warning", summary="Disk almost full")
        assert event.outcome == "opened"
        incident = Incident.objects.get()
        assert incident.priority == 3 and incident.assignment_group == team
        assert generic(generic_source, T0, source_id="b", severity="warning", summary="CPU").outcome == \
            "informational"

    def test_maintenance_window_suppresses(self, generic_source, checkout):
        MaintenanceWindow.objects.create(name="Patching", service=checkout, starts_at=T0 - timedelta(hours=1),
                                         ends_at=T0 + timedelta(hours=1))
        assert generic(generic_source, T0, source_id="a").outcome == "maintenance"
        assert generic(generic_source, T0 + timedelta(hours=2), source_id="b").outcome == "opened"

    def test_worse_severity_escalates_a_warning_alert(self, generic_source, checkout):
        generic(generic_source, T0, source_id="a", severity="warning")
        assert not Incident.objects.exists()
        generic(generic_source, T0 + timedelta(minutes=1), source_id="a", severity="critical")
        alert = Alert.objects.get()
        assert alert.severity == "critical" and alert.classification == "exception" and alert.incident_id


@pytest.mark.django_db
class TestRecovery:
    def test_human_reply_means_a_note_not_a_resolve(self, generic_source, checkout, agent):
        generic(generic_source, T0, source_id="5xx")
        incident = Incident.objects.get()
        incident_comment_add(incident=incident, author=agent, body="Looking at the load balancer", internal=True)
        generic(generic_source, T0 + timedelta(minutes=1), source_id="5xx", status="resolved")
        incident.refresh_from_db()
        assert incident.status == "new"
        assert any("leaves resolving it to them" in e.body for e in timeline(incident))

    def test_rule_may_only_note(self, generic_source, checkout):
        Rule.objects.create(name="Note only", on_recovery="note")
        generic(generic_source, T0, source_id="5xx")
        generic(generic_source, T0 + timedelta(minutes=1), source_id="5xx", status="resolved")
        assert Incident.objects.get().status == "new"

    def test_setting_off_resolves_even_after_human_work(self, generic_source, checkout, agent):
        MonitoringSettings.objects.update_or_create(pk=1, defaults={"recovery_spares_human_work": False})
        generic(generic_source, T0, source_id="5xx")
        incident_comment_add(incident=Incident.objects.get(), author=agent, body="On it", internal=True)
        generic(generic_source, T0 + timedelta(minutes=1), source_id="5xx", status="resolved")
        assert Incident.objects.get().status == "resolved"

    def test_resolved_without_live_alert(self, generic_source):
        assert generic(generic_source, T0, source_id="ghost", status="resolved").outcome == "no_alert"


@pytest.mark.django_db
class TestFlapping:
    def test_flapping_alert_does_not_churn_the_incident(self, generic_source, checkout):
        generic(generic_source, T0, source_id="5xx")
        incident = Incident.objects.get()
        for i, status in enumerate(["resolved", "firing", "resolved", "firing", "resolved"], start=1):
            generic(generic_source, T0 + timedelta(minutes=i), source_id="5xx", status=status)
        alert = Alert.objects.get()
        assert alert.flapping
        incident.refresh_from_db()
        assert incident.reopen_count <= 1 and incident.status in ("new", "in_progress")
        assert any("flapping" in e.body for e in timeline(incident))
        # quiet for the flap window: it settles where it is (resolved), and the incident recovers
        assert flap_settle(now=T0 + timedelta(minutes=30)) == 1
        alert.refresh_from_db()
        assert not alert.flapping
        assert Incident.objects.get().status == "resolved"

    def test_not_settled_while_still_changing(self, generic_source, checkout):
        generic(generic_source, T0, source_id="5xx")
        for i, status in enumerate(["resolved", "firing", "resolved", "firing"], start=1):
            generic(generic_source, T0 + timedelta(minutes=i), source_id="5xx", status=status)
        assert flap_settle(now=T0 + timedelta(minutes=5)) == 0
        assert Alert.objects.get().flapping


@pytest.mark.django_db
class TestRobustness:
    def test_redrive_processes_stranded_events(self, generic_source, checkout):
        ids = ingest(generic_source, {"status": "firing", "summary": "x", "service": "checkout",
                                      "occurred_at": T0.isoformat()}, kind="generic", now=T0)
        assert events_redrive(now=T0 + timedelta(minutes=1)) == 0  # too fresh: its outbox message will do it
        assert events_redrive(now=T0 + timedelta(minutes=3)) == 1
        assert Event.objects.get(id=ids[0]).outcome == "opened"

    def test_one_failing_event_does_not_stop_the_others(self, generic_source, checkout, monkeypatch):
        from monitoring import processing

        real = processing.match_rule

        def explode(rules, event):
            if event.external_id == "bad":
                raise ValueError("broken rule")
            return real(rules, event)

        monkeypatch.setattr(processing, "match_rule", explode)
        ids = ingest(generic_source, {"events": [
            {"source_id": "good", "status": "firing", "summary": "a", "occurred_at": T0.isoformat()},
            {"source_id": "bad", "status": "firing", "summary": "b", "occurred_at": T0.isoformat()},
            {"source_id": "fine", "status": "firing", "summary": "c", "occurred_at": T0.isoformat()},
        ]}, kind="generic", now=T0)
        process_events(ids, now=T0)
        outcomes = dict(Event.objects.values_list("external_id", "outcome"))
        assert outcomes == {"good": "opened", "bad": "error", "fine": "opened"}
        assert "broken rule" in Event.objects.get(external_id="bad").error


@pytest.mark.django_db
class TestKeptConfiguration:
    """Live processing (no `now` given) reads the settings, rules and windows from the cache, shared by every
    worker (monitoring.processing._configuration); an admin's change through the ORM drops them at once."""

    def live(self, source, **fields):
        now = timezone.now()
        body = {"status": "firing", "severity": "critical", "summary": "Checkout 5xx", "service": "checkout",
                "occurred_at": now.isoformat(), **fields}
        ids = ingest(source, body, kind="generic", now=now)
        process_events(ids)
        return Event.objects.get(id=ids[0])

    def test_read_once_then_kept_until_a_rule_changes(self, generic_source, checkout):
        assert self.live(generic_source, source_id="a", labels={"env": "test"}).outcome == "opened"
        with CaptureQueriesContext(connection) as kept:
            self.live(generic_source, source_id="b", labels={"env": "test"})
        read = [q["sql"] for q in kept.captured_queries
                if 'FROM "monitoring_rule"' in q["sql"] or 'FROM "monitoring_maintenancewindow"' in q["sql"]]
        assert read == []
        rule = Rule.objects.create(name="Ignore test hosts", match_labels={"env": "test"}, suppress=True)
        assert self.live(generic_source, source_id="c", labels={"env": "test"}).outcome == "suppressed"
        rule.enabled = False
        rule.save()
        assert self.live(generic_source, source_id="d", labels={"env": "test"}).outcome == "opened"
        rule.delete()
        window = MaintenanceWindow.objects.create(name="Patching", service=checkout,
                                                  starts_at=timezone.now() - timedelta(hours=1),
                                                  ends_at=timezone.now() + timedelta(hours=1))
        assert self.live(generic_source, source_id="e").outcome == "maintenance"
        window.delete()
        assert self.live(generic_source, source_id="f").outcome != "maintenance"
