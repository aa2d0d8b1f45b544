"""Service level configuration: business calendars (weekly hours, holidays), SLA policies with their targets
and escalation steps, and OLA targets per team. Admins edit them in Django admin; clocks per ticket read them.

Foreign keys between configuration are PROTECT (a calendar in use by a policy cannot be deleted, nor a team an
escalation step reassigns to); rows that belong to their parent (intervals, holidays, targets, steps) go with
it. `sla` imports no ticket app: a policy names its ticket type by key (sla.registry)."""

import re
import zoneinfo
from datetime import time
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from sla.registry import pause_statuses_known, validate_ticket_type

PRIORITY_CHOICES = [(1, "P1 · Critical"), (2, "P2 · High"), (3, "P3 · Medium"), (4, "P4 · Low"), (5, "P5 · Planning")]
PRIORITY_VALIDATORS = [MinValueValidator(1), MaxValueValidator(5)]


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _zone_names():
        raise ValidationError(f"Unknown time zone {value!r}: use an IANA name such as Europe/London or UTC.")


def default_timezone() -> str:
    return settings.TIME_ZONE


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class BusinessCalendar(models.Model):
    """When the clock runs: weekly working intervals in a time zone, minus holidays; or always (24x7)."""

    name = models.CharField(max_length=120, unique=True)
    timezone = models.CharField(max_length=64, default=default_timezone, validators=[validate_timezone],
                                help_text="IANA time zone of the working hours, e.g. Europe/London.")
    is_24x7 = models.BooleanField("24x7", default=False,
                                  help_text="Every minute counts; working intervals and holidays are ignored.")
    created_at = models.DateTimeField(auto_now_add=True)
    # Raised whenever the calendar, one of its intervals or holidays changes (signals in sla.signals), so the
    # clocks' cache of built calendars (sla.clocks.clock_calendar) knows when a copy is stale.
    revision = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def as_clock_calendar(self):
        """The pure `sla.clock.Calendar` for this calendar. Reads `intervals` and `holidays` through `.all()`, so
        a queryset that prefetched them costs no query per calendar."""
        if self.is_24x7:
            return build_clock_calendar(self.timezone, True)
        return build_clock_calendar(self.timezone, False, [(i.weekday, i.start, i.end) for i in self.intervals.all()],
                                    [h.date for h in self.holidays.all()])


def build_clock_calendar(tz: str, is_24x7: bool, intervals=(), holidays=()):
    """The pure `sla.clock.Calendar` of a time zone, the 24x7 flag, intervals as (weekday, start, end) and
    holiday dates (ignored when 24x7). Also for a calendar as edited and not saved (sla.whatif)."""
    from sla.clock import Calendar

    if is_24x7:
        return Calendar.always(tz)
    week: dict[int, list[tuple[time, time]]] = {day: [] for day in range(7)}
    for weekday, start, end in sorted(intervals, key=lambda i: (i[0], i[1])):
        week[weekday].append((start, end))
    return Calendar(tz=tz, week=week, holidays=frozenset(holidays))


_DAY = 24 * 3600
_WEEK = 7 * _DAY


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def interval_span(weekday: int, start: time, end: time) -> tuple[int, int]:
    """Seconds from Monday 00:00 of the interval's start and end; an end at or before the start is the next
    day's (an overnight shift, start == end a full 24 hours)."""
    begin = weekday * _DAY + _seconds(start)
    finish = weekday * _DAY + _seconds(end)
    if finish <= begin:
        finish += _DAY
    return begin, finish


def find_overlap(rows):
    """The first pair of rows (each `(key, weekday, start, end)`) whose working times overlap, or None.
    Overnight shifts run into the next day, Sunday's into Monday's."""
    spans = [(key, *interval_span(day, start, end)) for key, day, start, end in rows]
    for i, (key_a, a0, a1) in enumerate(spans):
        for key_b, b0, b1 in spans[i + 1:]:
            for shift in (-_WEEK, 0, _WEEK):
                if a0 < b1 + shift and b0 + shift < a1:
                    return key_a, key_b
    return None


def describe_interval(weekday: int, start: time, end: time) -> str:
    overnight = " (overnight)" if end <= start else ""
    return f"{Weekday(weekday).label} {start:%H:%M}-{end:%H:%M}{overnight}"


class WorkingInterval(models.Model):
    """Working time on one weekday, e.g. Monday 09:00-17:00. An end at or before the start is an overnight
    shift (Friday 22:00-06:00 runs into Saturday 06:00). Intervals of a calendar never overlap."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="intervals")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField(help_text="At or before the start: an overnight shift ending the next day.")

    class Meta:
        ordering = ["calendar", "weekday", "start"]
        constraints = [
            models.CheckConstraint(condition=Q(weekday__gte=0, weekday__lte=6), name="sla_interval_weekday_range"),
        ]

    def __str__(self):
        return describe_interval(self.weekday, self.start, self.end)

    def clean(self):
        # Admin's inline formset checks every row of the calendar together (rows may move at once); a row
        # saved on its own is checked against the stored ones.
        if getattr(self, "_overlap_checked_by_formset", False) or not self.calendar_id or self.start is None \
                or self.end is None or self.weekday is None:
            return
        others = WorkingInterval.objects.filter(calendar_id=self.calendar_id).exclude(pk=self.pk)
        rows = [(None, self.weekday, self.start, self.end)] + [(o, o.weekday, o.start, o.end) for o in others]
        clash = find_overlap(rows)
        if clash and clash[0] is None:
            raise ValidationError({"start": f"Overlaps {clash[1]} of this calendar."})


class Holiday(models.Model):
    """A day on which a calendar's working intervals do not count."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["calendar", "date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="sla_holiday_unique_date")]

    def __str__(self):
        return f"{self.date:%Y-%m-%d} {self.name}"


PAUSE_STATUS = re.compile(r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?$")


def default_pause_statuses() -> list[str]:
    return ["on_hold:awaiting_caller"]


class SlaPolicy(models.Model):
    """Targets for the tickets it applies to. A ticket gets the first active policy, by `order`, whose ticket
    type matches, whose priority, service and organisation match or are left empty, and that has a target for
    the ticket's priority (sla.selectors.policy_for)."""

    name = models.CharField(max_length=120, unique=True)
    order = models.PositiveIntegerField(default=100, help_text="Lower first; the first matching policy wins.")
    active = models.BooleanField(default=True)
    ticket_type = models.CharField(max_length=40, default="incident", validators=[validate_ticket_type],
                                   help_text="The kind of ticket, e.g. incident.")
    priority = models.PositiveSmallIntegerField(null=True, blank=True, choices=PRIORITY_CHOICES,
                                                validators=PRIORITY_VALIDATORS, help_text="Empty: any priority.")
    service = models.ForeignKey("servicedesk.Service", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="sla_policies", help_text="Empty: any service.")
    organisation = models.ForeignKey("servicedesk.Organisation", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="sla_policies", help_text="Empty: any organisation.")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="policies")
    warning_percent = models.PositiveSmallIntegerField(
        default=75, validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="Warn when this share of a target has elapsed (1-99).")
    pause_statuses = models.JSONField(
        default=default_pause_statuses, blank=True,
        help_text='Statuses in which the clocks stop: "status" or "status:hold_reason", e.g. '
                  '["on_hold:awaiting_caller"] (on hold only while awaiting the caller) or ["on_hold"] (any hold).')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "id"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.CheckConstraint(condition=Q(warning_percent__gte=1, warning_percent__lte=99),
                                   name="sla_policy_warning_range"),
            models.CheckConstraint(condition=Q(priority__isnull=True) | Q(priority__gte=1, priority__lte=5),
                                   name="sla_policy_priority_range"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        statuses = self.pause_statuses
        if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
            raise ValidationError({"pause_statuses": 'Give a list of statuses, e.g. ["on_hold:awaiting_caller"].'})
        bad = [s for s in statuses if not PAUSE_STATUS.match(s)]
        if bad:
            raise ValidationError({"pause_statuses": f"{', '.join(map(repr, bad))}: write status or "
                                                     "status:hold_reason in lower case, e.g. on_hold:awaiting_caller."})
        known = pause_statuses_known(self.ticket_type)
        unknown = [s for s in statuses if known and s not in known]
        if unknown:
            raise ValidationError({"pause_statuses": f"{', '.join(map(repr, unknown))}: not a status of "
                                                     f"{self.ticket_type}; known: {', '.join(sorted(known))}."})


class SlaTarget(models.Model):
    """A policy's targets for one priority, in business minutes of the policy's calendar."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.PositiveSmallIntegerField(choices=PRIORITY_CHOICES, validators=PRIORITY_VALIDATORS)
    first_response_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    resolution_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["policy", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "priority"], name="sla_target_unique_priority"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="sla_target_priority_range"),
            models.CheckConstraint(condition=Q(first_response_minutes__gte=1, resolution_minutes__gte=1),
                                   name="sla_target_positive"),
            models.CheckConstraint(condition=Q(resolution_minutes__gte=models.F("first_response_minutes")),
                                   name="sla_target_resolution_after_response"),
        ]

    def __str__(self):
        return f"P{self.priority}: respond {self.first_response_minutes} min, resolve {self.resolution_minutes} min"

    def clean(self):
        response, resolution = self.first_response_minutes, self.resolution_minutes
        if response is not None and resolution is not None and 0 < resolution < response:
            raise ValidationError({"resolution_minutes": f"Must be at least the first response target "
                                                         f"({response} min)."})


class EscalationStep(models.Model):
    """What happens when a clock of the policy reaches its warning threshold or breaches."""

    class When(models.TextChoices):
        WARNING = "warning", "At warning"
        BREACH = "breach", "At breach"

    class Action(models.TextChoices):
        NOTIFY_ASSIGNEE = "notify_assignee", "Notify the assignee"
        NOTIFY_TEAM_LEAD = "notify_team_lead", "Notify the team lead"
        WEBHOOK = "webhook", "Call a webhook"
        REASSIGN_TEAM = "reassign_team", "Reassign to a team"
        RAISE_PRIORITY = "raise_priority", "Raise the priority by one"

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="escalation_steps")
    when = models.CharField(max_length=10, choices=When.choices)
    action = models.CharField(max_length=20, choices=Action.choices)
    team = models.ForeignKey("servicedesk.Team", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="sla_escalation_steps", help_text="For “Reassign to a team”.")
    webhook = models.ForeignKey("servicedesk.Webhook", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="sla_escalation_steps", help_text="For “Call a webhook”.")

    class Meta:
        ordering = ["policy", "-when", "id"]  # warning before breach
        constraints = [
            models.CheckConstraint(condition=~Q(action="reassign_team") | Q(team__isnull=False),
                                   name="sla_step_reassign_has_team"),
            models.CheckConstraint(condition=~Q(action="webhook") | Q(webhook__isnull=False),
                                   name="sla_step_webhook_has_webhook"),
        ]

    def __str__(self):
        target = self.team if self.action == self.Action.REASSIGN_TEAM else \
            self.webhook if self.action == self.Action.WEBHOOK else None
        suffix = f": {target}" if target is not None else ""
        return f"{self.get_when_display()}: {self.get_action_display()}{suffix}"

    def clean(self):
        errors = {}
        if self.action == self.Action.REASSIGN_TEAM and not self.team_id:
            errors["team"] = "Choose the team to reassign to."
        if self.action != self.Action.REASSIGN_TEAM and self.team_id:
            errors["team"] = "Only “Reassign to a team” uses a team; leave it empty."
        if self.action == self.Action.WEBHOOK and not self.webhook_id:
            errors["webhook"] = "Choose the webhook to call."
        if self.action != self.Action.WEBHOOK and self.webhook_id:
            errors["webhook"] = "Only “Call a webhook” uses a webhook; leave it empty."
        if errors:
            raise ValidationError(errors)


class OlaTarget(models.Model):
    """An operational level target: business minutes a ticket of this priority may spend assigned to the team
    (each assignment to the team starts its own OLA clock), counted on the team's calendar."""

    team = models.ForeignKey("servicedesk.Team", on_delete=models.PROTECT, related_name="ola_targets")
    priority = models.PositiveSmallIntegerField(choices=PRIORITY_CHOICES, validators=PRIORITY_VALIDATORS)
    minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="ola_targets")

    class Meta:
        ordering = ["team", "priority"]
        verbose_name = "OLA target"
        constraints = [
            models.UniqueConstraint(fields=["team", "priority"], name="sla_ola_unique_team_priority"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="sla_ola_priority_range"),
            models.CheckConstraint(condition=Q(minutes__gte=1), name="sla_ola_positive"),
        ]

    def __str__(self):
        return f"{self.team} P{self.priority}: {self.minutes} min"



class TeamWorkingHours(models.Model):
    """When a team works. Escalations to its people (notify the assignee or the team lead) wait for the next
    opening of this calendar when `hold_escalations` is set, except for P1 tickets, which go out at once."""

    team = models.OneToOneField("servicedesk.Team", on_delete=models.CASCADE, related_name="working_hours")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="teams")
    hold_escalations = models.BooleanField(
        default=True, help_text="Hold escalation mails to this team's people until its working hours (P1 excepted).")

    class Meta:
        verbose_name = "team working hours"
        verbose_name_plural = "team working hours"

    def __str__(self):
        return f"{self.team}: {self.calendar}"


class SlaSettings(models.Model):
    """One row: how often the breach sweep runs. Saving it re-times the beat entry "sla-sweep"."""

    sweep_interval_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(5), MaxValueValidator(3600)],
        help_text="Seconds between two runs of the SLA sweep (5-3600). Warnings and breaches are noticed at "
                  "most this late.")

    class Meta:
        verbose_name = "SLA settings"
        verbose_name_plural = "SLA settings"

    def __str__(self):
        return "SLA settings"

    @classmethod
    def current(cls) -> "SlaSettings":
        return cls.objects.get_or_create(pk=1)[0]


class ClockKind(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    RESOLUTION = "resolution", "Resolution"
    OLA = "ola", "OLA"


class ClockState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    MET = "met", "Met"
    BREACHED = "breached", "Breached"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_CLOCK_STATES = (ClockState.RUNNING, ClockState.PAUSED)


class SlaClock(models.Model):
    """One clock of one ticket: first response, resolution, or the time with one team (OLA).

    A ticket is named by its type key and id (`sla` imports no ticket app). Business time is counted on
    `calendar`: `elapsed_seconds` is what elapsed before `running_since` (the start of the current running
    segment; empty while paused or stopped). `due_at` and `warn_at` are absolute instants, recomputed at every
    event by sla.clocks and empty unless running; the sweep finds what is due through the partial indexes
    below. `warned_at` and `breached_at` mark each threshold once. `segments` lists the running and paused
    stretches with their reasons, to explain the deadline.

    While the ticket is open the state is running or paused (and `breached_at` says whether it is late); when
    the clock stops it becomes met, breached (stopped after its target) or cancelled.
    """

    ticket_type = models.CharField(max_length=40)
    ticket_id = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=ClockKind.choices)
    state = models.CharField(max_length=10, choices=ClockState.choices, default=ClockState.RUNNING)
    policy = models.ForeignKey(SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="clocks")
    policy_name = models.CharField(max_length=120, blank=True,
                                   help_text="The name of the policy the clock counts under (kept if it is deleted).")
    team = models.ForeignKey("servicedesk.Team", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", help_text="OLA clocks: the team; SLA clocks: the team at the stop.")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="clocks")
    priority = models.PositiveSmallIntegerField(validators=PRIORITY_VALIDATORS)
    target_seconds = models.PositiveIntegerField()
    warning_percent = models.PositiveSmallIntegerField(default=75)
    pause_statuses = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    running_since = models.DateTimeField(null=True, blank=True)
    elapsed_seconds = models.FloatField(default=0.0)
    due_at = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    segments = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ticket_type", "ticket_id", "kind", "started_at"]
        verbose_name = "SLA clock"
        indexes = [
            models.Index(fields=["ticket_type", "ticket_id"], name="sla_clock_ticket_idx"),
            # The sweep reads only these: running clocks not yet warned / not yet breached, by instant.
            models.Index(fields=["warn_at"], name="sla_clock_warn_due_idx",
                         condition=Q(state="running", warned_at__isnull=True, warn_at__isnull=False)),
            models.Index(fields=["due_at"], name="sla_clock_breach_due_idx",
                         condition=Q(state="running", breached_at__isnull=True, due_at__isnull=False)),
            # Reports read stopped clocks by stop time.
            models.Index(fields=["ticket_type", "stopped_at"], name="sla_clock_stopped_idx",
                         condition=Q(stopped_at__isnull=False)),
            # The insights rollup finds the clocks stopped or changed since its last run through this.
            models.Index(fields=["updated_at"], name="sla_clock_updated_idx", condition=Q(stopped_at__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["ticket_type", "ticket_id", "kind"], name="sla_clock_one_active",
                                    condition=Q(state__in=["running", "paused"])),
            models.CheckConstraint(condition=Q(state__in=ClockState.values), name="sla_clock_state_valid"),
            models.CheckConstraint(condition=~Q(state="running") | Q(running_since__isnull=False),
                                   name="sla_clock_running_has_start"),
        ]

    def __str__(self):
        return f"{self.ticket_type} {self.ticket_id} {self.get_kind_display()} ({self.state})"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_CLOCK_STATES
