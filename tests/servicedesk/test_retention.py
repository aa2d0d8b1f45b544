"""Retention (servicedesk.retention): what is due goes, in bounded batches, archived first; nothing else does."""

import gzip
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from incidents.models import Incident
from incidents.services import (
    incident_assign,
    incident_cancel,
    incident_close,
    incident_comment_add,
    incident_reopen,
    incident_resolve,
)
from servicedesk import retention
from servicedesk.models import (
    Attachment,
    AuditLog,
    IdempotencyKey,
    OutboxMessage,
    RetentionRun,
    TimelineEntry,
    Watcher,
    Webhook,
    WebhookDelivery,
)
from servicedesk.services import attachment_add
from servicedesk.watchers import watcher_add
from sla.models import SlaClock
from tests.monitoring.console_data import fixed_code

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _archive_in_tmp(settings, tmp_path):
    settings.RETENTION_ARCHIVE_DIR = tmp_path / "archive"


@pytest.fixture
def keep_a_year(settings):
    from sla.defaults import ensure_defaults

    ensure_defaults()  # the SLA policies (a transactional test run before may have emptied their tables)
    settings.RETENTION_TICKETS_DAYS = 365


def closed_incident(factory, agent, *, days_ago: float, title="Printer jams", cancel=False):
    """An incident worked and closed (or cancelled) through the services, closed `days_ago` days ago."""
    incident = factory(title=title)
    when = timezone.now() - timedelta(days=days_ago)
    if cancel:
        incident_cancel(incident_id=incident.id, actor=agent, reason="duplicate")
        Incident.objects.filter(id=incident.id).update(closed_at=when)
    else:
        fixed_code()
        incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
        incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="done",
                         now=when - DAY)
        incident_close(incident_id=incident.id, actor=agent, now=when)
    Incident.objects.filter(id=incident.id).update(created_at=when - 2 * DAY)
    return Incident.objects.get(id=incident.id)


def run(*, hook=None, **kwargs):
    """A retention run; `hook(kind, ids)`, if given, is a retire hook for this run only (it runs inside each
    batch, before the batch deletes)."""
    from servicedesk.registry import registry

    if hook is None:
        return retention.retention_run(**kwargs)
    registry.retire_hooks.append(hook)
    try:
        return retention.retention_run(**kwargs)
    finally:
        registry.retire_hooks.remove(hook)


def exists(incident) -> bool:
    return Incident.objects.filter(id=incident.id).exists()


# --- defaults ------------------------------------------------------------------------------------------------


def test_by_default_everything_is_kept(incident_factory, agent, settings):
    old = closed_incident(incident_factory, agent, days_ago=3650)
    hook = Webhook.objects.create(name="Chat", url="https://hooks.example.com/x", secret="s")
    delivery = WebhookDelivery.objects.create(webhook=hook, event="x", payload={}, state="delivered")
    WebhookDelivery.objects.filter(id=delivery.id).update(created_at=timezone.now() - 3650 * DAY)
    AuditLog.objects.filter(id__in=AuditLog.objects.values("id")).update(at=timezone.now() - 3650 * DAY)
    audits = AuditLog.objects.count()

    assert [step.key for step in retention.plan()] == ["outbox", "idempotency_keys"]
    record = run()

    assert exists(old) and WebhookDelivery.objects.filter(id=delivery.id).exists()
    assert AuditLog.objects.count() == audits, "no run record either: nothing was removed"
    assert record.state == RetentionRun.State.DONE and record.counts == {} and record.archive == ""
    assert not Path(settings.RETENTION_ARCHIVE_DIR).exists()


# --- tickets -------------------------------------------------------------------------------------------------


def test_a_closed_incident_goes_a_day_after_it_is_due_and_not_a_day_before(incident_factory, agent, keep_a_year):
    due = closed_incident(incident_factory, agent, days_ago=366, title="Due")
    not_yet = closed_incident(incident_factory, agent, days_ago=364, title="Not yet")
    cancelled = closed_incident(incident_factory, agent, days_ago=366, title="Cancelled", cancel=True)

    record = run()

    assert not exists(due) and not exists(cancelled)
    assert exists(not_yet)
    assert record.counts["tickets.incident"]["removed"] == 2
    assert record.tickets_cutoff is not None


def test_open_and_reopened_tickets_are_never_removed(incident_factory, agent, keep_a_year):
    ancient_open = incident_factory(title="Open for ten years")
    Incident.objects.filter(id=ancient_open.id).update(created_at=timezone.now() - 3650 * DAY)
    reopened = incident_factory(title="Resolved long ago, then reopened")
    fixed_code()
    incident_assign(incident_id=reopened.id, actor=agent, assignee=agent)
    incident_resolve(incident_id=reopened.id, actor=agent, resolution_code="fixed", resolution_notes="x",
                     now=timezone.now() - 900 * DAY)
    incident_reopen(incident_id=reopened.id, actor=agent, reason="it is back")

    run()

    assert exists(ancient_open) and exists(reopened)


def test_requests_closed_or_cancelled_go_and_a_reopened_one_stays(requester, agent, keep_a_year):
    from requests_app.models import ServiceRequest
    from requests_app.services import (
        request_cancel,
        request_close,
        request_fulfil,
        request_reopen,
        request_submit,
    )
    from tests.requests_app.factories import item

    catalog_item = item()

    def submit(title):
        return request_submit(item=catalog_item, answers={}, requester=requester, created_by=requester, title=title)

    closed, cancelled, reopened = submit("Closed"), submit("Cancelled"), submit("Reopened")
    for req in (closed, reopened):
        request_fulfil(request_id=req.id, actor=agent, note="done")
    request_close(request_id=closed.id, actor=agent)
    request_cancel(request_id=cancelled.id, actor=requester)
    request_reopen(request_id=reopened.id, actor=requester, reason="still broken")
    ServiceRequest.objects.update(closed_at=timezone.now() - 400 * DAY, fulfilled_at=timezone.now() - 401 * DAY)

    record = run()

    assert list(ServiceRequest.objects.values_list("title", flat=True)) == ["Reopened"]
    assert record.counts["tickets.request"]["removed"] == 2
    assert not SlaClock.objects.filter(ticket_type="request", ticket_id__in=[closed.id, cancelled.id]).exists()


def test_a_problem_that_stays_keeps_its_incidents_and_a_closed_one_goes_with_its_links(
    incident_factory, agent, keep_a_year
):
    from problems.models import Problem, ProblemIncident
    from problems.services import problem_create, problem_link_incidents

    explained = closed_incident(incident_factory, agent, days_ago=500, title="Explained by an open problem")
    other = closed_incident(incident_factory, agent, days_ago=500, title="Explained by a closed problem")
    open_problem = problem_create(title="VPN drops", created_by=agent)
    closed_problem = problem_create(title="Old printer driver", created_by=agent)
    problem_link_incidents(problem_id=open_problem.id, actor=agent, incidents=[explained])
    problem_link_incidents(problem_id=closed_problem.id, actor=agent, incidents=[other])
    Problem.objects.filter(id=closed_problem.id).update(status="closed", closed_at=timezone.now() - 400 * DAY)

    record = run()

    assert Problem.objects.filter(id=open_problem.id).exists()
    assert exists(explained), "an incident a kept problem explains stays"
    assert ProblemIncident.objects.filter(problem=open_problem, incident=explained).exists()
    assert not Problem.objects.filter(id=closed_problem.id).exists()
    assert not exists(other), "once its problem went, the incident went by its own date (problems go first)"
    assert record.counts["tickets.problem"]["removed"] == 1 and record.counts["tickets.incident"]["removed"] == 1


def _major_with_child(incident_factory, agent, floor: int):
    from incidents.services import incident_update

    parent = incident_factory(title="Major: mail down")
    child = incident_factory(title=f"No mail on floor {floor}")
    incident_update(incident_id=child.id, actor=agent, parent=parent)
    return parent, child


def test_a_parent_stays_while_a_child_is_kept(incident_factory, agent, keep_a_year):
    parent, child = _major_with_child(incident_factory, agent, 2)
    Incident.objects.filter(id=parent.id).update(status="closed", closed_at=timezone.now() - 500 * DAY)

    run()
    assert exists(parent) and exists(child)

    Incident.objects.filter(id=child.id).update(status="closed", closed_at=timezone.now() - 400 * DAY)
    run()
    assert exists(parent) and not exists(child)
    run()  # the parent goes in the run after its last child
    assert not exists(parent)


def test_what_goes_is_in_the_archive_and_the_files_leave_the_disk(
    incident_factory, agent, requester, keep_a_year, settings, django_capture_on_commit_callbacks, make_user
):
    incident = incident_factory(title="Laptop stolen", description="Police report attached")
    incident_comment_add(incident=incident, author=agent, body="Please send the report")
    attachment = attachment_add(ticket=incident, by=requester,
                                upload=SimpleUploadedFile("report.pdf", b"%PDF-1.4 report", "application/pdf"))
    path = Path(settings.MEDIA_ROOT) / attachment.file.name
    watcher_add(ticket=incident, user=make_user("agent", username="boss"), by=agent)
    incident = closed_incident(lambda **kw: incident, agent, days_ago=400)
    entries = TimelineEntry.objects.filter(object_id=incident.id).count()
    assert path.exists() and SlaClock.objects.filter(ticket_type="incident", ticket_id=incident.id).exists()

    with django_capture_on_commit_callbacks(execute=True):
        record = run()

    assert not exists(incident) and not path.exists()
    assert not TimelineEntry.objects.filter(object_id=incident.id).exists()
    assert not Attachment.objects.exists() and not Watcher.objects.exists()
    assert not SlaClock.objects.filter(ticket_type="incident", ticket_id=incident.id).exists()
    counts = record.counts["tickets.incident"]
    assert counts["timeline_entries"] == entries and counts["attachments"] == 1 and counts["files"] == 1
    assert counts["watchers"] == 1 and counts["other_apps"] >= 2  # its two SLA clocks, through sla's hook

    archive = Path(record.archive)
    assert archive.parent.parent.parent == Path(settings.RETENTION_ARCHIVE_DIR) and archive.name.endswith(".jsonl.gz")
    with gzip.open(archive, "rt") as handle:
        lines = [json.loads(line) for line in handle]
    assert len(lines) == 1
    (line,) = lines
    assert line["rule"] == "tickets.incident" and line["run"] == record.id and line["kind"] == "incident"
    assert line["ticket"]["number"] == incident.number and line["ticket"]["title"] == "Laptop stolen"
    assert len(line["timeline"]) == entries
    assert "Please send the report" in [e["body"] for e in line["timeline"]]
    assert [a["filename"] for a in line["attachments"]] == ["report.pdf"]
    assert len(line["watchers"]) == 1
    log = AuditLog.objects.get(action="retention.run")
    assert log.changes["counts"]["tickets.incident"]["removed"] == 1 and log.changes["archive"] == record.archive


def test_without_the_archive_nothing_is_written(incident_factory, agent, keep_a_year, settings):
    settings.RETENTION_ARCHIVE = False
    old = closed_incident(incident_factory, agent, days_ago=400)
    record = run()
    assert not exists(old) and record.archive == ""
    assert not Path(settings.RETENTION_ARCHIVE_DIR).exists()


def test_a_run_stops_at_its_budget_and_the_next_one_goes_on(incident_factory, agent, keep_a_year):
    incidents = [closed_incident(incident_factory, agent, days_ago=400 + i, title=f"Old {i}") for i in range(5)]

    first = run(batch=2, budget=0)
    assert first.state == RetentionRun.State.BUDGET and first.counts["tickets.incident"]["removed"] == 2
    # Oldest first: the two closed longest ago went.
    assert [exists(i) for i in incidents] == [True, True, True, False, False]

    second = run(batch=2, budget=0)
    assert second.counts["tickets.incident"]["removed"] == 2
    third = run(batch=2, budget=0)
    assert third.counts["tickets.incident"]["removed"] == 1 and third.state == RetentionRun.State.DONE
    assert not any(exists(i) for i in incidents)
    lines = sum(len(retention.read_archive(r.archive)) for r in (first, second, third))
    assert lines == 5


def test_only_one_run_at_a_time_and_a_dead_one_is_abandoned(settings):
    running = RetentionRun.objects.create(state=RetentionRun.State.RUNNING)
    assert run() is None, "another run holds the lease"

    RetentionRun.objects.filter(id=running.id).update(
        started_at=timezone.now() - timedelta(seconds=settings.RETENTION_BUDGET_SECONDS) - timedelta(minutes=11))
    assert run().state == RetentionRun.State.DONE
    assert RetentionRun.objects.get(id=running.id).state == RetentionRun.State.ABANDONED


def test_the_dry_run_prints_what_would_go_and_removes_nothing(incident_factory, agent, keep_a_year):
    old = closed_incident(incident_factory, agent, days_ago=400)
    out = io.StringIO()
    call_command("retention_run", "--dry-run", stdout=out)
    assert "tickets.incident: 1 closed incidents before" in out.getvalue()
    assert "tickets.request: 0" in out.getvalue() and "Dry run: nothing was removed." in out.getvalue()
    assert exists(old) and not RetentionRun.objects.exists()

    out = io.StringIO()
    call_command("retention_run", stdout=out)
    assert "tickets.incident: 1 removed" in out.getvalue() and not exists(old)


# --- other rows ----------------------------------------------------------------------------------------------


def test_processed_events_go_after_their_days_and_unprocessed_ones_stay(settings):
    from monitoring.models import Event
    from tests.monitoring.console_data import make_alert, make_event, make_source

    settings.RETENTION_EVENTS_DAYS = 30
    source = make_source()
    alert = make_alert(source)
    now = timezone.now()
    due = make_event(source, alert=alert, received_at=now - 31 * DAY)
    not_yet = make_event(source, alert=alert, received_at=now - 29 * DAY)
    unprocessed = make_event(source, received_at=now - 300 * DAY)

    record = run()

    assert set(Event.objects.values_list("id", flat=True)) == {not_yet.id, unprocessed.id}
    alert.refresh_from_db()
    assert alert.count == 1, "the alert keeps its figures"
    (line,) = retention.read_archive(record.archive)
    assert line["rule"] == "monitoring.events" and line["row"]["id"] == due.id and line["row"]["raw"] == due.raw


def test_finished_webhook_deliveries_go_and_pending_ones_stay(settings):
    settings.RETENTION_WEBHOOK_DELIVERIES_DAYS = 90
    hook = Webhook.objects.create(name="Chat", url="https://hooks.example.com/x", secret="s")
    old = timezone.now() - 91 * DAY
    rows = {state: WebhookDelivery.objects.create(webhook=hook, event="x", payload={"n": state}, state=state)
            for state in ("delivered", "failed", "pending")}
    recent = WebhookDelivery.objects.create(webhook=hook, event="x", payload={}, state="delivered")
    WebhookDelivery.objects.exclude(id=recent.id).update(created_at=old)
    WebhookDelivery.objects.filter(id=recent.id).update(created_at=timezone.now() - 89 * DAY)

    run()

    assert set(WebhookDelivery.objects.values_list("id", flat=True)) == {rows["pending"].id, recent.id}


def test_audit_rows_go_after_their_days(settings, admin_user):
    settings.RETENTION_AUDIT_DAYS = 730
    old = AuditLog.objects.create(action="x.old", object_repr="old")
    kept = AuditLog.objects.create(action="x.kept", object_repr="kept")
    AuditLog.objects.filter(id=old.id).update(at=timezone.now() - 731 * DAY)
    AuditLog.objects.filter(id=kept.id).update(at=timezone.now() - 729 * DAY)
    run()
    assert not AuditLog.objects.filter(id=old.id).exists() and AuditLog.objects.filter(id=kept.id).exists()


def test_done_outbox_rows_and_old_keys_go_by_their_existing_settings(settings):
    now = timezone.now()
    done = OutboxMessage.objects.create(handler="x", state="done", processed_at=now - 8 * DAY)
    failed = OutboxMessage.objects.create(handler="x", state="failed", processed_at=now - 80 * DAY)
    fresh = OutboxMessage.objects.create(handler="x", state="done", processed_at=now - 6 * DAY)
    key = dict(owner="user:1", method="POST", path="/x", fingerprint="f", status_code=201)
    IdempotencyKey.objects.create(key="old", created_at=now - timedelta(hours=25), **key)
    IdempotencyKey.objects.create(key="new", created_at=now - timedelta(hours=23), **key)

    record = run()

    assert set(OutboxMessage.objects.values_list("id", flat=True)) >= {failed.id, fresh.id}
    assert not OutboxMessage.objects.filter(id=done.id).exists()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert record.counts["outbox"]["removed"] >= 1 and record.archive == "", "operational copies are not archived"


def test_the_raw_bytes_of_decided_mails_go_and_the_row_stays(settings, agent_client):
    from email_channel.models import InboundMessage
    from tests.email_channel.inbound_helpers import deliver, mail, mailbox_make

    settings.RETENTION_MAIL_RAW_DAYS = 60
    mailbox = mailbox_make()
    old = deliver(mailbox, mail(subject="Old mail"))
    recent = deliver(mailbox, mail(subject="Recent mail"))
    assert old.state == recent.state == InboundMessage.State.PROCESSED
    stored_new = InboundMessage.objects.create(mailbox=mailbox, source="pipe", raw=b"From: a@b\r\n\r\nx", size=15)
    InboundMessage.objects.exclude(id=recent.id).update(received_at=timezone.now() - 61 * DAY)
    raw = bytes(InboundMessage.objects.get(id=old.id).raw)

    record = run()

    old.refresh_from_db()
    assert bytes(old.raw) == b"" and old.raw_purged_at is not None and old.message_id and old.subject == "Old mail"
    assert bytes(InboundMessage.objects.get(id=recent.id).raw) != b""
    assert bytes(InboundMessage.objects.get(id=stored_new.id).raw) != b"", "an undecided mail keeps its bytes"
    (line,) = retention.read_archive(record.archive)
    assert line["rule"] == "email.raw" and line["row"]["raw"] == {"base64": __import__("base64").b64encode(raw).decode()}
    assert agent_client.get(f"/agent/mail/{old.id}/").status_code == 404
    assert run().counts == {}, "a scrubbed mail is not due again"


def test_the_mails_of_a_removed_ticket_are_scrubbed_through_the_registry(agent, keep_a_year):
    from email_channel.models import InboundMessage
    from tests.email_channel.inbound_helpers import deliver, mail, mailbox_make

    message = deliver(mailbox_make(), mail(subject="Printer on fire", text="Flames on floor 2"))
    incident = Incident.objects.get(id=message.ticket_id)
    closed_incident(lambda **kw: incident, agent, days_ago=400)

    run()

    message.refresh_from_db()
    assert not exists(incident)
    assert bytes(message.raw) == b"" and message.subject == "" and message.from_address == ""
    assert message.reason == f"erased with {incident.number}: removed by retention" and message.message_id
    assert InboundMessage.objects.filter(id=message.id).exists()


def test_insights_figures_of_removed_tickets_stay(incident_factory, agent, keep_a_year):
    from insights.models import DailyRollup
    from insights.rollup import rollup_rebuild

    closed_incident(incident_factory, agent, days_ago=400)
    # An older open incident: the nightly rebuild recounts every day from its creation on.
    still_open = incident_factory(title="Open since long ago")
    Incident.objects.filter(id=still_open.id).update(created_at=timezone.now() - 600 * DAY)
    rollup_rebuild()
    before = list(DailyRollup.objects.order_by("day", "kind").values_list("day", "kind", "opened", "resolved"))
    assert before

    run()
    rollup_rebuild()

    after = list(DailyRollup.objects.order_by("day", "kind").values_list("day", "kind", "opened", "resolved"))
    assert after == before and len(before) >= 3


def test_a_batch_costs_the_same_queries_for_one_or_many_tickets(incident_factory, agent, keep_a_year):
    """Per batch a fixed number of statements: the per-row post_delete clean-up of SLA clocks is skipped while
    retention removes a batch (sla's hook removed them all in one DELETE)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(n):
        for i in range(n):
            closed_incident(incident_factory, agent, days_ago=400 + i)
        with CaptureQueriesContext(connection) as ctx:
            run()
        return len(ctx.captured_queries)

    one, ten = queries_for(1), queries_for(10)
    assert ten == one, (one, ten)


# --- review fixes --------------------------------------------------------------------------------------------


def test_a_closed_known_error_stays_for_the_record(agent, keep_a_year):
    from problems.models import Problem
    from problems.search import known_errors_search
    from problems.services import problem_create

    known = problem_create(title="Known: VPN drops after sleep", created_by=agent)
    plain = problem_create(title="Plain old problem", created_by=agent)
    long_ago = timezone.now() - 400 * DAY
    Problem.objects.filter(id=known.id).update(status="closed", closed_at=long_ago, known_error_at=long_ago - DAY)
    Problem.objects.filter(id=plain.id).update(status="closed", closed_at=long_ago)

    record = run()

    assert Problem.objects.filter(id=known.id).exists(), "a known error is kept for the record"
    assert not Problem.objects.filter(id=plain.id).exists()
    assert record.counts["tickets.problem"]["removed"] == 1
    assert known.id in set(known_errors_search(agent, "").values_list("id", flat=True))


def test_each_ticket_batch_records_the_cutoff_and_counts_on_the_run_row(incident_factory, agent, keep_a_year):
    """A run killed after some batches committed (no final save) still tells the insights rollup which days lost
    tickets: every batch writes the run row's tickets_cutoff, counts and archive in its own transaction."""

    for i in range(3):
        closed_incident(incident_factory, agent, days_ago=400 + i, title=f"Old {i}")
    seen = []

    def look(kind, ids):  # runs inside each batch, before it deletes: what does the run row say by then?
        if kind == "incident":
            seen.append(RetentionRun.objects.values("tickets_cutoff", "counts", "archive").get(state="running"))
        return 0

    record = run(batch=1, hook=look)

    assert len(seen) == 3
    assert seen[0]["tickets_cutoff"] is None
    assert seen[1]["tickets_cutoff"] == record.tickets_cutoff, "the first batch wrote the cutoff"
    assert seen[1]["counts"]["tickets.incident"]["removed"] == 1
    assert seen[2]["counts"]["tickets.incident"]["removed"] == 2
    assert seen[1]["archive"] == record.archive and record.archive
    assert record.counts["tickets.incident"]["removed"] == 3


def _gzip_members(path) -> list[int]:
    """The number of lines in each gzip member of an archive file (one member per batch)."""
    import zlib

    data, members = Path(path).read_bytes(), []
    while data:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        members.append(inflate.decompress(data).count(b"\n"))
        data = inflate.unused_data
    return members


def test_a_mail_batch_stops_at_its_bytes_and_every_mail_is_still_archived(settings):
    from email_channel.models import InboundMessage
    from tests.email_channel.inbound_helpers import mailbox_make

    settings.RETENTION_MAIL_RAW_DAYS = 60
    settings.RETENTION_BATCH_BYTES = 25_000
    mailbox = mailbox_make()
    big = b"From: a@b\r\n\r\n" + b"x" * 9_987  # 10,000 bytes
    for i in range(5):
        InboundMessage.objects.create(mailbox=mailbox, source="pipe", raw=big, size=len(big),
                                      message_id=f"<big{i}@example.org>", state=InboundMessage.State.PROCESSED)
    huge = InboundMessage.objects.create(mailbox=mailbox, source="pipe", raw=big * 3, size=3 * len(big),
                                         message_id="<huge@example.org>", state=InboundMessage.State.PROCESSED)
    InboundMessage.objects.update(received_at=timezone.now() - 61 * DAY)
    InboundMessage.objects.filter(id=huge.id).update(received_at=timezone.now() - 62 * DAY)

    record = run()

    # The mail bigger than the cap goes alone (at least one row), then two of 10 kB per batch.
    assert _gzip_members(record.archive) == [1, 2, 2, 1]
    assert record.counts["email.raw"]["removed"] == 6
    assert not InboundMessage.objects.filter(raw_purged_at__isnull=True).exists()
    assert len(retention.read_archive(record.archive)) == 6


def test_the_archive_streams_a_batch_instead_of_building_it_in_memory():
    import tracemalloc

    archive = retention.Archive(RetentionRun.objects.create(state="done"), timezone.now())
    chunk = b"y" * 256 * 1024

    tracemalloc.start()
    try:
        archive.write("email.raw", ({"row": {"id": i, "raw": chunk}} for i in range(40)))  # 10 MB raw
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert archive.lines == 40 and len(retention.read_archive(archive.path)) == 40
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes: the batch was built in memory"


def test_the_keyset_of_the_next_batch_bounds_the_index_scan(incident_factory, agent, keep_a_year):
    from django.db import connection

    (incidents,) = [r for r in retention.ticket_retentions() if r.kind == "incident"]
    qs = retention._after(retention._ticket_due(incidents, timezone.now()), "closed_at",
                          (timezone.now() - 500 * DAY, 7))
    sql, params = qs.order_by("closed_at", "id").values_list("closed_at", "id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert any("closed_at >=" in line for line in conditions), plan


def test_outbox_keep_days_0_purges_done_messages_at_the_next_run_and_a_negative_is_refused(settings):
    import os
    import subprocess
    import sys

    settings.OUTBOX_KEEP_DAYS = 0
    done = OutboxMessage.objects.create(handler="x", state="done", processed_at=timezone.now() - timedelta(seconds=5))
    pending = OutboxMessage.objects.create(handler="x", state="pending")

    run()

    assert not OutboxMessage.objects.filter(id=done.id).exists(), "0 purges done messages, as it did before"
    assert OutboxMessage.objects.filter(id=pending.id).exists()

    env = {**os.environ, "OUTBOX_KEEP_DAYS": "-1", "DJANGO_SETTINGS_MODULE": "servicedesk.settings"}
    started = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode != 0 and "OUTBOX_KEEP_DAYS=-1" in started.stderr


# --- second review: lease, holds, fair shares, failures, the archive's files ---------------------------------


def old_cancelled(incident_factory, title="Cancelled long ago", days_ago=400):
    """An incident cancelled `days_ago` days ago, written straight (the closing itself is tested above)."""
    incident = incident_factory(title=title)
    when = timezone.now() - timedelta(days=days_ago)
    Incident.objects.filter(id=incident.id).update(status="cancelled", closed_at=when, created_at=when)
    return incident


def test_a_long_run_keeps_its_lease_whatever_the_budget_of_the_caller():
    """A manual run with a large budget started hours ago is alive as long as it renews its lease: a beat run
    with a short budget does not abandon it (before, the caller's budget judged the running run's age)."""
    now = timezone.now()
    long_run = RetentionRun.objects.create(state=RetentionRun.State.RUNNING, started_at=now - timedelta(hours=3),
                                           lease_until=now + timedelta(minutes=5))

    assert run(budget=1) is None, "its lease has not run out: no second run beside it"
    assert RetentionRun.objects.get(id=long_run.id).state == RetentionRun.State.RUNNING

    RetentionRun.objects.filter(id=long_run.id).update(lease_until=now - timedelta(seconds=1))
    record = run(budget=1)
    assert record.state == RetentionRun.State.DONE
    dead = RetentionRun.objects.get(id=long_run.id)
    assert dead.state == RetentionRun.State.ABANDONED and "lease ran out" in dead.error


def test_every_batch_moves_the_lease_on_and_a_run_abandoned_meanwhile_stops(incident_factory, keep_a_year):

    incidents = [old_cancelled(incident_factory, f"Old {i}", days_ago=400 + i) for i in range(3)]
    leases = []

    def look(kind, ids):  # inside each batch: what the run row says by then
        if kind == "incident":
            leases.append(RetentionRun.objects.values_list("lease_until", flat=True).get(state="running"))
        return 0

    record = run(batch=1, hook=look)
    assert len(leases) == 3 and leases == sorted(leases) and len(set(leases)) == 3, leases
    assert all(lease > record.started_at for lease in leases)
    assert not any(exists(i) for i in incidents)

    # Another caller took the lease while a batch was under way: that batch rolls back and the run stops.
    incidents = [old_cancelled(incident_factory, f"Old {i}", days_ago=400 + i) for i in range(3)]
    batches = []

    def abandon(kind, ids):
        if kind == "incident":
            batches.append(ids)
            if len(batches) == 2:
                RetentionRun.objects.filter(state="running").update(state="abandoned")
        return 0

    record = run(batch=1, hook=abandon)
    assert len(batches) == 2, "no batch after the lease was lost"
    assert record.state == RetentionRun.State.FAILED and "marked abandoned" in record.error
    assert record.counts["tickets.incident"]["removed"] == 1, "the second batch rolled back"
    assert [exists(i) for i in incidents] == [True, True, False]


def test_a_closed_problem_stays_while_an_incident_it_explains_is_not_closed(incident_factory, agent, keep_a_year):
    from problems.models import Problem, ProblemIncident
    from problems.services import problem_create, problem_link_incidents

    live = incident_factory(title="Still being worked")
    problem = problem_create(title="Flaky switch", created_by=agent)
    problem_link_incidents(problem_id=problem.id, actor=agent, incidents=[live])
    Problem.objects.filter(id=problem.id).update(status="closed", closed_at=timezone.now() - 400 * DAY)

    run()
    assert Problem.objects.filter(id=problem.id).exists(), "its incident is open"

    Incident.objects.filter(id=live.id).update(status="resolved", resolved_at=timezone.now() - 2 * DAY)
    run()
    assert Problem.objects.filter(id=problem.id).exists(), "a resolved incident may still reopen"

    Incident.objects.filter(id=live.id).update(status="closed", closed_at=timezone.now() - DAY)
    record = run()
    assert not Problem.objects.filter(id=problem.id).exists() and record.counts["tickets.problem"]["removed"] == 1
    assert exists(live), "the incident goes by its own date"
    assert not ProblemIncident.objects.filter(incident=live).exists()


def test_a_child_stays_while_its_major_incident_is_open(incident_factory, agent, keep_a_year):
    parent, child = _major_with_child(incident_factory, agent, 3)
    Incident.objects.filter(id=child.id).update(status="closed", closed_at=timezone.now() - 400 * DAY)

    run()
    assert exists(child) and Incident.objects.get(id=child.id).parent_id == parent.id, "the parent is open"

    Incident.objects.filter(id=parent.id).update(status="closed", closed_at=timezone.now() - DAY)
    run()
    assert not exists(child) and exists(parent), "once the parent is closed the child goes by its date"


def test_a_ticket_backlog_does_not_starve_the_other_rules(incident_factory, keep_a_year, settings):
    settings.RETENTION_WEBHOOK_DELIVERIES_DAYS = 90
    incidents = [old_cancelled(incident_factory, f"Old {i}", days_ago=400 + i) for i in range(3)]
    now = timezone.now()
    done = OutboxMessage.objects.create(handler="x", state="done", processed_at=now - 8 * DAY)
    key = IdempotencyKey.objects.create(key="old", created_at=now - timedelta(hours=25), owner="user:1",
                                        method="POST", path="/x", fingerprint="f", status_code=201)
    hook = Webhook.objects.create(name="Chat", url="https://hooks.example.com/x", secret="s")
    delivery = WebhookDelivery.objects.create(webhook=hook, event="x", payload={}, state="delivered")
    WebhookDelivery.objects.filter(id=delivery.id).update(created_at=now - 91 * DAY)

    record = run(batch=1, budget=0)  # the tickets alone would take the whole budget

    assert record.state == RetentionRun.State.BUDGET
    assert record.counts["tickets.incident"]["removed"] == 1 and sum(exists(i) for i in incidents) == 2
    assert not OutboxMessage.objects.filter(id=done.id).exists()
    assert not IdempotencyKey.objects.filter(id=key.id).exists()
    assert not WebhookDelivery.objects.filter(id=delivery.id).exists()


def test_the_time_a_step_leaves_goes_to_the_others_and_back(incident_factory, keep_a_year, monkeypatch):
    """Every incident batch costs one second of a stepped clock; the budget is 10 s for 5 steps. The incidents
    get their share (10 s / 4 steps left: 3 batches), the steps after them use none, and what is left (7 s)
    goes back to the incidents: 10 batches in all, and the outbox still had its turn."""

    for i in range(12):
        old_cancelled(incident_factory, f"Old {i}", days_ago=400 + i)
    done = OutboxMessage.objects.create(handler="x", state="done", processed_at=timezone.now() - 8 * DAY)
    clock = [0.0]
    monkeypatch.setattr(retention, "_clock", lambda: clock[0])

    def tick(kind, ids):
        if kind == "incident":
            clock[0] += 1
        return 0

    assert [step.key for step in retention.plan()] == [
        "tickets.problem", "tickets.incident", "tickets.request", "outbox", "idempotency_keys"]
    record = run(batch=1, budget=10, hook=tick)

    assert record.counts["tickets.incident"]["removed"] == 10
    assert record.state == RetentionRun.State.BUDGET and Incident.objects.count() == 2
    assert not OutboxMessage.objects.filter(id=done.id).exists()


def test_a_failing_step_is_recorded_and_the_others_still_run(settings):
    from servicedesk.registry import RetentionRule, registry

    def remove(ids):
        raise RuntimeError("disk on fire")

    boom = RetentionRule(key="test.boom", label="rows that cannot go", keep=lambda: DAY, date_field="at",
                         due=lambda cutoff: AuditLog.objects.filter(action="x.boom", at__lt=cutoff),
                         remove=remove, archive=False, order=5)
    stuck = AuditLog.objects.create(action="x.boom", object_repr="stuck")
    AuditLog.objects.filter(id=stuck.id).update(at=timezone.now() - 2 * DAY)
    done = OutboxMessage.objects.create(handler="x", state="done", processed_at=timezone.now() - 8 * DAY)

    registry.retention_rules.append(boom)
    try:
        record = run()
        assert record.state == RetentionRun.State.FAILED
        assert record.error == "test.boom: RuntimeError: disk on fire"
        assert AuditLog.objects.filter(id=stuck.id).exists(), "its batch rolled back"
        assert not OutboxMessage.objects.filter(id=done.id).exists(), "the steps after it ran"
        assert record.counts["outbox"]["removed"] == 1 and "test.boom" not in record.counts
        log = AuditLog.objects.filter(action="retention.run").latest("id")
        assert log.changes["state"] == "failed" and log.changes["error"] == record.error

        with pytest.raises(CommandError, match="test.boom: RuntimeError: disk on fire"):
            call_command("retention_run", stdout=io.StringIO())
    finally:
        registry.retention_rules.remove(boom)


def test_the_archive_folders_and_files_are_private_and_fsynced(incident_factory, keep_a_year, settings,
                                                               monkeypatch):
    import os
    import stat

    synced = []
    fsync = os.fsync

    def spy(fd):
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    old_cancelled(incident_factory)
    record = run()

    path = Path(record.archive)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, path.parent.parent, Path(settings.RETENTION_ARCHIVE_DIR)):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    # The member is fsync'ed, then the new file's folder (and each new folder's parent), before the commit.
    assert synced[0] == "folder" and synced.count("file") == 1 and synced[-1] == "folder"


def _archive_file(settings, when, run_id, body=b""):
    stamp = when.astimezone(__import__("datetime").UTC)
    path = Path(settings.RETENTION_ARCHIVE_DIR) / f"{stamp:%Y}" / f"{stamp:%m}" / (
        f"retention-{stamp:%Y%m%dT%H%M%SZ}-run{run_id}.jsonl.gz")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body))
    return path


def test_archive_files_older_than_retention_archive_days_go(settings):
    now = timezone.now()
    expired = _archive_file(settings, now - 100 * DAY, 1)
    also_expired = _archive_file(settings, now - 31 * DAY - timedelta(hours=1), 2)
    recent = _archive_file(settings, now - 29 * DAY, 3)
    notes = expired.parent / "notes.txt"
    notes.write_text("kept: not an archive file")

    assert run().counts == {}, "RETENTION_ARCHIVE_DAYS=0: archives are kept for ever"
    assert expired.exists() and also_expired.exists()

    settings.RETENTION_ARCHIVE_DAYS = 30
    out = io.StringIO()
    call_command("retention_run", "--dry-run", stdout=out)
    assert "archive_files: 2 archive files older than 30 days would go" in out.getvalue()
    assert expired.exists()

    record = run()

    assert record.counts["archive_files"] == {"removed": 2}
    assert not expired.exists() and not also_expired.exists() and recent.exists() and notes.exists()
    assert expired.parent.exists(), "a folder with other files stays"
    if also_expired.parent not in (expired.parent, recent.parent):
        assert not also_expired.parent.exists(), "a month folder left empty goes"


def test_a_write_that_fails_half_way_leaves_the_archive_whole():
    archive = retention.Archive(RetentionRun.objects.create(state="done"), timezone.now())
    archive.write("audit", [{"row": {"id": 1}}])
    size = archive.path.stat().st_size

    with pytest.raises(TypeError):
        archive.write("audit", iter([{"row": {"id": 2}}, {"row": {"id": object()}}]))

    assert archive.path.stat().st_size == size
    assert [line["row"]["id"] for line in retention.read_archive(archive.path)] == [1]
    assert archive.lines == 1


def test_a_full_disk_half_way_through_a_batch_removes_nothing_of_it_and_the_file_reads_whole(settings,
                                                                                           monkeypatch):
    import errno

    from monitoring.models import Event
    from tests.monitoring.console_data import make_alert, make_event, make_source

    settings.RETENTION_EVENTS_DAYS = 30
    source = make_source()
    alert = make_alert(source)
    first = make_event(source, alert=alert, received_at=timezone.now() - 32 * DAY)
    second = make_event(source, alert=alert, received_at=timezone.now() - 31 * DAY)

    class FullDisk(io.FileIO):
        def write(self, data):
            data = bytes(data)
            super().write(data[: max(1, len(data) // 2)])
            raise OSError(errno.ENOSPC, "No space left on device")

    opened = []
    real_open = retention.Archive._open

    def open_(self, fd):
        opened.append(fd)
        return real_open(self, fd) if len(opened) == 1 else FullDisk(fd, "ab")

    monkeypatch.setattr(retention.Archive, "_open", open_)
    record = run(batch=1)

    assert len(opened) == 2
    assert record.state == RetentionRun.State.FAILED
    assert record.error.startswith("monitoring.events: OSError:") and "No space left" in record.error
    assert [line["row"]["id"] for line in retention.read_archive(record.archive)] == [first.id]
    assert set(Event.objects.values_list("id", flat=True)) == {second.id}, "the failed batch removed nothing"


def test_the_mails_of_a_removed_ticket_are_not_read_again_by_the_raw_rule(agent, keep_a_year, settings):
    from email_channel.models import InboundMessage
    from tests.email_channel.inbound_helpers import deliver, mail, mailbox_make

    mailbox = mailbox_make()
    kept_raw = deliver(mailbox, mail(subject="Printer on fire", text="Flames"))
    purged = deliver(mailbox, mail(subject="Scanner on fire", text="Smoke"))
    long_ago = timezone.now() - 400 * DAY
    InboundMessage.objects.update(received_at=long_ago)
    purged_at = timezone.now() - 300 * DAY
    InboundMessage.objects.filter(id=purged.id).update(raw=b"", raw_purged_at=purged_at)
    for message in (kept_raw, purged):
        closed_incident(lambda message=message, **kw: Incident.objects.get(id=message.ticket_id), agent,
                        days_ago=400)

    settings.RETENTION_MAIL_RAW_DAYS = 500  # the mails' bytes are not due yet
    record = run()
    assert record.counts["tickets.incident"]["removed"] == 2
    kept_raw.refresh_from_db()
    purged.refresh_from_db()
    assert kept_raw.raw_purged_at is not None and bytes(kept_raw.raw) == b"", "stamped when it became a tombstone"
    assert purged.raw_purged_at == purged_at, "a mail whose bytes the raw rule removed keeps that date"

    settings.RETENTION_MAIL_RAW_DAYS = 30
    record = run()
    assert "email.raw" not in record.counts, "a tombstone is never read (nor archived) again"
