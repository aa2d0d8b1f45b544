"""The email channel's configuration (Mailbox: where mail arrives and what it becomes) and every mail that
arrived (InboundMessage: raw bytes kept, what processing decided and why). Tickets are created and replied to
only through the kernel registry (TicketKind), never by writing another app's models."""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Mailbox(models.Model):
    """One address people write to, read over IMAP (or fed by the mail server's pipe), and what its mail
    creates. The poll-state fields at the end are written by the IMAP poller only."""

    class Security(models.TextChoices):
        SSL = "ssl", "SSL/TLS (port 993)"
        STARTTLS = "starttls", "STARTTLS (port 143)"
        PLAIN = "plain", "No encryption (local test servers only)"

    class Creates(models.TextChoices):
        INCIDENT = "incident", "Incident"
        REQUEST = "request", "Service request"

    class Accept(models.TextChoices):
        ANY = "any", "Anyone"
        KNOWN = "known", "Known users only"
        DOMAINS = "domains", "These domains"

    name = models.CharField(max_length=120, unique=True)
    active = models.BooleanField(default=True)
    # Also what loop detection compares senders with: set DEFAULT_FROM_EMAIL / EMAIL_REPLY_TO to it.
    address = models.EmailField(help_text="The address people write to.")
    host = models.CharField(max_length=200, blank=True)
    port = models.PositiveIntegerField(default=993)
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.SSL)
    username = models.CharField(max_length=200, blank=True)
    password = models.CharField(max_length=500, blank=True)
    folder = models.CharField(max_length=200, default="INBOX")
    poll_seconds = models.PositiveIntegerField(default=60, validators=[MinValueValidator(10)])

    creates = models.CharField(max_length=20, choices=Creates.choices, default=Creates.INCIDENT)
    category = models.ForeignKey("incidents.Category", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    service = models.ForeignKey("servicedesk.Service", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    team = models.ForeignKey("servicedesk.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    catalog_item = models.ForeignKey("requests_app.CatalogItem", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    accept = models.CharField(max_length=10, choices=Accept.choices, default=Accept.ANY)
    domains = models.TextField(blank=True, help_text="One per line or comma separated, e.g. example.com")
    create_accounts = models.BooleanField(
        default=True, help_text="Unknown senders who may write get a requester account.")
    rate_limit_per_hour = models.PositiveIntegerField(
        default=20, help_text="Mails per sender per hour that become tickets or replies; 0 = no limit.")

    # Poll state (the IMAP poller writes these).
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    next_poll_at = models.DateTimeField(default=timezone.now, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"

    def __str__(self):
        return self.name

    def domain_list(self) -> list[str]:
        """The accepted domains, lower-case, without "@" or blanks."""
        raw = self.domains.replace(",", "\n").split()
        return [d.strip().lstrip("@").lower() for d in raw if d.strip().lstrip("@")]


class InboundMessage(models.Model):
    """One mail as it arrived (raw bytes kept whatever happens) and what processing made of it."""

    class State(models.TextChoices):
        NEW = "new", "New"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        IMAP = "imap", "IMAP"
        PIPE = "pipe", "Pipe"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="messages")
    source = models.CharField(max_length=10, choices=Source.choices)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uid = models.BigIntegerField(null=True, blank=True)
    # Without <>, cut to 250 characters (processing.MESSAGE_ID_MAX): the index must take any value.
    message_id = models.CharField(max_length=250, blank=True, db_index=True)
    from_address = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    raw = models.BinaryField()
    size = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    reason = models.CharField(max_length=300, blank=True)  # why it was ignored
    error = models.TextField(blank=True)  # why it failed
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    action = models.CharField(max_length=20, blank=True)  # "created" / "replied"
    ticket_kind = models.CharField(max_length=20, blank=True)
    ticket_id = models.BigIntegerField(null=True, blank=True)
    ticket_number = models.CharField(max_length=16, blank=True)
    entry_id = models.BigIntegerField(null=True, blank=True)
    # When retention removed the raw bytes (RETENTION_MAIL_RAW_DAYS after arrival); the row stays for dedupe.
    raw_purged_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "uidvalidity", "uid"], condition=Q(uid__isnull=False),
                                    name="inbound_uid_once"),
        ]
        indexes = [
            models.Index(fields=["from_address", "received_at"], name="inbound_from_received"),
            models.Index(fields=["state", "received_at"], name="inbound_state_received"),
            models.Index(fields=["mailbox", "received_at"], name="inbound_mailbox_received"),
            # The admin list's order (newest first): its page reads the index instead of sorting every mail.
            models.Index(fields=["-received_at", "-id"], name="inbound_received_desc"),
            # Retention: the mails about tickets it removes, and the decided mails whose bytes are still kept.
            models.Index(fields=["ticket_kind", "ticket_id"], name="inbound_ticket_idx",
                         condition=Q(ticket_id__isnull=False)),
            models.Index(fields=["received_at"], name="inbound_raw_kept_idx",
                         condition=Q(raw_purged_at__isnull=True, state__in=["processed", "ignored"])),
        ]

    def __str__(self):
        return f"#{self.id} {self.from_address}: {self.subject}"[:120]
