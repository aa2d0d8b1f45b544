"""The service catalog: categories of things people can order, and the items with their order forms.

Who may order an item is part of the item (`audience`, with its organisations or groups), and the catalog
API reads it in its query (requests_app.selectors.catalog_items_for). An item's form is an ordered list of
`CatalogField`s checked by the pure engine in requests_app.forms_engine. Requests (tickets), approvals and
automated fulfilment build on these in later parts of issue 8.
"""

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from requests_app import forms_engine
from requests_app.states import OPEN, Status
from servicedesk.models import Ticket

ICON_VALIDATOR = RegexValidator(r"^i-[a-z0-9-]+$", "An icon name such as i-lock (see the icon set).")
HANDLER_VALIDATOR = RegexValidator(r"^[a-z][a-z0-9_]*$", "A handler key such as password_reset.")


@lru_cache(maxsize=1)
def known_icons() -> frozenset[str]:
    """Icon names of the shared SVG sprite (templates/includes/icons.svg); empty if it cannot be read."""
    import re

    try:
        text = (settings.BASE_DIR / "templates" / "includes" / "icons.svg").read_text()
    except OSError:
        return frozenset()
    return frozenset(re.findall(r'<symbol id="(i-[a-z0-9-]+)"', text))


def _icon_errors(icon: str) -> dict[str, str]:
    icons = known_icons()
    if icon and icons and icon not in icons:
        return {"icon": f"No icon named {icon!r}. Known: {', '.join(sorted(icons))}."}
    return {}


class CatalogCategory(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    icon = models.CharField(max_length=40, blank=True, validators=[ICON_VALIDATOR],
                            help_text="Icon name of the portal's icon set, e.g. i-lock.")
    order = models.PositiveIntegerField(default=100, help_text="Lower first.")

    class Meta:
        ordering = ["order", "name"]
        verbose_name = "catalog category"
        verbose_name_plural = "catalog categories"

    def __str__(self):
        return self.name

    def clean(self):
        errors = _icon_errors(self.icon)
        if errors:
            raise ValidationError(errors)


class Audience(models.TextChoices):
    EVERYONE = "everyone", "Everyone"
    ORGANISATIONS = "organisations", "People of the chosen organisations"
    GROUPS = "groups", "Members of the chosen groups"


class DeliveryUnit(models.TextChoices):
    MINUTES = "minutes", "minutes"
    HOURS = "hours", "hours"
    BUSINESS_HOURS = "business_hours", "business hours"
    BUSINESS_DAYS = "business_days", "business days"
    DAYS = "days", "days"


class CatalogItem(models.Model):
    """Something people order: who may, what they must tell (the form), who delivers it and how soon."""

    Audience = Audience
    DeliveryUnit = DeliveryUnit

    name = models.CharField(max_length=160, unique=True)
    description = models.TextField(blank=True)
    icon = models.CharField(max_length=40, blank=True, validators=[ICON_VALIDATOR],
                            help_text="Icon name of the portal's icon set, e.g. i-lock.")
    category = models.ForeignKey(CatalogCategory, on_delete=models.PROTECT, related_name="items")
    order = models.PositiveIntegerField(default=100, help_text="Lower first within its category.")
    active = models.BooleanField(default=True, help_text="Inactive items cannot be ordered and are not listed.")

    audience = models.CharField(
        max_length=20, choices=Audience.choices, default=Audience.EVERYONE,
        help_text="Who may order it: everyone, or only people of the organisations or groups chosen below.")
    organisations = models.ManyToManyField("servicedesk.Organisation", blank=True, related_name="catalog_items",
                                           help_text="When ordering is for chosen organisations.")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="catalog_items",
                                    help_text="When ordering is for chosen groups.")

    # Approval policy: the ordered ApprovalLevels below (none: no approval), and who decides when a level
    # names nobody (no manager, an empty group): this group, then every admin.
    approval_fallback_group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name="approval fallback group",
        help_text="Decides when a level of the approval policy names nobody (no manager, an empty group); "
                  "if it is empty too, every admin.")

    fulfilment_team = models.ForeignKey(
        "servicedesk.Team", on_delete=models.PROTECT, related_name="catalog_items",
        help_text="Delivers it, or takes over when the automated handler fails.")
    handler = models.CharField(
        "automated handler", max_length=60, blank=True, validators=[HANDLER_VALIDATOR],
        help_text="Key of the handler that fulfils it with no one in the loop (e.g. password_reset); "
                  "empty: the team fulfils it by hand.")
    handler_settings = models.JSONField(default=dict, blank=True,
                                        help_text="Settings for the handler, a JSON object.")
    sla_policy = models.ForeignKey("sla.SlaPolicy", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="catalog_items", verbose_name="SLA policy",
                                   help_text="A policy for service requests used for this item's requests (while it is active and "
                                             "has a target for the priority); empty: the policies' matching rules "
                                             "decide.")
    delivery_amount = models.PositiveIntegerField(
        "expected delivery", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="How soon people can expect it, shown when they order: e.g. 3 with business days.")
    delivery_unit = models.CharField("unit", max_length=20, choices=DeliveryUnit.choices, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category__order", "category__name", "order", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(delivery_amount__isnull=True, delivery_unit="")
                | (Q(delivery_amount__gte=1) & ~Q(delivery_unit="")),
                violation_error_message="Give both the expected delivery and its unit, or neither.",
                name="catalog_item_delivery_amount_with_unit"),
        ]

    def __str__(self):
        return self.name

    @property
    def automated(self) -> bool:
        return bool(self.handler)

    @property
    def requires_approval(self) -> bool:
        """True when the item has approval levels. Lists annotate `has_approval_levels` (selectors) so that
        asking costs no query per item."""
        annotated = getattr(self, "has_approval_levels", None)
        if annotated is not None:
            return bool(annotated)
        if self.pk is None:
            return False
        return self.approval_levels.exists()

    @property
    def expected_delivery(self) -> str:
        """As people read it: "3 business days", "1 hour"; "" when not set."""
        if not self.delivery_amount or not self.delivery_unit:
            return ""
        label = DeliveryUnit(self.delivery_unit).label
        if self.delivery_amount == 1:
            label = label[:-1]  # every unit's label is a plural ending in s
        return f"{self.delivery_amount} {label}"

    def clean(self):
        errors = _icon_errors(self.icon)
        if (self.delivery_amount is None) != (not self.delivery_unit):
            key = "delivery_unit" if self.delivery_amount else "delivery_amount"
            errors[key] = "Give both the expected delivery and its unit, or neither."
        if not isinstance(self.handler_settings, dict):
            errors["handler_settings"] = 'A JSON object, e.g. {"group": "VPN users"}.'
        elif self.handler_settings and not self.handler:
            errors["handler_settings"] = "Settings are for an automated handler: name the handler too."
        elif self.handler:
            from requests_app.fulfilment import handler_settings_errors

            errors.update(handler_settings_errors(self.handler, self.handler_settings))
        if self.sla_policy_id and self.sla_policy.ticket_type != "request":
            errors["sla_policy"] = (f"{self.sla_policy.name} is a policy for {self.sla_policy.ticket_type} tickets: "
                                    "choose one for service requests.")
        if errors:
            raise ValidationError(errors)


class FieldType(models.TextChoices):
    TEXT = forms_engine.TEXT, forms_engine.TYPES[forms_engine.TEXT]
    LONG_TEXT = forms_engine.LONG_TEXT, forms_engine.TYPES[forms_engine.LONG_TEXT]
    NUMBER = forms_engine.NUMBER, forms_engine.TYPES[forms_engine.NUMBER]
    CHOICE = forms_engine.CHOICE, forms_engine.TYPES[forms_engine.CHOICE]
    MULTI_CHOICE = forms_engine.MULTI_CHOICE, forms_engine.TYPES[forms_engine.MULTI_CHOICE]
    DATE = forms_engine.DATE, forms_engine.TYPES[forms_engine.DATE]
    USER = forms_engine.USER, forms_engine.TYPES[forms_engine.USER]
    BOOLEAN = forms_engine.BOOLEAN, forms_engine.TYPES[forms_engine.BOOLEAN]


class CatalogField(models.Model):
    """One question of an item's order form. Its `name` is the key of the answer (in the API and the stored
    request); the checks of its definition and of answers live in requests_app.forms_engine."""

    Type = FieldType

    item = models.ForeignKey(CatalogItem, on_delete=models.CASCADE, related_name="fields")
    order = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=60, help_text="Key of the answer: lower case, digits, underscores "
                                                     "(e.g. needed_by). Unique within the item.")
    label = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=Type.choices, default=forms_engine.TEXT)
    required = models.BooleanField(default=False, help_text="For yes/no fields: an answer (yes or no) is needed.")
    help_text = models.CharField(max_length=300, blank=True)
    choices = models.TextField(blank=True, help_text="Choice and multiple-choice fields: one choice per line.")
    min_value = models.DecimalField("minimum", max_digits=15, decimal_places=4, null=True, blank=True,
                                    help_text="Number fields.")
    max_value = models.DecimalField("maximum", max_digits=15, decimal_places=4, null=True, blank=True,
                                    help_text="Number fields.")
    max_length = models.PositiveIntegerField(
        "maximum length", null=True, blank=True,
        help_text=f"Text fields; at most {forms_engine.TEXT_CAP['text']} for text, "
                  f"{forms_engine.TEXT_CAP['long_text']} for long text.")
    regex = models.CharField("pattern", max_length=300, blank=True,
                             help_text=r"Text fields: a regular expression the whole answer must match, "
                                       r"e.g. [A-Z]{2}\d{4}.")

    class Meta:
        ordering = ["order", "id"]
        verbose_name = "form field"
        verbose_name_plural = "form fields"
        constraints = [
            models.UniqueConstraint(fields=["item", "name"], name="catalog_field_name_unique_per_item"),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_type_display()})"

    @property
    def choice_list(self) -> list[str]:
        return forms_engine.parse_choices(self.choices)

    def clean(self):
        errors = forms_engine.definition_errors(self)
        if errors:
            raise ValidationError(errors)


class ServiceRequest(Ticket):
    """An order of a catalog item: the answers to its form, who asked, and where it stands
    (requests_app.states). Written only through requests_app.services."""

    NUMBER_PREFIX = "REQ"
    Status = Status

    item = models.ForeignKey(CatalogItem, on_delete=models.PROTECT, related_name="requests")
    answers = models.JSONField(default=dict, blank=True, help_text="The cleaned answers to the item's form.")
    priority = models.PositiveSmallIntegerField(default=4)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    assignment_group = models.ForeignKey("servicedesk.Team", null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="service_requests")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="assigned_service_requests")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    # Delivered by the item's automated handler (request_fulfil with no actor), not by a person: reports count
    # these as fulfilled with no human step. Cleared with fulfilled_at when the request is reopened.
    fulfilled_by_handler = models.BooleanField(default=False, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "service request"
        indexes = [
            models.Index(fields=["requester", "-created_at"], name="request_requester_idx"),
            # The insights rollup reads deliveries per day and what changed since its last run (insights.rollup).
            models.Index(fields=["fulfilled_at"], name="request_fulfilled_idx", condition=Q(fulfilled_at__isnull=False)),
            models.Index(fields=["updated_at"], name="request_updated_idx"),
            # Retention finds closed and cancelled requests by their closing date (requests_app.retention).
            models.Index(fields=["closed_at"], name="request_closed_idx", condition=Q(closed_at__isnull=False)),
            models.Index(fields=["assignment_group", "created_at"], name="request_open_team_idx",
                         condition=Q(status__in=sorted(OPEN))),
            # The workspace queues (requests_app.workspace): open requests by next SLA deadline, and each agent's.
            models.Index(fields=["sla_due_at", "id"], name="request_open_sla_due_idx",
                         condition=Q(status__in=sorted(OPEN))),
            models.Index(fields=["assignee", "sla_due_at"], name="request_open_assignee_idx",
                         condition=Q(status__in=sorted(OPEN))),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=Status.values), name="request_status_valid"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="request_priority_1_5"),
        ]

    def rateable(self) -> bool:
        """The kernel's satisfaction rating (servicedesk.services.rating_give) asks: once delivered."""
        return self.status == Status.FULFILLED or (self.status == Status.CLOSED and self.fulfilled_at is not None)

    @classmethod
    def visible_to(cls, user):
        """The kernel asks each ticket type which rows a user may see (attachment downloads)."""
        from requests_app.selectors import requests_for

        return requests_for(user)

class RunState(models.TextChoices):
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for a callback"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class FulfilmentRun(models.Model):
    """What an automated handler did for one request (requests_app.fulfilment): the steps already done (so a
    retried task skips them), the outside reference and the callback it waits for. One per request; a retry
    of a failed request starts the next `round` with no steps done."""

    State = RunState

    request = models.OneToOneField(ServiceRequest, on_delete=models.CASCADE, related_name="fulfilment_run")
    handler = models.CharField(max_length=60)
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.RUNNING)
    round = models.PositiveIntegerField(default=1, help_text="1 for the first run, +1 for each retry.")
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts in this round.")
    steps = models.JSONField(default=dict, blank=True, help_text="Step name -> what it recorded when done.")
    external_ref = models.CharField("external reference", max_length=200, blank=True)
    callback_nonce = models.CharField(max_length=64, blank=True,
                                      help_text="Set while waiting for a callback; cleared once it came.")
    deadline = models.DateTimeField(null=True, blank=True, help_text="When waiting: fail if no callback by then.")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "fulfilment run"
        indexes = [
            # The timeout sweep reads only runs waiting past their deadline.
            models.Index(fields=["deadline"], name="fulfilment_run_waiting_idx", condition=Q(state="waiting")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=RunState.values), name="fulfilment_run_state_valid"),
            models.CheckConstraint(condition=~Q(state="waiting") | Q(deadline__isnull=False),
                                   name="fulfilment_run_waiting_has_deadline"),
        ]

    def __str__(self):
        return f"{self.handler} for request {self.request_id} ({self.state})"


class ApprovalKind(models.TextChoices):
    MANAGER = "manager", "The requester's manager"
    GROUP = "group", "An approver group"


class ApprovalMode(models.TextChoices):
    ANY = "any", "Any one of them"
    ALL = "all", "All of them"


class ApprovalLevel(models.Model):
    """One step of an item's approval policy. Levels run in `order`; each one's approvers are the requester's
    manager or the active members of a group, and the level is done when any one (any-of) or every one
    (all-of) of them approves."""

    Kind = ApprovalKind
    Mode = ApprovalMode

    item = models.ForeignKey(CatalogItem, on_delete=models.CASCADE, related_name="approval_levels")
    order = models.PositiveIntegerField(default=10, help_text="Lower first.")
    kind = models.CharField("approver", max_length=10, choices=ApprovalKind.choices, default=ApprovalKind.MANAGER)
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              help_text="For an approver group: its active members approve.")
    mode = models.CharField(max_length=5, choices=ApprovalMode.choices, default=ApprovalMode.ANY,
                            help_text="Any one approver completes the level, or every one must approve.")

    class Meta:
        ordering = ["order", "id"]
        verbose_name = "approval level"
        constraints = [
            models.CheckConstraint(condition=Q(kind=ApprovalKind.MANAGER, group__isnull=True)
                                   | Q(kind=ApprovalKind.GROUP, group__isnull=False),
                                   violation_error_message="Choose the group for an approver group, "
                                                           "and none for the manager.",
                                   name="approval_level_group_iff_group_kind"),
        ]

    def __str__(self):
        who = f"group {self.group}" if self.kind == ApprovalKind.GROUP else "the requester's manager"
        return f"{who} ({self.get_mode_display().lower()})"

    def clean(self):
        if self.kind == ApprovalKind.GROUP and not self.group_id:
            raise ValidationError({"group": "Choose the approver group."})
        if self.kind == ApprovalKind.MANAGER and self.group_id:
            raise ValidationError({"group": "The manager's level has no group: clear it."})


class ApprovalState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    SKIPPED = "skipped", "Not needed"


class Approval(models.Model):
    """One person's decision on one level of a request's approval. Written only by requests_app.approvals."""

    State = ApprovalState

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="approvals")
    level = models.PositiveSmallIntegerField(help_text="1 for the first level of the item's policy, and so on.")
    mode = models.CharField(max_length=5, choices=ApprovalMode.choices, default=ApprovalMode.ANY)
    via = models.CharField(max_length=200, blank=True,
                           help_text='Why this person decides: "Manager of Alice", "Group IT approvers", ...')
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals")
    state = models.CharField(max_length=10, choices=ApprovalState.choices, default=ApprovalState.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    override = models.BooleanField(default=False, help_text="Decided by an admin in the approver's place.")
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["level", "id"]
        indexes = [
            # "Waiting for my approval": an approver's pending rows, oldest first.
            models.Index(fields=["approver", "created_at"], name="approval_pending_mine_idx",
                         condition=Q(state="pending")),
            # Every pending one (admins' inbox), oldest first.
            models.Index(fields=["created_at"], name="approval_pending_idx", condition=Q(state="pending")),
            # The reminder sweep: pending rows not reminded yet, by age (O(due)).
            models.Index(fields=["created_at"], name="approval_remind_due_idx",
                         condition=Q(state="pending", reminded_at__isnull=True)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["request", "level", "approver"], name="approval_once_per_level"),
            models.CheckConstraint(condition=Q(state__in=ApprovalState.values), name="approval_state_valid"),
        ]

    def __str__(self):
        return f"{self.request_id} level {self.level}: {self.approver} ({self.state})"
