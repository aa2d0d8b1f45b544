"""What a warning or a breach does: the "sla.escalate" outbox handler, one message per clock and stage.

It writes an internal line on the ticket's timeline and runs the policy's escalation steps for the stage, in
the handler's transaction: the timeline line, the queued mails and webhook deliveries and any reassignment or
priority change commit together with the message's "done" mark, so each happens exactly once. A step that
cannot apply (the ticket was closed meanwhile, nobody is assigned) is said on the timeline instead.

Mails to people (notify the assignee, the team lead) wait for the receiving team's working hours when the
team's `TeamWorkingHours` says so, except for P1 tickets. An OLA clock has no policy: its breach notifies the
lead of the team whose OLA it is.
"""

import logging
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from servicedesk.errors import DomainError
from servicedesk.models import Team, WebhookDelivery
from servicedesk.notifications import webhook_enqueue
from servicedesk.outbox import Fail, outbox_enqueue, outbox_handler
from sla import clock as engine
from sla.clocks import clock_calendar, remaining_seconds
from sla.models import ClockKind, EscalationStep, SlaClock, TeamWorkingHours
from sla.registry import TicketInfo, adapter_for

log = logging.getLogger(__name__)

Action = EscalationStep.Action
STAGE_WORDS = {"warning": "warning", "breach": "breached"}


def escalation_payload(clock: SlaClock, info: TicketInfo, stage: str, now: datetime) -> dict:
    """What mails and webhooks say about a warning or breach: plain values only."""
    remaining = remaining_seconds(clock, clock_calendar(clock.calendar), now)
    return {
        "event": f"sla.{STAGE_WORDS[stage]}",
        "stage": stage,
        "clock": clock.kind,
        "clock_label": clock.get_kind_display(),
        "policy": clock.policy_name,
        "target_seconds": clock.target_seconds,
        "due_at": clock.due_at.isoformat() if clock.due_at else None,
        "due_local": _local(clock.due_at),
        "remaining_seconds": round(remaining),
        "ticket": {"type": clock.ticket_type, "number": info.number, "title": info.title,
                   "priority": info.priority, "team": info.team_name, "url": info.url},
    }


def _local(at: datetime | None) -> str:
    """An instant as people read it, in the site's time zone: "Mon 30 Nov 2026, 12:00 (Europe/London)"."""
    if at is None:
        return ""
    return f"{timezone.localtime(at):%a %d %b %Y, %H:%M} ({timezone.get_current_timezone_name()})"


def _hold_until(team_id: int | None, priority: int, now: datetime) -> datetime | None:
    """When a mail to this team's people may go: None for now, else the next opening of its working hours
    after `now` (the instant the sweep saw the warning or breach; processed later than that opening, the mail
    goes at once)."""
    if team_id is None or priority == 1:
        return None
    hours = TeamWorkingHours.objects.filter(team_id=team_id, hold_escalations=True).select_related(
        "calendar").first()
    if hours is None:
        return None
    cal = clock_calendar(hours.calendar)
    opening = engine.next_opening(now, cal)
    return None if opening <= now else opening


def _mail(to: str, payload: dict, *, clock, info: TicketInfo, team_id, now) -> str:
    """One escalation mail, threaded with the ticket's other mail (servicedesk.mailthread: the clock's ticket
    type is the ticket's registered kind). Internal: it goes to the desk only, so a reply to it by mail is an
    internal note, never a public reply to the requester."""
    held = _hold_until(team_id, info.priority, now)
    thread = {"kind": clock.ticket_type, "id": clock.ticket_id, "number": info.number, "title": info.title,
              "internal": True}
    outbox_enqueue("email.send", {"template": "sla_escalation", "to": [to], "context": payload, "thread": thread},
                   not_before=held)
    return f", held until {timezone.localtime(held):%a %d %b %H:%M}" if held else ""


def _run_step(step_action: str, step, clock, info: TicketInfo, payload: dict, adapter, now) -> str:
    """Run one step; return what happened, for the timeline."""
    if step_action == Action.NOTIFY_ASSIGNEE:
        if not info.assignee_email:
            return "nobody is assigned to notify"
        return "assignee notified" + _mail(info.assignee_email, payload, clock=clock, info=info,
                                           team_id=info.team_id, now=now)
    if step_action == Action.NOTIFY_TEAM_LEAD:
        team_id = clock.team_id if clock.kind == ClockKind.OLA else info.team_id
        lead = Team.objects.filter(id=team_id).values_list("lead__email", flat=True).first() if team_id else None
        if not lead:
            return "no team lead to notify"
        return "team lead notified" + _mail(lead, payload, clock=clock, info=info, team_id=team_id, now=now)
    if step_action == Action.WEBHOOK:
        delivery = WebhookDelivery.objects.create(webhook=step.webhook, event=payload["event"], payload=payload)
        webhook_enqueue(delivery)
        return f"webhook {step.webhook.name} called"
    try:
        if step_action == Action.REASSIGN_TEAM:
            adapter.reassign(clock.ticket_id, step.team_id, f"SLA {STAGE_WORDS[payload['stage']]}")
            return f"reassigned to {step.team.name}"
        if step_action == Action.RAISE_PRIORITY:
            if info.priority <= 1:
                return "priority already P1"
            adapter.raise_priority(clock.ticket_id, f"SLA {STAGE_WORDS[payload['stage']]}")
            return f"priority raised to P{info.priority - 1}"
    except DomainError as error:
        return f"{step.get_action_display().lower()} not done: {error}"
    return f"unknown action {step_action}"


@outbox_handler("sla.escalate", max_attempts=5, queue="sla")
def escalate(message):
    # Locked: a ticket change moving this clock waits for the escalation, and the other way round.
    clock = SlaClock.objects.select_for_update(of=("self",)).select_related("calendar", "policy").filter(
        id=message.payload["clock_id"]).first()
    if clock is None:
        return None  # the ticket was erased
    stage = message.payload["stage"]
    now = parse_datetime(message.payload["at"]) if message.payload.get("at") else timezone.now()
    adapter = adapter_for(clock.ticket_type)
    if adapter is None:
        return Fail(f"no SLA adapter registered for ticket type {clock.ticket_type!r}")
    info = adapter.info(clock.ticket_id)
    if info is None:
        return None
    if not clock.active:
        # Stopped between the sweep and now (answered, resolved, cancelled): nothing left to escalate.
        adapter.note(clock.ticket_id, f"{clock.get_kind_display()} {STAGE_WORDS[stage]}, but the clock "
                                      f"{clock.get_state_display().lower()} meanwhile: no escalation",
                     {"event": f"sla.{STAGE_WORDS[stage]}", "clock": clock.kind, "steps": []})
        return None
    payload = escalation_payload(clock, info, stage, now)
    if clock.kind == ClockKind.OLA:
        steps = [(Action.NOTIFY_TEAM_LEAD, None)] if stage == "breach" else []
    elif clock.policy is None:
        steps = []
    else:
        steps = [(s.action, s) for s in clock.policy.escalation_steps.filter(when=stage).select_related(
            "team", "webhook")]
    done = [_run_step(action, step, clock, info, payload, adapter, now) for action, step in steps]
    what = f"{clock.get_kind_display()} {'SLA' if clock.kind != ClockKind.OLA else 'target'}"
    due = timezone.localtime(clock.due_at).strftime("%a %d %b %H:%M") if clock.due_at else "—"
    body = (f"{what} breached (was due {due})" if stage == "breach"
            else f"{what} at {clock.warning_percent} % (due {due})")
    if done:
        body += ": " + "; ".join(done)
    adapter.note(clock.ticket_id, body, {"event": f"sla.{STAGE_WORDS[stage]}", "clock": clock.kind,
                                         "steps": done})
    return None
