"""Problem management: problems (tickets, PRB numbers) with their analysis, the incidents they explain, and
the candidates the detector proposes from clusters of recurring incidents. Written only through
problems.services (and problems.detection for candidates)."""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from problems.states import OPEN, Status
from servicedesk.models import Ticket


def empty_analysis() -> dict:
    """The structured analysis sections: five whys (ordered answers), fishbone (cause category -> causes),
    timeline (what happened when)."""
    return {"five_whys": [], "fishbone": {}, "timeline": []}


class Problem(Ticket):
    """The cause of one or more incidents. `requester` (kernel Ticket) is who raised it."""

    NUMBER_PREFIX = "PRB"
    Status = Status

    services = models.ManyToManyField("servicedesk.Service", blank=True, related_name="problems")
    configuration_items = models.ManyToManyField("servicedesk.ConfigurationItem", blank=True,
                                                 related_name="problems")
    category = models.ForeignKey("incidents.Category", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="problems")
    impact = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(3)])
    urgency = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(3)])
    priority = models.PositiveSmallIntegerField(default=5, help_text="From impact x urgency (the priority matrix).")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    assignment_group = models.ForeignKey("servicedesk.Team", null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="problems", verbose_name="owner team")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="owned_problems", verbose_name="owner")
    root_cause = models.TextField(blank=True)
    analysis = models.JSONField(default=empty_analysis, blank=True,
                                help_text="Five whys, fishbone and timeline (problems.analysis checks the shape).")
    workaround = models.TextField(blank=True)
    permanent_fix = models.TextField(blank=True)
    change_reference = models.CharField(max_length=100, blank=True,
                                        help_text="The change that delivers the permanent fix, e.g. CHG0001234.")
    resolution_code = models.CharField(max_length=40, blank=True)
    resolution_notes = models.TextField(blank=True)
    knowledge_article = models.ForeignKey("knowledge.Article", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="problems",
                                          help_text="The knowledge base article of this known error, if any.")
    incidents = models.ManyToManyField("incidents.Incident", through="ProblemIncident", blank=True,
                                       related_name="problems")
    related = models.ManyToManyField("self", blank=True, symmetrical=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    known_error_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Title (A), root cause and workaround (B), description (C): kept by problems.search.search_refresh.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["assignment_group", "created_at"], name="problem_open_team_idx",
                         condition=Q(status__in=sorted(OPEN))),
            models.Index(fields=["status", "-created_at"], name="problem_status_idx"),
            # Retention finds closed problems by their closing date (problems.retention).
            models.Index(fields=["closed_at"], name="problem_closed_idx", condition=Q(closed_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=Status.values), name="problem_status_valid"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="problem_priority_1_5"),
            models.CheckConstraint(condition=Q(impact__gte=1, impact__lte=3), name="problem_impact_range"),
            models.CheckConstraint(condition=Q(urgency__gte=1, urgency__lte=3), name="problem_urgency_range"),
        ]

    @classmethod
    def visible_to(cls, user):
        """The kernel asks each ticket type which rows a user may see (attachment downloads): agents only."""
        from problems.selectors import problems_for

        return problems_for(user)


class ProblemIncident(models.Model):
    """An incident explained by a problem: who linked it and when."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="incident_links")
    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="problem_links")
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["problem", "incident"], name="problem_incident_once")]
        indexes = [models.Index(fields=["incident"], name="problem_link_incident_idx")]

    def __str__(self):
        return f"{self.problem_id} explains {self.incident_id}"


class CandidateState(models.TextChoices):
    OPEN = "open", "To review"
    ACCEPTED = "accepted", "Accepted"
    DISMISSED = "dismissed", "Dismissed"


class ProblemCandidate(models.Model):
    """A cluster of recurring incidents the detector found (problems.detection): its key (what they share),
    its incidents and the evidence. A manager accepts it (a problem is created and the incidents linked) or
    dismisses it (not proposed again unless it grows past `size_when_dismissed`)."""

    State = CandidateState

    key = models.CharField(max_length=200, unique=True,
                           help_text='What the incidents share, e.g. "service:4|category:2" or "terms:vpn drop".')
    title = models.CharField(max_length=200)
    incidents = models.ManyToManyField("incidents.Incident", blank=True, related_name="problem_candidates")
    evidence = models.JSONField(default=dict, blank=True, help_text="count, first/last seen, shared terms, rule.")
    state = models.CharField(max_length=10, choices=CandidateState.choices, default=CandidateState.OPEN)
    size_when_dismissed = models.PositiveIntegerField(default=0)
    problem = models.ForeignKey(Problem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["-updated_at"], name="candidate_open_idx", condition=Q(state="open"))]
        constraints = [models.CheckConstraint(condition=Q(state__in=CandidateState.values),
                                              name="candidate_state_valid")]

    def __str__(self):
        return self.title


class DetectionSettings(models.Model):
    """How the detector looks for recurring incidents (one row, edited in admin)."""

    window_days = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)],
                                              help_text="Incidents raised in the last this many days count.")
    min_incidents = models.PositiveIntegerField(default=3, validators=[MinValueValidator(2)],
                                                help_text="At least this many incidents make a candidate.")
    similarity = models.FloatField(default=0.5, validators=[MinValueValidator(0.1), MaxValueValidator(1.0)],
                                   help_text="How alike titles must be (trigram similarity, 0.1-1).")
    interval_minutes = models.PositiveIntegerField(default=60, validators=[MinValueValidator(5)],
                                                   help_text="How often the detector runs.")

    class Meta:
        verbose_name = "problem detection settings"
        verbose_name_plural = "problem detection settings"

    def __str__(self):
        return "Problem detection settings"

    @classmethod
    def get(cls) -> "DetectionSettings":
        return cls.objects.get_or_create(pk=1)[0]
