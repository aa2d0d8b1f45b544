from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from incidents.states import HoldReason, Status, requester_label
from servicedesk.models import ConfigurationItem, Service, Team, Ticket

OPEN_STATUSES = [Status.NEW, Status.IN_PROGRESS, Status.ON_HOLD]


class Category(models.Model):
    """Incident category; a category with a parent is a subcategory."""

    name = models.CharField(max_length=100)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"
        constraints = [models.UniqueConstraint(fields=["parent", "name"], name="category_unique_in_parent")]

    def __str__(self):
        return f"{self.parent.name} / {self.name}" if self.parent_id else self.name


class Channel(models.TextChoices):
    PORTAL = "portal", "Portal"
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    MONITORING = "monitoring", "Monitoring"
    API = "api", "API"


class Incident(Ticket):
    NUMBER_PREFIX = "INC"

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="incidents")
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents")
    configuration_item = models.ForeignKey(
        ConfigurationItem, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents"
    )
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents")
    channel = models.CharField(max_length=12, choices=Channel.choices, default=Channel.PORTAL)
    impact = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(3)])
    urgency = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(3)])
    priority = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(5)])
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    hold_reason = models.CharField(max_length=20, choices=HoldReason.choices, blank=True)
    # PROTECT like service, CI and category: a team with incidents is kept (rename it), never silently unset.
    assignment_group = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_incidents"
    )
    major = models.BooleanField(default=False)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    resolution_code = models.CharField(max_length=40, blank=True)
    resolution_notes = models.TextField(blank=True)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    # Resolved straight from new, at the first contact (no one took it over first); a reopen does not clear it,
    # reports count first-contact resolutions that stayed resolved (reopen_count == 0).
    first_contact = models.BooleanField(default=False, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Weighted title (A), description (B), comments and notes (C); kept by incidents.search.
    # Its GIN index is created by migration 0005 on PostgreSQL only (the local SQLite run has no tsvector).
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "priority", "-updated_at"], name="incident_status_prio_idx"),
            models.Index(fields=["assignment_group", "status"], name="incident_group_status_idx"),
            models.Index(fields=["assignee", "status"], name="incident_assignee_status_idx"),
            models.Index(fields=["requester", "-created_at"], name="incident_requester_idx"),
            models.Index(fields=["-updated_at", "-id"], name="incident_updated_idx"),
            models.Index(fields=["status", "resolved_at"], name="incident_status_resolved_idx"),
            # The insights rollup counts cancellations per day (closed_at is stamped when closed or cancelled).
            models.Index(fields=["closed_at"], name="incident_closed_idx", condition=Q(closed_at__isnull=False)),
            # The insights rollup counts first responses per day (insights.rollup).
            models.Index(fields=["first_responded_at"], name="incident_first_response_idx",
                         condition=Q(first_responded_at__isnull=False)),
            models.Index(fields=["parent"], name="incident_parent_idx", condition=Q(parent__isnull=False)),
            models.Index(fields=["major", "status"], name="incident_major_idx", condition=Q(major=True)),
            # Queues list open incidents most urgent first: these partial indexes hold only open rows, in
            # queue order, so a page is an index scan that stops after 50 rows, whatever the history size.
            # Covering: the sidebar counts (status, assignee, group, major, priority, SLA due) are an index-only scan.
            models.Index(fields=["priority", "-updated_at", "-id"], name="incident_open_queue_cov_idx",
                         include=["status", "assignee", "assignment_group", "major", "sla_due_at"],
                         condition=Q(status__in=OPEN_STATUSES)),
            models.Index(fields=["assignee", "priority", "-updated_at", "-id"], name="incident_open_mine_idx",
                         condition=Q(status__in=OPEN_STATUSES)),
            models.Index(fields=["assignment_group", "priority", "-updated_at", "-id"],
                         name="incident_open_group_idx", condition=Q(status__in=OPEN_STATUSES)),
            models.Index(fields=["priority", "-updated_at", "-id"], name="incident_open_unassigned_idx",
                         condition=Q(status__in=OPEN_STATUSES, assignee__isnull=True)),
            # "SLA due" order and the "Breaching soon" queue: open incidents by their next SLA deadline.
            models.Index(fields=["sla_due_at", "id"], name="incident_open_sla_due_idx",
                         condition=Q(status__in=OPEN_STATUSES)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=Status.values), name="incident_status_valid"),
            models.CheckConstraint(
                condition=Q(status=Status.ON_HOLD) ^ Q(hold_reason=""), name="incident_hold_reason_iff_on_hold"
            ),
            models.CheckConstraint(condition=Q(impact__gte=1, impact__lte=3), name="incident_impact_range"),
            models.CheckConstraint(condition=Q(urgency__gte=1, urgency__lte=3), name="incident_urgency_range"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="incident_priority_range"),
        ]

    @property
    def requester_status(self) -> str:
        """The status as the requester reads it in the portal."""
        return requester_label(self.status, self.hold_reason)

    def rateable(self) -> bool:
        """The kernel's satisfaction rating (servicedesk.services.rating_give) asks: once resolved."""
        return self.status in (Status.RESOLVED, Status.CLOSED)

    @classmethod
    def visible_to(cls, user):
        """The kernel asks each ticket type which rows a user may see (attachments, search)."""
        from incidents.selectors import incidents_visible_to

        return incidents_visible_to(user)


class ResolutionCode(models.Model):
    """Admin-editable list of resolution codes (fixed, workaround, duplicate, ...)."""

    code = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "code"]

    def __str__(self):
        return self.label


class AssignmentRule(models.Model):
    """Routes a new incident to a team. Rules are tried in order; every condition set must match."""

    name = models.CharField(max_length=120)
    order = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    active = models.BooleanField(default=True)
    # PROTECT throughout: deleting what a rule matches on or routes to must not silently drop the rule.
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT,
                                 help_text="Matches this category and its subcategories.")
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.PROTECT)
    configuration_item = models.ForeignKey(ConfigurationItem, null=True, blank=True, on_delete=models.PROTECT)
    keywords = models.CharField(max_length=400, blank=True,
                                help_text="Comma-separated; any one found in title or description matches.")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="assignment_rules")

    class Meta:
        ordering = ["order", "id"]

    def __str__(self):
        return f"{self.name} -> {self.team}"

    def keyword_list(self) -> list[str]:
        return [k.strip().lower() for k in self.keywords.split(",") if k.strip()]


class CannedResponse(models.Model):
    """A reply template agents insert. Placeholders: {number} {title} {requester_first_name}
    {requester_name} {agent_name} {service} {status} {priority}."""

    title = models.CharField(max_length=120)
    body = models.TextField()
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT,
                             help_text="Offered to this team only; empty = everyone.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title


class SavedView(models.Model):
    """An agent's personal queue: a name for a set of filters and a sort order (the query string)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_view_unique_name")]

    def __str__(self):
        return self.name


class IncidentSettings(models.Model):
    """One row of incident-management settings, edited in admin."""

    auto_close_days = models.PositiveSmallIntegerField(
        default=7, help_text="Resolved incidents close by themselves after this many days (0 = never)."
    )

    class Meta:
        verbose_name = verbose_name_plural = "incident settings"

    def __str__(self):
        return "Incident settings"

    @classmethod
    def current(cls) -> "IncidentSettings":
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj
