"""Retention: how long history is kept, and the run that removes what is due (docs/retention.md).

What goes, each after its own setting (0 days = kept for ever, the default):

- tickets closed or cancelled before RETENTION_TICKETS_DAYS ago, of every type that registered a
  `TicketRetention`, with their timeline, attachments (and files, on commit), watchers and rating, and what the
  other apps keep about them by id (their `tickets_retire_hook`s: SLA clocks, the email channel's mails). An app
  may hold tickets that are due (`RetentionHold`: an incident a problem still explains stays, a problem stays
  while an incident it explains is open);
- rows of the kernel's and the apps' `RetentionRule`s: done outbox messages (OUTBOX_KEEP_DAYS), Idempotency-Keys
  (IDEMPOTENCY_KEY_TTL_HOURS), finished webhook deliveries, audit rows, processed monitoring events, the raw
  bytes of processed mails (scrubbed, the row stays for dedupe);
- archive files older than RETENTION_ARCHIVE_DAYS (0: kept for ever).

`retention_run()` (beat "retention-run", `manage.py retention_run`) takes each kind in batches of RETENTION_BATCH
rows, oldest first, one transaction per batch: the batch is read through the index on its date with
`FOR UPDATE SKIP LOCKED` (a row someone is changing is left for the next run, never waited for), archived, then
removed. Each kind (a step) gets a fair share of what is left of RETENTION_BUDGET_SECONDS (that time split
between the steps still to go, so time a step does not use flows to the later ones; every step due gets at
least one batch; time left at the end goes back to the steps that were cut), so a backlog of one kind never
starves the others; the next run goes on where it stopped, since what is due is found again by its date. A step
that raises is recorded on the run (its key and the error), the others still run, and the run ends failed.

One run at a time: a `RetentionRun` row in state "running" (a partial unique constraint) is the lease, so
PgBouncer's transaction mode is fine (no session lock). The running run moves its `lease_until` on at every
batch; another caller marks it abandoned only once that time has passed, whatever either's budget.

The archive (RETENTION_ARCHIVE, on by default): every batch appends one gzip member of JSON lines to the run's
file under RETENTION_ARCHIVE_DIR/<yyyy>/<mm>/ (folders 0o700, files 0o600), written and fsync'ed (and the folder,
for a new file) before the batch commits, so nothing is removed that the file does not hold (a batch that rolls
back afterwards leaves lines of rows that are still there; each line carries the run id). A write that fails
half-way is cut back to the file's size before the batch, so the file always reads whole. Readers:
`gzip.open(path, "rt")` reads all members as one text.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from servicedesk.models import (
    Attachment,
    AuditLog,
    IdempotencyKey,
    OutboxMessage,
    Rating,
    RetentionRun,
    TimelineEntry,
    Watcher,
    WebhookDelivery,
)
from servicedesk.registry import RetentionRule, TicketRetention, registry

log = logging.getLogger(__name__)

# The ticket kind whose rows retention is deleting right now, after the apps' `tickets_retire_hook`s removed what
# they keep about the whole batch: per-row post_delete handlers doing the same (an erased incident's SLA clocks)
# skip it (`retiring(kind)`), instead of one DELETE per ticket.
_retiring: ContextVar[str | None] = ContextVar("retiring", default=None)


def retiring(kind: str) -> bool:
    """Whether retention is deleting tickets of `kind` in bulk (their per-ticket clean-up is done already)."""
    return _retiring.get() == kind

# How far ahead a running run holds its lease, moved on at every batch: far longer than one batch takes. Once
# its lease_until has passed, the run is taken for dead (its worker was killed or hangs) and may be abandoned.
LEASE = timedelta(minutes=10)

# The run's clock for its time budget (a test may step it).
_clock = time.monotonic


class LeaseLost(Exception):
    """Another caller marked this run abandoned (its lease had run out): it must stop, its batch rolls back."""


def _days(name: str):
    def keep() -> timedelta | None:
        days = getattr(settings, name)
        return timedelta(days=days) if days else None

    return keep


# --- the kernel's own rules ----------------------------------------------------------------------------------


def _outbox_keep() -> timedelta:
    # As before retention: 0 purges done messages at the next run (not "keep for ever" as for the other rules).
    return timedelta(days=settings.OUTBOX_KEEP_DAYS)


def _keys_keep() -> timedelta:
    return timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


KERNEL_RULES = [
    # Done side effects: failed ones stay until someone looks (admin). Index outbox_state_processed_idx.
    RetentionRule(key="outbox", label="done outbox messages", keep=_outbox_keep, date_field="processed_at",
                  due=lambda cutoff: OutboxMessage.objects.filter(state=OutboxMessage.State.DONE,
                                                                  processed_at__lt=cutoff),
                  archive=False, order=10),
    RetentionRule(key="idempotency_keys", label="Idempotency-Keys", keep=_keys_keep, date_field="created_at",
                  due=lambda cutoff: IdempotencyKey.objects.filter(created_at__lte=cutoff), archive=False, order=11),
    # Pending deliveries are still being tried. Index webhook_delivery_created_idx.
    RetentionRule(key="webhook_deliveries", label="finished webhook deliveries",
                  keep=_days("RETENTION_WEBHOOK_DELIVERIES_DAYS"), date_field="created_at",
                  due=lambda cutoff: WebhookDelivery.objects.filter(
                      created_at__lt=cutoff, state__in=[WebhookDelivery.State.DELIVERED, WebhookDelivery.State.FAILED]),
                  order=12),
    RetentionRule(key="audit", label="audit log rows", keep=_days("RETENTION_AUDIT_DAYS"), date_field="at",
                  due=lambda cutoff: AuditLog.objects.filter(at__lt=cutoff), order=90),
]


def rules() -> list[RetentionRule]:
    return sorted([*KERNEL_RULES, *registry.retention_rules], key=lambda r: (r.order, r.key))


def rules_by_key() -> dict[str, RetentionRule]:
    return {rule.key: rule for rule in rules()}


def ticket_retentions() -> list[TicketRetention]:
    return sorted(registry.retentions.values(), key=lambda r: (r.order, r.kind))


def _tickets_keep() -> timedelta | None:
    return timedelta(days=settings.RETENTION_TICKETS_DAYS) if settings.RETENTION_TICKETS_DAYS else None


def _held(retention: TicketRetention, qs):
    for hold in registry.retention_holds:
        if retention.kind in hold.ticket_kinds:
            qs = hold.narrow(retention.kind, qs)
    return qs


def _ticket_due(retention: TicketRetention, cutoff: datetime):
    return _held(retention, retention.due(cutoff))


# --- the archive ---------------------------------------------------------------------------------------------


class _Encoder(DjangoJSONEncoder):
    def default(self, o):
        if isinstance(o, (bytes, memoryview)):
            return {"base64": base64.b64encode(bytes(o)).decode()}
        return super().default(o)


def _fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a new file or folder in it) durable, as fsync does for a file's bytes."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _archive_folder(folder: Path) -> None:
    """Create `folder` (RETENTION_ARCHIVE_DIR/<yyyy>/<mm>) and whichever of its archive folders are missing, each
    0o700 (the archive holds what was removed: personal data) and fsync'ed into its parent. Folders above
    RETENTION_ARCHIVE_DIR (MEDIA_ROOT) are created as before, with the default modes."""
    root = Path(settings.RETENTION_ARCHIVE_DIR)
    root.parent.mkdir(parents=True, exist_ok=True)
    for path in (root, folder.parent, folder):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        _fsync_dir(path.parent)


class Archive:
    """The run's gzip JSON-lines file, opened at its first batch; each batch is one complete gzip member."""

    def __init__(self, run: RetentionRun, now: datetime):
        self.run = run
        stamp = now.astimezone(UTC)
        folder = Path(settings.RETENTION_ARCHIVE_DIR) / f"{stamp:%Y}" / f"{stamp:%m}"
        self.path = folder / f"retention-{stamp:%Y%m%dT%H%M%SZ}-run{run.id}.jsonl.gz"
        self.at = now.isoformat()
        self.lines = 0

    def _open(self, fd: int):
        """The file to append to, unbuffered: what the member writes goes straight to the file."""
        return open(fd, "ab", buffering=0)

    def write(self, rule: str, records) -> None:
        """Append `records` (a list or an iterator) as one gzip member, streamed line by line: memory holds one
        record's line at a time, not the batch's text and its compressed copy.

        If anything fails before the member is complete and fsync'ed (a full disk, a record that cannot be
        serialised), the file is cut back to its size before this batch and the error raised: a member cut short
        would make every later member of the file unreadable, and the batch then rolls back, so nothing is
        removed that the file does not hold."""
        new = not self.path.exists()
        if new:
            _archive_folder(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        lines = 0
        with self._open(fd) as handle:
            size = os.fstat(fd).st_size
            try:
                member = gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=6)
                try:
                    for record in records:
                        member.write((json.dumps({"run": self.run.id, "removed_at": self.at, "rule": rule,
                                                  **record}, cls=_Encoder, ensure_ascii=False) + "\n").encode())
                        lines += 1
                finally:
                    member.close()  # after an error too (its trailer is cut off below with the rest)
                os.fsync(fd)
            except BaseException:
                os.ftruncate(fd, size)
                os.fsync(fd)
                if new:
                    self.path.unlink()
                raise
        if new:
            _fsync_dir(self.path.parent)  # the file's name is in its folder for good before the batch commits
        self.lines += lines


# An archive file's name: the UTC time its run started, and the run's id.
ARCHIVE_NAME = re.compile(r"retention-(\d{8}T\d{6}Z)-run\d+\.jsonl\.gz")


def archives_due(now: datetime | None = None) -> list[Path]:
    """The archive files written more than RETENTION_ARCHIVE_DAYS ago, by the time in their name (when their run
    started); files of any other name are never due. None while RETENTION_ARCHIVE_DAYS is 0 (kept for ever)."""
    days = settings.RETENTION_ARCHIVE_DAYS
    root = Path(settings.RETENTION_ARCHIVE_DIR)
    if not days or not root.is_dir():
        return []
    cutoff = (now or timezone.now()) - timedelta(days=days)
    due = []
    for path in sorted(root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/retention-*.jsonl.gz")):
        match = ARCHIVE_NAME.fullmatch(path.name)
        if match and datetime.strptime(match[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) < cutoff:
            due.append(path)
    return due


def archives_expire(now: datetime | None = None) -> int:
    """Delete the archive files that are due (`archives_due`) and the month and year folders that leaves empty.
    Returns how many files went."""
    due = archives_due(now)
    for path in due:
        path.unlink()
        for folder in (path.parent, path.parent.parent):
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break
    return len(due)


def _fields(model) -> list[str]:
    # The stored search vector is derived from the other fields: not worth archiving.
    return [f.attname for f in model._meta.concrete_fields if f.get_internal_type() != "SearchVectorField"]


def _rows(qs) -> list[dict]:
    return list(qs.values(*_fields(qs.model)))


# --- one batch -----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    removed: int = 0
    parts: dict = field(default_factory=dict)
    after: tuple | None = None  # (date, id) of the last row claimed: where the next batch starts
    more: bool = False  # the last batch was full (by rows or bytes): more may be due

    def add(self, **parts: int) -> None:
        for key, value in parts.items():
            self.parts[key] = self.parts.get(key, 0) + value


def _after(qs, date_field: str, after: tuple):
    """Rows after (date, id) in (date, id) order. The plain `date >= X` bounds the index scan (an index condition);
    the OR alone would only filter rows read from the oldest date on."""
    at, last_id = after
    return qs.filter(Q(**{f"{date_field}__gte": at}),
                     Q(**{f"{date_field}__gt": at}) | Q(**{date_field: at, "id__gt": last_id}))


def _claim(qs, date_field: str, batch: int, tally: Tally, size_field: str | None = None) -> list[int]:
    """The next batch's ids, oldest first, skipping rows another transaction holds. Within a run each batch starts
    after the last row of the one before (keyset on (date, id)): the index entries of rows just deleted are dead
    until vacuum, and an index scan from the oldest date would step over all of them again at every batch. A row
    passed over (locked, held) is found by the next run."""
    if tally.after is not None:
        qs = _after(qs, date_field, tally.after)
    fields = (date_field, "id", size_field) if size_field else (date_field, "id")
    rows = list(qs.order_by(date_field, "id").select_for_update(skip_locked=True).values_list(*fields)[:batch])
    tally.more = len(rows) == batch
    if size_field:
        # Stop at RETENTION_BATCH_BYTES (at least one row); the rows left out stay locked only until this
        # transaction ends and start the next batch.
        total, keep = 0, 0
        for row in rows:
            total += row[2] or 0
            if keep and total > settings.RETENTION_BATCH_BYTES:
                tally.more = True
                break
            keep += 1
        rows = rows[:keep]
    if rows:
        tally.after = rows[-1][:2]
    return [row[1] for row in rows]


def _delete_in(model, column: str, values: list, extra: tuple = ()) -> int:
    """DELETE ... WHERE column IN (...) [AND extra], in SQL: no rows are loaded (the ORM would load each one to
    set the attachments' `entry` to NULL; this batch's attachments are already gone)."""
    if not values:
        return 0
    marks = ", ".join(["%s"] * len(values))
    where, params = f"{connection.ops.quote_name(column)} IN ({marks})", list(values)
    for col, value in extra:
        where += f" AND {connection.ops.quote_name(col)} = %s"
        params.append(value)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {where}", params)
        return cursor.rowcount


def _tickets_batch(retention: TicketRetention, cutoff: datetime, batch: int, archive: Archive | None,
                   tally: Tally, checkpoint=None) -> int:
    """One batch of due tickets in one transaction; `checkpoint()` runs last in it (the run row's figures)."""
    from servicedesk.services import _files_delete

    model = retention.model
    content_type = ContentType.objects.get_for_model(model)
    with transaction.atomic():
        ids = _claim(_ticket_due(retention, cutoff), retention.date_field, batch, tally)
        if not ids:
            return 0
        about = {"content_type": content_type, "object_id__in": ids}
        attachments = _rows(Attachment.objects.filter(**about).order_by("id"))
        files = [a["file"] for a in attachments if a["file"]]
        if archive is not None:
            timeline = _rows(TimelineEntry.objects.filter(**about).order_by("object_id", "created_at", "id"))
            watchers = _rows(Watcher.objects.filter(**about).order_by("id"))
            ratings = _rows(Rating.objects.filter(**about))
            by_ticket: dict[int, dict] = {
                row["id"]: {"kind": retention.kind, "table": model._meta.db_table, "ticket": row, "timeline": [],
                            "attachments": [], "watchers": [], "rating": None}
                for row in _rows(model.objects.filter(id__in=ids).order_by(retention.date_field, "id"))}
            for key, rows in (("timeline", timeline), ("attachments", attachments), ("watchers", watchers)):
                for row in rows:
                    by_ticket[row["object_id"]][key].append(row)
            for row in ratings:
                by_ticket[row["object_id"]]["rating"] = row
            archive.write(f"tickets.{retention.kind}", list(by_ticket.values()))
        counts = {"attachments": Attachment.objects.filter(**about).delete()[0]}
        counts["timeline_entries"] = _delete_in(TimelineEntry, "object_id", ids,
                                                (("content_type_id", content_type.id),))
        counts["watchers"] = Watcher.objects.filter(**about).delete()[0]
        counts["ratings"] = Rating.objects.filter(**about).delete()[0]
        # What the other apps keep about these tickets by id (SLA clocks, the email channel's mails), in this
        # transaction, before the ticket rows go.
        counts["other_apps"] = sum(hook(retention.kind, ids) or 0 for hook in registry.retire_hooks)
        # The ORM's delete: foreign keys to the tickets cascade or are set to NULL as each model says (problem
        # links, approvals, a child incident's parent, an alert's incident), and post_delete signals run.
        token = _retiring.set(retention.kind)
        try:
            model.objects.filter(id__in=ids).delete()
        finally:
            _retiring.reset(token)
        counts["files"] = len(files)
        transaction.on_commit(lambda: _files_delete(files))
        tally.add(**counts)
        tally.removed += len(ids)
        if checkpoint is not None:
            checkpoint()
    return len(ids)


def _rule_batch(rule: RetentionRule, cutoff: datetime, batch: int, archive: Archive | None, tally: Tally,
                checkpoint=None) -> int:
    with transaction.atomic():
        qs = rule.due(cutoff)
        ids = _claim(qs, rule.date_field, batch, tally, rule.size_field)
        if not ids:
            return 0
        if archive is not None and rule.archive:
            rows = rule.archive_rows(ids) if rule.archive_rows else _rows(qs.model.objects.filter(id__in=ids)
                                                                          .order_by(rule.date_field, "id"))
            archive.write(rule.key, ({"table": qs.model._meta.db_table, "row": row} for row in rows))
        changed = rule.remove(ids) if rule.remove else _delete_in(qs.model, "id", ids)
        tally.add(rows=changed)
        tally.removed += len(ids)
        if checkpoint is not None:
            checkpoint()
    return len(ids)


# --- what is due ---------------------------------------------------------------------------------------------


@dataclass
class Step:
    key: str
    label: str
    cutoff: datetime
    ticket: TicketRetention | None = None
    rule: RetentionRule | None = None

    def due(self):
        return _ticket_due(self.ticket, self.cutoff) if self.ticket else self.rule.due(self.cutoff)


def plan(now: datetime | None = None) -> list[Step]:
    """The kinds of rows that have a limit, each with the date before which its rows are due, in run order:
    tickets first (problems before incidents), then the other rules."""
    now = now or timezone.now()
    steps: list[Step] = []
    keep = _tickets_keep()
    if keep is not None:
        for retention in ticket_retentions():
            label = f"closed {retention.model._meta.verbose_name_plural}"
            steps.append(Step(f"tickets.{retention.kind}", label, now - keep, ticket=retention))
    for rule in rules():
        keep = rule.keep()
        if keep is not None:
            steps.append(Step(rule.key, rule.label, now - keep, rule=rule))
    return steps


def due_counts(now: datetime | None = None) -> list[tuple[Step, int]]:
    """What a run would remove now (the dry run): each step with the number of rows due."""
    return [(step, step.due().count()) for step in plan(now)]


# --- the run -------------------------------------------------------------------------------------------------


def _lease(now: datetime) -> RetentionRun | None:
    """Start a run, or None while another one is running. A running run is abandoned only once its lease_until
    has passed (it renews it at every batch, whatever its budget); one recorded before leases existed, once its
    start is older than RETENTION_BUDGET_SECONDS plus LEASE."""
    for _ in range(2):
        try:
            with transaction.atomic():
                return RetentionRun.objects.create(started_at=now, state=RetentionRun.State.RUNNING,
                                                   lease_until=timezone.now() + LEASE)
        except IntegrityError:
            at = timezone.now()
            expired = Q(lease_until__lt=at) | Q(
                lease_until__isnull=True,
                started_at__lt=at - timedelta(seconds=settings.RETENTION_BUDGET_SECONDS) - LEASE)
            if not RetentionRun.objects.filter(expired, state=RetentionRun.State.RUNNING).update(
                    state=RetentionRun.State.ABANDONED, finished_at=at,
                    error="its lease ran out: its process stopped (or hung) before the run finished"):
                return None
    return None


def _renew(run: RetentionRun, **fields) -> None:
    """Move the run's lease on (and write `fields`), unless another caller abandoned it meanwhile."""
    until = timezone.now() + LEASE
    if not RetentionRun.objects.filter(id=run.id, state=RetentionRun.State.RUNNING).update(lease_until=until,
                                                                                         **fields):
        raise LeaseLost(f"retention run {run.id} was marked abandoned by another run (its lease had run out)")
    run.lease_until = until
    for name, value in fields.items():
        setattr(run, name, value)


def _checkpoint(run: RetentionRun, step: Step, tally: Tally, counts: dict, archive: Archive | None):
    """What each batch writes to the run row inside its own transaction, so a run killed later (no final save)
    still says what it removed: its counts, its cutoffs, its archive file and, for tickets, `tickets_cutoff`
    (the insights rollup relies on it to leave the days whose tickets are gone alone); and its lease, moved on.
    Taken into `counts` only once written: a batch that fails leaves the figures of the ones before."""

    def save() -> None:
        figures = {"removed": tally.removed, **tally.parts}
        cutoff = max(filter(None, [run.tickets_cutoff, step.cutoff])) if step.ticket else run.tickets_cutoff
        _renew(run, counts={**counts, step.key: figures}, cutoffs=run.cutoffs, tickets_cutoff=cutoff,
               archive=str(archive.path) if archive is not None and archive.lines else "")
        counts[step.key] = figures

    return save


# A step's outcome in a run.
DONE, MORE, FAILED = "done", "more", "failed"


def _step(run: RetentionRun, step: Step, tally: Tally, until: float, batch: int, counts: dict,
          archive: Archive | None, errors: list[str]) -> str:
    """Batches of one step until nothing of it is due (DONE) or its share of the budget is spent (MORE; at least
    one batch). An error is logged and recorded with the step's key (FAILED): its batch rolled back, the run
    goes on with the other steps. LeaseLost stops the run."""
    checkpoint = _checkpoint(run, step, tally, counts, archive)
    try:
        _renew(run)
        while True:
            if step.ticket:
                taken = _tickets_batch(step.ticket, step.cutoff, batch, archive, tally, checkpoint)
            else:
                taken = _rule_batch(step.rule, step.cutoff, batch, archive, tally, checkpoint)
            if not taken or not tally.more:
                return DONE  # a short batch: nothing due is left of this kind (rows skipped as locked wait)
            if _clock() >= until:
                return MORE
    except LeaseLost:
        raise
    except Exception as exc:
        log.exception("retention run %s: step %s failed", run.id, step.key)
        errors.append(f"{step.key}: {exc.__class__.__name__}: {exc}")
        return FAILED


def retention_run(*, now: datetime | None = None, budget: float | None = None, batch: int | None = None,
                  only: set[str] | None = None) -> RetentionRun | None:
    """Remove what is due, in batches, until nothing is left or the time budget is spent, each step with its
    fair share of it. Returns the run's record (None when another run is going); its state is "failed" if any
    step failed (`error` names each). `only`: step keys to run (no archive expiry then)."""
    now = now or timezone.now()
    budget = settings.RETENTION_BUDGET_SECONDS if budget is None else budget
    batch = batch or settings.RETENTION_BATCH
    run = _lease(now)
    if run is None:
        log.info("retention: another run is going; this one does nothing")
        return None
    deadline = _clock() + budget
    archive = Archive(run, now) if settings.RETENTION_ARCHIVE else None
    counts: dict[str, dict] = {}
    errors: list[str] = []
    cut: list = []
    state = RetentionRun.State.DONE
    try:
        if only is None:
            try:
                expired = archives_expire(now)
            except Exception as exc:
                log.exception("retention run %s: archive expiry failed", run.id)
                errors.append(f"archive_files: {exc.__class__.__name__}: {exc}")
            else:
                if expired:
                    counts["archive_files"] = {"removed": expired}
        steps = [step for step in plan(now) if only is None or step.key in only]
        for step in steps:
            run.cutoffs[step.key] = step.cutoff.isoformat()
        pending = [(step, Tally()) for step in steps]
        first = True
        while pending:
            cut = []
            for index, (step, tally) in enumerate(pending):
                left = deadline - _clock()
                if not first and left <= 0:
                    cut.extend(pending[index:])
                    break
                # This step's share: what is left, split between it and the steps after it in this pass.
                until = _clock() + max(left, 0) / (len(pending) - index)
                if _step(run, step, tally, until, batch, counts, archive, errors) == MORE:
                    cut.append((step, tally))
            first = False
            if not cut or _clock() >= deadline:
                break
            pending = cut  # time is left: it goes to the steps that were cut, shared again
        if errors:
            state = RetentionRun.State.FAILED
        elif cut:
            state = RetentionRun.State.BUDGET
    except BaseException as exc:
        state = RetentionRun.State.FAILED
        errors.append(f"{exc.__class__.__name__}: {exc}")
        if not isinstance(exc, LeaseLost):
            raise
    finally:
        run.state, run.finished_at, run.counts = state, timezone.now(), counts
        run.error = "\n".join(errors)[:2000]
        run.archive = str(archive.path) if archive is not None and archive.lines else ""
        run.save()
        if counts or errors:
            AuditLog.objects.create(action="retention.run", object_repr=f"retention run {run.id}",
                                    changes={"run": run.id, "state": state, "counts": counts,
                                             "archive": run.archive, "error": run.error})
        (log.error if errors else log.info)("retention run %s: %s %s %s", run.id, state, counts, run.error)
    return run


def rule_purge(key: str, *, now: datetime | None = None) -> int:
    """Remove every due row of one kernel rule now, in batches (the outbox and key purges). Not archived."""
    now = now or timezone.now()
    rule = rules_by_key()[key]
    keep = rule.keep()
    if keep is None:
        return 0
    tally = Tally()
    while _rule_batch(rule, now - keep, settings.RETENTION_BATCH, None, tally) and tally.more:
        pass
    return tally.parts.get("rows", 0)


def tickets_complete_from() -> date | None:
    """The first local day whose tickets are all still there: retention removed tickets closed before the
    latest `tickets_cutoff`, so the days up to it may miss some (None: no ticket was ever removed)."""
    cutoff = RetentionRun.objects.filter(tickets_cutoff__isnull=False).aggregate(m=Max("tickets_cutoff"))["m"]
    return timezone.localtime(cutoff).date() + timedelta(days=1) if cutoff else None


def read_archive(path) -> list[dict]:
    """Every record of an archive file (for auditors and tests)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
