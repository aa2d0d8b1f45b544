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
from django.utils import timezone

from servicedesk.outbox import outbox_enqueue_many
from sla.models import ClockState, SlaClock

BATCH = 500


class SweepResult(NamedTuple):
    breached: int
    warned: int


def _sweep_stage(stage: str, now, batch: int) -> int:
    at_field, mark_field = ("due_at", "breached_at") if stage == "breach" else ("warn_at", "warned_at")
    done = 0
    while True:
        with transaction.atomic():
            clocks = list(
                SlaClock.objects.select_for_update(skip_locked=True)
                .filter(state=ClockState.RUNNING, **{f"{mark_field}__isnull": True, f"{at_field}__lte": now})
                .order_by(at_field)
                .only("id", "warned_at", "breached_at", "warn_at")[:batch]
            )
            for clock in clocks:
                setattr(clock, mark_field, now)
                if stage == "breach" and clock.warned_at is None:
                    clock.warned_at = now  # breached before it was warned: the warning is moot
                clock.warn_at = None if clock.warned_at is not None else clock.warn_at
            SlaClock.objects.bulk_update(clocks, ["warned_at", "breached_at", "warn_at"])
            outbox_enqueue_many("sla.escalate", [{"clock_id": c.id, "stage": stage, "at": now} for c in clocks])
        done += len(clocks)
        if len(clocks) < batch:
            return done


def sla_sweep(*, now=None, batch: int = BATCH) -> SweepResult:
    now = now or timezone.now()
    breached = _sweep_stage("breach", now, batch)
    warned = _sweep_stage("warning", now, batch)
    return SweepResult(breached=breached, warned=warned)
