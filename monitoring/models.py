"""Monitoring and event management: where events come from (EventSource), what arrived (Event, stored raw as
received), what is still wrong (Alert: repeats of one fingerprint folded together), and how admins steer it
(Rule, MaintenanceWindow, MonitoringSettings). Written only through monitoring.ingest (events) and
monitoring.processing / monitoring.services (alerts)."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    MAJOR = "major", "Major"
    MINOR = "minor", "Minor"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


# Most severe first; the console and the API sort by this rank.
SEVERITY_RANK = {Severity.CRITICAL: 1, Severity.MAJOR: 2, Severity.MINOR: 3, Severity.WARNING: 4, Severity.INFO: 5}


class Classification(models.TextChoices):
    INFORMATIONAL = "informational", "Informational (recorded only)"
    WARNING = "warning", "Warning (alert, no incident)"
    EXCEPTION = "exception", "Exception (alert and incident)"


class EventSource(models.Model):
    """A monitoring tool allowed to send events, with the token it sends (only its SHA-256 is kept)."""

    class Kind(models.TextChoices):
        GENERIC = "generic", "Generic JSON"
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        GRAFANA = "grafana", "Grafana alerting"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.GENERIC)
    enabled = models.BooleanField(default=True, help_text="A disabled source's token is refused (401).")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(max_length=12, blank=True, editable=False,
                                  help_text="The token's last characters, to tell tokens apart.")
    token_rotated_at = models.DateTimeField(default=timezone.now, editable=False)
    default_service = models.ForeignKey("servicedesk.Service", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+", help_text="Used when an event names no known service.")
    default_configuration_item = models.ForeignKey(
        "servicedesk.ConfigurationItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Used when an event names no known configuration item.")
    service_label = models.CharField(max_length=100, default="service", blank=True,
                                     help_text="The label whose value names the service.")
    ci_label = models.CharField(max_length=100, default="instance", blank=True,
                                help_text="The label whose value names the configuration item.")
    severity_label = models.CharField(max_length=100, default="severity", blank=True,
                                      help_text="The label whose value gives the severity.")
    rate_limit_per_minute = models.PositiveIntegerField(
        default=60000, help_text="Events accepted per minute; above it the sender is answered 429 (0: no limit).")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Rule(models.Model):
    """An ordered classification rule: the first enabled rule whose matchers all match decides (empty matchers
    match everything). What a rule leaves empty falls back to the defaults by severity."""

    class OnRecovery(models.TextChoices):
        RESOLVE = "resolve", "Resolve the incident"
        NOTE = "note", "Only add a note"

    name = models.CharField(max_length=120)
    order = models.PositiveIntegerField(default=100, db_index=True)
    enabled = models.BooleanField(default=True)
    match_source = models.ForeignKey(EventSource, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="rules")
    match_severities = models.JSONField(default=list, blank=True,
                                        help_text='Severities this rule applies to, e.g. ["critical", "major"].')
    match_labels = models.JSONField(default=dict, blank=True,
                                    help_text='Labels that must be equal, e.g. {"env": "prod"}; "*" means present.')
    match_text = models.CharField(max_length=200, blank=True,
                                  help_text="Words that must appear in the summary or description (any case).")
    classification = models.CharField(max_length=20, choices=Classification.choices, blank=True,
                                      help_text="Empty: by severity (critical/major: exception; minor/warning: "
                                                "warning; info: informational).")
    suppress = models.BooleanField(default=False, help_text="Record the event and do nothing else.")
    priority = models.PositiveSmallIntegerField(null=True, blank=True,
                                                validators=[MinValueValidator(1), MaxValueValidator(5)],
                                                help_text="Priority of the incidents it opens (1-5).")
    service = models.ForeignKey("servicedesk.Service", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    team = models.ForeignKey("servicedesk.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    on_recovery = models.CharField(max_length=10, choices=OnRecovery.choices, blank=True,
                                   help_text="When every alert of its incident clears. Empty: the default in "
                                             "Monitoring settings.")

    class Meta:
        ordering = ["order", "id"]

    def __str__(self):
        return self.name


class MaintenanceWindow(models.Model):
    """Planned work: events of this service or CI between start and end are recorded and suppressed."""

    name = models.CharField(max_length=120)
    service = models.ForeignKey("servicedesk.Service", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="maintenance_windows")
    configuration_item = models.ForeignKey("servicedesk.ConfigurationItem", null=True, blank=True,
                                           on_delete=models.CASCADE, related_name="maintenance_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at", "starts_at"], name="maintenance_when_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="maintenance_ends_after"),
            models.CheckConstraint(condition=Q(service__isnull=False) | Q(configuration_item__isnull=False),
                                   name="maintenance_names_a_target"),
        ]

    def __str__(self):
        return self.name


class MonitoringSettings(models.Model):
    """One row (pk=1): the knobs of deduplication, correlation, flapping and recovery."""

    correlation_window_minutes = models.PositiveIntegerField(
        default=30, help_text="Alerts of the same service, CI or Alertmanager group seen within this window join "
                              "the same open incident.")
    reopen_window_minutes = models.PositiveIntegerField(
        default=60, help_text="An alert firing again this soon after it cleared reopens its resolved incident.")
    flap_changes = models.PositiveIntegerField(default=4, validators=[MinValueValidator(2)],
                                               help_text="This many firing/resolved changes ...")
    flap_minutes = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)],
                                               help_text="... within this many minutes mark an alert flapping.")
    on_recovery = models.CharField(max_length=10, choices=Rule.OnRecovery.choices, default=Rule.OnRecovery.RESOLVE,
                                   help_text="When every alert of an incident clears (rules may override).")
    recovery_spares_human_work = models.BooleanField(
        default=True, help_text="A recovery only adds a note to an incident that a person has replied on or noted.")
    resolve_interlock = models.BooleanField(
        default=True, help_text="Warn agents resolving an incident whose alerts still fire; the API refuses "
                                "unless force is sent.")

    class Meta:
        verbose_name = verbose_name_plural = "monitoring settings"

    def __str__(self):
        return "Monitoring settings"

    @classmethod
    def current(cls) -> "MonitoringSettings":
        return cls.objects.get_or_create(pk=1)[0]


class Alert(models.Model):
    """Something that is (or was) wrong: the repeats of one fingerprint from one source, folded together.

    An alert is `live` from its first firing until it has stayed resolved past the reopen window; one live alert
    per (source, fingerprint) at most. A resolved event clears it; firing again while live brings it back."""

    class Status(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    source = models.ForeignKey(EventSource, on_delete=models.CASCADE, related_name="alerts")
    fingerprint = models.CharField(max_length=128)
    external_id = models.CharField(max_length=200, blank=True, help_text="The sender's id of the alert.")
    group_key = models.CharField(max_length=500, blank=True, help_text="Alertmanager's group key, if any.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FIRING)
    live = models.BooleanField(default=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    severity_rank = models.PositiveSmallIntegerField(default=3)
    classification = models.CharField(max_length=20, choices=Classification.choices)
    summary = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    labels = models.JSONField(default=dict, blank=True)
    service = models.ForeignKey("servicedesk.Service", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="alerts")
    configuration_item = models.ForeignKey("servicedesk.ConfigurationItem", null=True, blank=True,
                                           on_delete=models.SET_NULL, related_name="alerts")
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    incident = models.ForeignKey("incidents.Incident", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="alerts")
    count = models.PositiveIntegerField(default=1, help_text="Events folded into this alert.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    starts_at = models.DateTimeField(null=True, blank=True, help_text="When the current firing began (sender's).")
    cleared_at = models.DateTimeField(null=True, blank=True)
    changes = models.JSONField(default=list, blank=True,
                               help_text="Times of the latest firing/resolved changes (flap detection).")
    flapping = models.BooleanField(default=False)
    flapping_since = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["severity_rank", "-last_seen", "-id"]
        indexes = [
            models.Index(fields=["status", "severity_rank", "last_seen"], name="alert_console_idx",
                         condition=Q(live=True)),
            models.Index(fields=["service", "last_seen"], name="alert_service_idx", condition=Q(live=True)),
            models.Index(fields=["configuration_item", "last_seen"], name="alert_ci_idx", condition=Q(live=True)),
            models.Index(fields=["source", "group_key", "last_seen"], name="alert_group_idx", condition=Q(live=True)),
            models.Index(fields=["incident", "status"], name="alert_incident_idx"),
            models.Index(fields=["flapping_since"], name="alert_flapping_idx", condition=Q(flapping=True)),
            models.Index(fields=["first_seen"], name="alert_first_seen_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source", "fingerprint"], condition=Q(live=True),
                                    name="alert_one_live_per_fingerprint"),
        ]

    def __str__(self):
        return f"{self.summary} ({self.get_status_display().lower()})"


class Event(models.Model):
    """One event as received, stored before anything else happens to it; processing fills `outcome`."""

    class Outcome(models.TextChoices):
        PENDING = "", "Not processed yet"
        ALERT_OPENED = "opened", "Opened an alert"
        ALERT_UPDATED = "repeated", "Folded into an open alert"
        ALERT_CLEARED = "cleared", "Cleared an alert"
        DUPLICATE = "duplicate", "Already received (changed nothing)"
        STALE = "stale", "Older than what the alert already knows"
        INFORMATIONAL = "informational", "Informational (recorded only)"
        SUPPRESSED = "suppressed", "Suppressed by a rule"
        MAINTENANCE = "maintenance", "Suppressed by a maintenance window"
        NO_ALERT = "no_alert", "Resolved event with no live alert"
        ERROR = "error", "Processing failed"

    source = models.ForeignKey(EventSource, on_delete=models.CASCADE, related_name="events")
    received_at = models.DateTimeField(default=timezone.now)
    external_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Alert.Status.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    summary = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    service_name = models.CharField(max_length=160, blank=True)
    ci_name = models.CharField(max_length=200, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    starts_at = models.DateTimeField(null=True, blank=True)
    fingerprint = models.CharField(max_length=128)
    group_key = models.CharField(max_length=500, blank=True)
    dedup_key = models.CharField(max_length=64, help_text="Same key, same event: a re-sent one changes nothing.")
    raw = models.JSONField(default=dict, blank=True, help_text="What the sender sent for this event.")
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=15, choices=Outcome.choices, blank=True, default=Outcome.PENDING)
    error = models.TextField(blank=True)
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["received_at"], name="event_unprocessed_idx", condition=Q(processed_at__isnull=True)),
            models.Index(fields=["received_at"], name="event_received_idx"),
            models.Index(fields=["source", "dedup_key"], name="event_dedup_idx"),
            models.Index(fields=["alert", "received_at"], name="event_alert_idx"),
        ]

    def __str__(self):
        return f"{self.status} {self.summary}"
