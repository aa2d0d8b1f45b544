"""The shared kernel: people, teams, services and CIs, ticket numbering, timeline, attachments,
notifications (webhooks) and the audit trail. Every practice app builds on these."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


class Organisation(models.Model):
    """A customer organisation or department that requesters belong to."""

    name = models.CharField(max_length=200, unique=True)
    email_domain = models.CharField(max_length=200, blank=True, help_text="e.g. example.com")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def staff_role_users() -> Q:
    """Users who hold an agent, manager or admin role: the only people a team can have as lead or member
    (admin pickers and forms). An EXISTS, not a join, so a user in two groups is offered once."""
    from django.contrib.auth.models import Group

    from servicedesk.roles import STAFF_ROLES

    in_staff_group = Group.objects.filter(user=models.OuterRef("pk"), name__in=[r.value for r in STAFF_ROLES])
    return Q(models.Exists(in_staff_group)) | Q(is_superuser=True)


class Team(models.Model):
    """A support team (assignment group): agents with a lead."""

    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", "Round robin"
        LEAST_LOADED = "least_loaded", "Least loaded"
        MANUAL = "manual", "Manual"

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    email = models.EmailField(blank=True, help_text="Where team notifications go; members if empty.")
    # PROTECT: deleting the user who leads a team is refused (admin names the team); pick another lead first.
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="led_teams",
        limit_choices_to=staff_role_users,
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TeamMembership", related_name="teams", blank=True
    )
    assignment_strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships",
                             limit_choices_to=staff_role_users)
    joined_at = models.DateTimeField(auto_now_add=True)
    # Round-robin assignment picks the member who got a ticket longest ago (never first).
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="team_membership_unique")]

    def __str__(self):
        return f"{self.user} in {self.team}"


class Profile(models.Model):
    """What the service desk knows about a person beyond Django's user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="people"
    )
    job_title = models.CharField(max_length=120, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    away = models.BooleanField(default=False, help_text="Away agents are skipped by automatic assignment.")
    # Who approves what this person orders when a catalog item asks for "the requester's manager".
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports",
        help_text="Approves this person's requests that need their manager's approval.",
    )

    def __str__(self):
        return f"Profile of {self.user}"


class Criticality(models.IntegerChoices):
    CRITICAL = 1, "Critical"
    HIGH = 2, "High"
    MEDIUM = 3, "Medium"
    LOW = 4, "Low"


class Service(models.Model):
    """A business or technical service that tickets and events refer to."""

    name = models.CharField(max_length=160, unique=True)
    description = models.TextField(blank=True)
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="services")
    criticality = models.PositiveSmallIntegerField(choices=Criticality.choices, default=Criticality.MEDIUM)
    # Requesters say how badly they are stopped (urgency); how widely an outage hurts (impact) is the desk's
    # judgement, set per service here and applied to incidents raised by requesters (incidents.impact).
    default_impact = models.PositiveSmallIntegerField(
        choices=[(1, "1 · High"), (2, "2 · Medium"), (3, "3 · Low")], default=3,
        validators=[MinValueValidator(1), MaxValueValidator(3)],
        help_text="Impact given to incidents that requesters raise against this service.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        # Monitoring finds services by the names events give, whatever their case.
        indexes = [models.Index(Lower("name"), name="service_name_lower_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(default_impact__gte=1, default_impact__lte=3),
                                   name="service_default_impact_range"),
        ]

    def __str__(self):
        return self.name


class ConfigurationItem(models.Model):
    """A configuration item (server, application, database...) that supports services."""

    class Kind(models.TextChoices):
        APPLICATION = "application", "Application"
        SERVER = "server", "Server"
        DATABASE = "database", "Database"
        NETWORK = "network", "Network device"
        STORAGE = "storage", "Storage"
        WORKSTATION = "workstation", "Workstation"
        CLOUD = "cloud", "Cloud resource"
        OTHER = "other", "Other"

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        LIVE = "live", "Live"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SERVER)
    state = models.CharField(max_length=20, choices=State.choices, default=State.LIVE)
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="configuration_items"
    )
    criticality = models.PositiveSmallIntegerField(choices=Criticality.choices, default=Criticality.MEDIUM)
    services = models.ManyToManyField(Service, related_name="configuration_items", blank=True)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "configuration item"
        # Monitoring finds CIs by the host names events give, whatever their case.
        indexes = [models.Index(Lower("name"), name="ci_name_lower_idx")]

    def __str__(self):
        return self.name


class PriorityRule(models.Model):
    """One cell of the impact x urgency -> priority matrix (admin-editable)."""

    impact = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(3)])
    urgency = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(3)])
    priority = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])

    class Meta:
        ordering = ["impact", "urgency"]
        constraints = [
            models.UniqueConstraint(fields=["impact", "urgency"], name="priority_rule_cell_unique"),
            models.CheckConstraint(condition=Q(impact__gte=1, impact__lte=3), name="priority_rule_impact_range"),
            models.CheckConstraint(condition=Q(urgency__gte=1, urgency__lte=3), name="priority_rule_urgency_range"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="priority_rule_priority_range"),
        ]

    def __str__(self):
        return f"impact {self.impact} x urgency {self.urgency} -> P{self.priority}"


class NumberCounter(models.Model):
    """Ticket number counters for databases without sequences (the SQLite local run).
    On PostgreSQL numbers come from real sequences (see servicedesk.numbering)."""

    prefix = models.CharField(max_length=8, primary_key=True)
    value = models.BigIntegerField(default=1000)

    def __str__(self):
        return f"{self.prefix}: {self.value}"


class Ticket(models.Model):
    """What every ticket type shares. Subclasses set NUMBER_PREFIX (INC, REQ, PRB...)."""

    NUMBER_PREFIX = ""

    number = models.CharField(max_length=16, unique=True, editable=False)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # default, not auto_now_add: imports and the demo seeder set the real creation time.
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1, help_text="Raised by every change; stale writes are refused.")
    # The earliest deadline of the ticket's running SLA clocks (empty when none runs), kept by the ticket's
    # services from what the SLA clocks answer, so queues sort and filter by it through an index.
    sla_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Tickets are never deleted from admin or the API; `manage.py erase_ticket` (servicedesk.services.ticket_erase) removes one
    # with its timeline, attachments and files. These relations let the ORM cascade to both.
    timeline = GenericRelation("servicedesk.TimelineEntry")
    attachments = GenericRelation("servicedesk.Attachment")

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.number} {self.title}"


class TimelineEntry(models.Model):
    """One line of a ticket's history, shared by every ticket type."""

    class Kind(models.TextChoices):
        COMMENT = "comment", "Comment"
        NOTE = "note", "Internal note"
        CHANGE = "change", "Field change"
        SYSTEM = "system", "System event"

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.BigIntegerField()
    ticket = GenericForeignKey("content_type", "object_id")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    internal = models.BooleanField(default=False, help_text="Internal entries never reach the requester.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["content_type", "object_id", "created_at"], name="timeline_ticket_idx")]
        constraints = [
            # An internal note is internal by definition; a public comment never is.
            models.CheckConstraint(
                condition=~Q(kind="note") | Q(internal=True), name="timeline_note_is_internal"
            ),
            models.CheckConstraint(
                condition=~Q(kind="comment") | Q(internal=False), name="timeline_comment_is_public"
            ),
        ]
        verbose_name_plural = "timeline entries"

    def __str__(self):
        return f"{self.get_kind_display()} on {self.content_type_id}:{self.object_id}"


def attachment_path(instance, filename):
    return f"attachments/{instance.content_type_id}/{instance.object_id}/{filename}"


class Attachment(models.Model):
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.BigIntegerField()
    ticket = GenericForeignKey("content_type", "object_id")
    entry = models.ForeignKey(
        TimelineEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_path, max_length=300)
    filename = models.CharField(max_length=200)
    mime_type = models.CharField(max_length=120)
    size = models.PositiveBigIntegerField()
    internal = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["content_type", "object_id"], name="attachment_ticket_idx")]

    def __str__(self):
        return self.filename


class AuditLog(models.Model):
    """Who changed what and when, with old and new values."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=60)
    content_type = models.ForeignKey(ContentType, null=True, on_delete=models.SET_NULL)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id"], name="audit_object_idx")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_repr}"


class Webhook(models.Model):
    """An outbound webhook: every matching event is POSTed as JSON, signed with HMAC-SHA256."""

    name = models.CharField(max_length=120, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200, help_text="Shared secret for the X-Servicedesk-Signature header.")
    events = models.JSONField(
        default=list, blank=True, help_text='Event names to send, e.g. ["incident.created"]; empty = all.'
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events or event.split(".")[0] + ".*" in self.events

    def clean(self):
        """Only events some installed app emits (servicedesk.registry), or "<prefix>.*" for all of one kind:
        a misspelt name would otherwise match nothing, silently."""
        from django.core.exceptions import ValidationError

        from servicedesk.registry import registry

        known = set(registry.event_names())
        prefixes = {name.split(".")[0] + ".*" for name in known}
        if not isinstance(self.events, list) or not all(isinstance(e, str) for e in self.events):
            raise ValidationError({"events": 'Give a list of event names, e.g. ["incident.created"].'})
        unknown = [e for e in self.events if e not in known and e not in prefixes]
        if unknown:
            raise ValidationError({"events": f"Unknown event {', '.join(unknown)}; known: "
                                             f"{', '.join(sorted(known | prefixes))}."})


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=80)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        # Retention removes finished deliveries by age (servicedesk.retention); admin lists the newest first.
        indexes = [models.Index(fields=["created_at"], name="webhook_delivery_created_idx")]

    def __str__(self):
        return f"{self.event} -> {self.webhook}"


class Heartbeat(models.Model):
    """Last sign of life of a background part (the worker), shown by /healthz."""

    name = models.CharField(max_length=60, primary_key=True)
    seen_at = models.DateTimeField()
    detail = models.CharField(max_length=200, blank=True)

    def __str__(self):
        return f"{self.name} at {self.seen_at}"


class OutboxMessage(models.Model):
    """One side effect (a mail, a webhook delivery, a task) written in the same transaction as the change.

    On commit its id is handed to Celery; whatever is still pending later is re-driven by the relay
    (servicedesk.outbox). Processing claims the row with SELECT ... FOR UPDATE SKIP LOCKED, so two
    workers never run one message at the same time, and marks it done in that same transaction.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    handler = models.CharField(max_length=80, help_text='Registered handler key, e.g. "email.send".')
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The id of the request that caused it (servicedesk.requestid), bound on the worker's log lines while it
    # runs; empty for work beat started.
    request_id = models.CharField(max_length=64, blank=True, db_default="")

    class Meta:
        ordering = ["-id"]  # newest first, read through the primary key
        indexes = [
            # The relay's due query reads only pending rows, in due order: O(due), not O(history).
            models.Index(fields=["next_attempt_at"], name="outbox_pending_due_idx",
                         condition=Q(state="pending")),
            models.Index(fields=["state", "processed_at"], name="outbox_state_processed_idx"),
        ]

    def __str__(self):
        return f"{self.handler} #{self.id} ({self.state})"


class IdempotencyKey(models.Model):
    """The first response to a creating POST sent with an `Idempotency-Key` header, replayed to retries."""

    owner = models.CharField(max_length=100, help_text='Who sent it, e.g. "user:12".')
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_uniq")]

    def __str__(self):
        return f"{self.owner} {self.key} -> {self.status_code}"


class Rating(models.Model):
    """The requester's satisfaction with a resolved ticket of any type: a score of 1 to 5 and a comment.
    One per ticket (changed, not duplicated, within the change window); written by servicedesk.services
    .rating_give only. A ticket model says when it may be rated with `rateable()`."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.BigIntegerField()
    ticket = GenericForeignKey("content_type", "object_id")
    number = models.CharField(max_length=16, help_text="The ticket's number, as reports read it.")
    score = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["content_type", "created_at"], name="rating_type_created_idx"),
                   # Reports find the ratings given or changed since their last run through this.
                   models.Index(fields=["updated_at"], name="rating_updated_idx")]
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id"], name="rating_once_per_ticket"),
            models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="rating_score_1_5"),
        ]

    def __str__(self):
        return f"{self.number}: {self.score}/5"


class Watcher(models.Model):
    """A person who follows a ticket without being its requester (a colleague, a manager, another agent): they
    are mailed every public reply (never an internal note) and may answer by mail. Written by
    servicedesk.watchers only."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.BigIntegerField()
    ticket = GenericForeignKey("content_type", "object_id")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watching")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["content_type", "object_id"], name="watcher_ticket_idx")]
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id", "user"], name="watcher_once_per_ticket"),
        ]

    def __str__(self):
        return f"{self.user} watches {self.content_type_id}:{self.object_id}"


# --- two-factor sign-in (issue 13) ------------------------------------------------------------------


class SignInPolicy(models.Model):
    """One row: which roles must sign in with a second factor (an authenticator app's code). Edited in
    admin; read through servicedesk.twofactor.policy_current(), cached briefly, so a tightened policy reaches
    sessions already signed in within a minute (they are sent to enrolment or to the code step)."""

    require_agents = models.BooleanField(
        default=False, help_text="Agents must set up two-factor sign-in and enter a code at every sign-in.")
    require_managers = models.BooleanField(
        default=False, help_text="Managers (team leads) must set up two-factor sign-in.")
    require_admins = models.BooleanField(
        default=False, help_text="Admins must set up two-factor sign-in.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "sign-in policy"

    def __str__(self):
        return "Sign-in policy"
class ExternalIdentity(models.Model):
    """An account of an outside identity provider (an OpenID Connect issuer and its `sub`) bound to a user.

    Sign-in through the provider finds the user by this pair, never by a name or an address the provider
    sends, which may change or be handed to someone else; see servicedesk/oidc.py for when one is made.
    An admin may add one by hand to bind an agent's or admin's existing account (Admin > Users)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    issuer = models.CharField(max_length=255, help_text="The provider's issuer URL (the id token's iss).")
    subject = models.CharField(max_length=255, help_text="The person's id at that provider (the id token's sub).")
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_unique")]

    def __str__(self):
        return f"{self.subject} at {self.issuer}"
class RetentionRun(models.Model):
    """One run of retention (servicedesk.retention): what it removed, per rule, and where it archived it. At most
    one run is `running` (a partial unique constraint), so two workers never remove the same rows side by side;
    the running run renews `lease_until` at every batch, and another caller may mark it abandoned only once that
    time has passed (its process died)."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done (nothing due left)"
        BUDGET = "budget", "Stopped at its time budget (the next run goes on)"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned (its process died)"

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    # Until when the running run holds its lease: set at its start and moved on by every batch. Empty on runs
    # recorded before it existed (their age then counts, as it did).
    lease_until = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="Rows removed per rule, and their parts.")
    cutoffs = models.JSONField(default=dict, blank=True, help_text="Rows older than this were due, per rule.")
    # The latest closing date before which tickets were removed: days up to it may miss tickets, so insights
    # never recounts them (its rollup keeps the figures counted while the tickets were there).
    tickets_cutoff = models.DateTimeField(null=True, blank=True)
    archive = models.CharField(max_length=500, blank=True, help_text="The archive file of this run, if any.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["state"], condition=Q(state="running"),
                                               name="retention_one_running")]

    def __str__(self):
        return f"retention run {self.id} ({self.state})"
