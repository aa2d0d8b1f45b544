"""The breach sweep: find the clocks whose warning or due instant has passed, mark each once, and queue its
escalation through the outbox.

It reads only running clocks not yet warned (or not yet breached) whose instant has passed, through the
partial indexes sla_clock_warn_due_idx and sla_clock_breach_due_idx: its cost follows what is due, not how
many clocks are stored. Each batch is claimed with SELECT ... FOR UPDATE SKIP LOCKED and marked in the same
transaction that writes its "sla.escalate" outbox rows, so two sweeps at once never mark one clock twice, and a
sweep killed before its commit leaves the clocks unmarked for the next run: no escalation twice, none lost.
Breaches are swept before warnings, so a clock past both (the sweep was late, or a priority was raised) is
breached without a stale warning first.
"""

from typing import NamedTuple

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from servicedesk.outbox import outbox_enqueue_many
from sla.models import ClockState, SlaClock

BATCH = 500


class SweepResult(NamedTuple):
    breached: int
    warned: int


def _sweep_stage(stage: str, now, batch: int) -> int:
    at_field, mark_field = ("due_at", "breached_at") if stage == "breach" else ("warn_at", "warned_at")
    changes = {mark_field: now, "warn_at": None}  # a marked warning has no instant left to wait for
    if stage == "breach":
        changes["warned_at"] = Coalesce("warned_at", Value(now))  # breached before warned: the warning is moot
    done = 0
    while True:
        with transaction.atomic():
            ids = list(
                SlaClock.objects.select_for_update(skip_locked=True)
                .filter(state=ClockState.RUNNING, **{f"{mark_field}__isnull": True, f"{at_field}__lte": now})
                .order_by(at_field).values_list("id", flat=True)[:batch]
            )
            if ids:  # one UPDATE for the batch: every claimed clock gets the same marks
                SlaClock.objects.filter(id__in=ids).update(**changes)
                outbox_enqueue_many("sla.escalate", [{"clock_id": i, "stage": stage, "at": now} for i in ids])
        done += len(ids)
        if len(ids) < batch:
            return done


def sla_sweep(*, now=None, batch: int = BATCH) -> SweepResult:
    now = now or timezone.now()
    breached = _sweep_stage("breach", now, batch)
    warned = _sweep_stage("warning", now, batch)
    return SweepResult(breached=breached, warned=warned)
