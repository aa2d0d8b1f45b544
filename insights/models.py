"""Continual improvement: what the desk measures of itself and what it does about it.

- DailyRollup / DailyFacet: one day of one ticket type for one team and service, counted once by the rollup
  task (insights.rollup, run by beat) so the dashboard adds up a few rows a day however many tickets there are.
  Keys are plain ids (0: none) rather than foreign keys: the table is rebuilt from the tickets at will.
- WindowTimes: the times to respond and resolve of the standard windows, precomputed by the same task.
- RollupState: the rollup's watermark (pk=1).
- Improvement (+ ImprovementTicket): the improvement register, an action with the measure it should move,
  its value before and after (insights.improvements).
- Subscription: a person's weekly e-mail of the dashboard (insights.subscriptions).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone


class RollupKind(models.TextChoices):
    INCIDENT = "incident", "Incidents"
    REQUEST = "request", "Service requests"
    PORTAL = "portal", "Self-service portal"  # deflections: no team, no service


class DailyRollup(models.Model):
    """Counts and sums of one local day, ticket type, team and service; figures are attributed to the day of
    the event they count (opened: created_at; resolved: resolved_at / fulfilled_at; a rating: when given; an
    SLA clock: when it stopped)."""

    day = models.DateField()
    kind = models.CharField(max_length=10, choices=RollupKind.choices)
    team_id = models.BigIntegerField(default=0)
    service_id = models.BigIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    opened_monitoring = models.PositiveIntegerField(default=0, help_text="Incidents opened by monitoring.")
    ended = models.PositiveIntegerField(default=0, help_text="Tickets that left the backlog that day (resolved, "
                                                             "fulfilled, rejected, cancelled).")
    resolved = models.PositiveIntegerField(default=0, help_text="Resolved incidents / fulfilled requests.")
    first_contact = models.PositiveIntegerField(default=0, help_text="Of `resolved`: resolved at first contact, "
                                                                     "never reopened.")
    reopened = models.PositiveIntegerField(default=0, help_text="Of `resolved`: reopened at least once.")
    resolved_people = models.PositiveIntegerField(default=0, help_text="Of `resolved`: raised by people, not "
                                                                       "by monitoring (first-contact base).")
    automated = models.PositiveIntegerField(default=0, help_text="Of `resolved` requests: fulfilled with no "
                                                                 "human step.")
    sla_met = models.PositiveIntegerField(default=0)
    sla_breached = models.PositiveIntegerField(default=0)
    rated = models.PositiveIntegerField(default=0)
    rating_sum = models.PositiveIntegerField(default=0)
    rating_1 = models.PositiveIntegerField(default=0)
    rating_2 = models.PositiveIntegerField(default=0)
    rating_3 = models.PositiveIntegerField(default=0)
    rating_4 = models.PositiveIntegerField(default=0)
    rating_5 = models.PositiveIntegerField(default=0)
    deflected = models.PositiveIntegerField(default=0, help_text="Portal: solved by an article, no ticket.")
    submitted_anyway = models.PositiveIntegerField(default=0, help_text="Portal: ticket raised after a "
                                                                        "suggestion.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "kind", "team_id", "service_id"],
                                               name="insights_rollup_key")]
        indexes = [models.Index(fields=["day", "team_id"], name="insights_rollup_day_idx")]

    def __str__(self):
        return f"{self.day} {self.kind} team {self.team_id} service {self.service_id}"


class Facet(models.TextChoices):
    CATEGORY = "category", "Category"
    CHANNEL = "channel", "Source"
    ASSIGNEE = "assignee", "Agent"


class DailyFacet(models.Model):
    """Opened and resolved tickets of one day, type, team and service, broken down by one more attribute
    (category, channel, assignee): the dashboard's "by ..." tables."""

    day = models.DateField()
    kind = models.CharField(max_length=10, choices=RollupKind.choices)
    team_id = models.BigIntegerField(default=0)
    service_id = models.BigIntegerField(default=0)
    facet = models.CharField(max_length=10, choices=Facet.choices)
    key = models.CharField(max_length=40, help_text="The attribute's value: a priority, an id, a channel.")
    opened = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)

    class Meta:
        # Its unique index (day first) serves the dashboard's reads of a period.
        constraints = [models.UniqueConstraint(fields=["day", "kind", "team_id", "service_id", "facet", "key"],
                                               name="insights_facet_key")]

    def __str__(self):
        return f"{self.day} {self.kind} {self.facet}={self.key}"


class WindowTimes(models.Model):
    """Times to respond and resolve over the dashboard's standard windows (the last 7, 30 and 90 days up to
    `last_day`, and the window just before each), worked out by the rollup task with percentile_cont for every
    team, every service and all of them, by priority (0: all): the one figure a daily rollup cannot add up,
    precomputed where it is asked most. Other periods and scopes are read from the tickets at once
    (insights.measures.time_figures). Rewritten whole by each run."""

    last_day = models.DateField(help_text="The window's last day (today when it was computed).")
    days = models.PositiveSmallIntegerField()
    previous = models.BooleanField(default=False, help_text="The window of the same length just before.")
    kind = models.CharField(max_length=10, choices=RollupKind.choices)
    key = models.CharField(max_length=30, help_text='"all", "team:<id>" or "service:<id>".')
    priority = models.PositiveSmallIntegerField(default=0, help_text="0: every priority.")
    resolved = models.PositiveIntegerField(default=0)
    resolve_mean = models.FloatField(null=True)
    resolve_p90 = models.FloatField(null=True)
    responded = models.PositiveIntegerField(default=0)
    respond_mean = models.FloatField(null=True)
    respond_p90 = models.FloatField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["last_day", "days", "previous", "kind", "key", "priority"],
                                               name="insights_window_times_key")]

    def __str__(self):
        return f"{self.kind} {self.key} {self.days} days to {self.last_day}"


class RollupState(models.Model):
    """One row (pk=1): up to when tickets were rolled up, and how the last run went."""

    changes_seen_until = models.DateTimeField(null=True, blank=True,
                                              help_text="Tickets changed before this were rolled up.")
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_days = models.PositiveIntegerField(default=0)
    last_run_ms = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"Rolled up to {self.changes_seen_until}"


class ImprovementStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    DROPPED = "dropped", "Dropped"


class Improvement(models.Model):
    """One entry of the continual improvement register: what is done, why, by whom and by when, the measure it
    should move (a key of insights.measures.MEASURES over a team/service scope) and the tickets behind it.
    Written only by insights.improvements."""

    Status = ImprovementStatus

    title = models.CharField(max_length=200)
    why = models.TextField(help_text="The problem seen, and the change expected.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="improvements")
    due_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ImprovementStatus.choices, default=ImprovementStatus.PLANNED)
    measure = models.CharField(max_length=40, help_text="The measure this should move (insights.measures).")
    team = models.ForeignKey("servicedesk.Team", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="improvements", help_text="Measured for this team (empty: all).")
    service = models.ForeignKey("servicedesk.Service", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="improvements", help_text="Measured for this service (empty: all).")
    target = models.FloatField(null=True, blank=True, help_text="The value aimed at, in the measure's unit.")
    started_on = models.DateField(default=timezone.localdate,
                                  help_text="Before: the baseline period ends the day before this.")
    done_on = models.DateField(null=True, blank=True, help_text="After: measured from this day on.")
    baseline_days = models.PositiveSmallIntegerField(default=30, help_text="Length of the before and after "
                                                                          "periods, in days.")
    # The measure over the before and after periods as last computed (insights.improvements.improvement_measure,
    # on every save and daily), so the register lists them without computing a measure per row.
    before_value = models.FloatField(null=True, blank=True)
    after_value = models.FloatField(null=True, blank=True)
    measured_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "due_on"], name="improvement_status_due_idx"),
                   models.Index(fields=["team", "status"], name="improvement_team_idx")]
        constraints = [models.CheckConstraint(condition=Q(status__in=ImprovementStatus.values),
                                              name="improvement_status_valid"),
                       models.CheckConstraint(condition=Q(baseline_days__gte=1) & Q(baseline_days__lte=366),
                                              name="improvement_baseline_days_range")]

    def __str__(self):
        return self.title


class ImprovementTicket(models.Model):
    """A ticket behind an improvement, named by kind and number (any ticket type of the registry)."""

    improvement = models.ForeignKey(Improvement, on_delete=models.CASCADE, related_name="tickets")
    kind = models.CharField(max_length=20)
    number = models.CharField(max_length=16)
    title = models.CharField(max_length=200, blank=True, help_text="As it was when linked.")

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["improvement", "number"], name="improvement_ticket_once")]

    def __str__(self):
        return f"{self.improvement_id}: {self.number}"


class Subscription(models.Model):
    """A person's weekly e-mail of the insights dashboard for a team/service scope; sent through the outbox by
    the beat task when `next_due_at` has passed (indexed: the sweep reads only what is due)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="insight_subscriptions")
    team = models.ForeignKey("servicedesk.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey("servicedesk.Service", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="+")
    weekday = models.PositiveSmallIntegerField(default=0, help_text="0 Monday ... 6 Sunday.")
    hour = models.PositiveSmallIntegerField(default=7, help_text="Local hour of the day, 0-23.")
    active = models.BooleanField(default=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user_id", "id"]
        indexes = [models.Index(fields=["next_due_at"], name="insight_sub_due_idx", condition=Q(active=True))]
        constraints = [
            # One per person, team and service, "no team" and "no service" included: an index on the ids with
            # 0 for none (SQLite has no NULLS NOT DISTINCT).
            models.UniqueConstraint(F("user"), Coalesce("team", 0), Coalesce("service", 0), name="insight_sub_once"),
            models.CheckConstraint(condition=Q(weekday__lte=6) & Q(hour__lte=23), name="insight_sub_when_valid"),
        ]

    def __str__(self):
        return f"{self.user} weekly"
