from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from incidents.states import HoldReason, Status
from servicedesk.models import ConfigurationItem, Service, Team, Ticket


class Category(models.Model):
    """Incident category; a category with a parent is a subcategory."""

    name = models.CharField(max_length=100)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")

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
    assignment_group = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
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

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "priority", "-updated_at"], name="incident_status_prio_idx"),
            models.Index(fields=["assignment_group", "status"], name="incident_group_status_idx"),
            models.Index(fields=["assignee", "status"], name="incident_assignee_status_idx"),
            models.Index(fields=["requester", "-created_at"], name="incident_requester_idx"),
            models.Index(fields=["-updated_at", "-id"], name="incident_updated_idx"),
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

    @classmethod
    def visible_to(cls, user):
        """The kernel asks each ticket type which rows a user may see (attachments, search)."""
        from incidents.selectors import incidents_visible_to

        return incidents_visible_to(user)
