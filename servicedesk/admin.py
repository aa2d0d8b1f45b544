import json

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import Http404
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from servicedesk import models
from servicedesk.roles import Role, role_of
from servicedesk.services import audit_record

# Values of these fields never reach the audit trail; it records only that they changed.
SECRET_FIELDS = {"password", "secret", "token"}
MASK = "(hidden)"


def audit_snapshot(obj, names=None, *, mask=True) -> dict:
    """Readable values of `obj`'s fields (all of them, or `names`): related objects by their name,
    many-to-many as a sorted list of names, secrets masked unless `mask` is False (compare, never store)."""
    opts = obj._meta
    fields = [f for f in [*opts.concrete_fields, *opts.many_to_many] if not f.primary_key]
    if names is not None:
        fields = [f for f in fields if f.name in names]
    values = {}
    for field in fields:
        if field.many_to_many:
            value = sorted(str(o) for o in getattr(obj, field.name).all()) if obj.pk else []
        elif field.is_relation:
            related = getattr(obj, field.name)
            value = None if related is None else str(related)
        else:
            value = json.loads(json.dumps(field.value_from_object(obj), cls=DjangoJSONEncoder))
        if mask and field.name in SECRET_FIELDS and value:
            value = MASK
        values[field.name] = value
    return values


class AuditedAdminMixin:
    """Every add, change and delete made in admin lands in the audit trail with the values before and after:
    the changed fields of the object, its many-to-many lists and its inline rows (e.g. a team's members).
    Written in admin's own transaction, so a failed save leaves no row."""

    def save_model(self, request, obj, form, change):
        names = self._audit_field_names(form) if change else None
        if change:
            stored = type(obj)._default_manager.get(pk=obj.pk)  # obj already carries the form's new values
            form._audit_before = audit_snapshot(stored, names, mask=False)
        else:
            form._audit_before = {}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        inline_before = {
            self._inline_key(fs): self._inline_rows(fs) for fs in formsets if fs.has_changed()
        }
        super().save_related(request, form, formsets, change)
        obj = form.instance
        before = getattr(form, "_audit_before", {})
        after = audit_snapshot(obj, self._audit_field_names(form) if change else None, mask=False)
        for key in [k for k in before if k in after and before[k] == after[k]]:
            del before[key], after[key]  # in the form's changed_data, but the stored value is the same
        for key in SECRET_FIELDS:
            if before.get(key):
                before[key] = MASK
            if after.get(key):
                after[key] = f"{MASK} changed" if change else MASK
        for key, rows in inline_before.items():
            fs = next(fs for fs in formsets if self._inline_key(fs) == key)
            now = self._inline_rows(fs)
            if now != rows:
                before[key], after[key] = rows, now
        if change and before == after:
            return  # saved without changing anything: nothing to record
        audit_record(actor=request.user, action=f"{obj._meta.model_name}.{'changed' if change else 'added'}",
                     obj=obj, changes={"before": before, "after": after})

    def delete_model(self, request, obj):
        self._audit_deleted(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:  # the "delete selected" action: one row per object, like a single delete
            self._audit_deleted(request, obj)
        super().delete_queryset(request, queryset)

    @staticmethod
    def _audit_deleted(request, obj):
        audit_record(actor=request.user, action=f"{obj._meta.model_name}.deleted", obj=obj,
                     changes={"before": audit_snapshot(obj), "after": {}})

    @staticmethod
    def _audit_field_names(form) -> set[str]:
        return set(form.changed_data)

    @staticmethod
    def _inline_key(formset) -> str:
        return str(formset.model._meta.verbose_name_plural)

    @staticmethod
    def _inline_rows(formset) -> list[str]:
        rows = formset.model._default_manager.filter(**{formset.fk.name: formset.instance}) if formset.instance.pk \
            else []
        return sorted(str(row) for row in rows)


class AuditedAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Base of every configuration admin."""


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the application (tickets, the audit trail, outbox messages and deliveries, stored
    API responses): shown, never added, edited or deleted in admin. Deleting a pending outbox row would drop
    a side effect that was promised; its admin queues failed ones again with an action instead."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TicketAdmin(ReadOnlyAdmin):
    """Base of every ticket type's admin (a system check enforces it): read-only, and never deleted.
    Tickets are cancelled or closed through their services; data-protection erasure is
    `manage.py erase_ticket`, which removes the files too and leaves an audit row."""


class ProfileInline(admin.StackedInline):
    model = models.Profile
    can_delete = False
    fk_name = "user"
    autocomplete_fields = ["manager"]


class ExternalIdentityInline(admin.TabularInline):
    """Single sign-on identities: an admin binds an agent's or admin's existing account to their provider
    account here (sign-in never does that by itself for such accounts, see servicedesk/oidc.py)."""

    model = models.ExternalIdentity
    extra = 0
    fields = ["issuer", "subject", "created_at", "last_sign_in_at"]
    readonly_fields = ["created_at", "last_sign_in_at"]


class MembershipInline(admin.TabularInline):
    model = models.TeamMembership
    extra = 1
    fields = ["user", "joined_at"]
    readonly_fields = ["joined_at"]
    # Offers agents, managers and admins only (TeamMembership.user's limit_choices_to), also to managers.
    autocomplete_fields = ["user"]


def _is_autocomplete(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return match is not None and match.url_name == "autocomplete"


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    inlines = [ProfileInline, ExternalIdentityInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active", "two_factor"]
    list_filter = ["groups", "is_staff", "is_active"]
    actions = ["twofactor_reset"]
    # Shown, not edited: re-saving them through the form would only cut their microseconds off.
    readonly_fields = ["last_login", "date_joined"]

    def has_view_permission(self, request, obj=None):
        # Managers pick a team's members with admin's autocomplete, which asks this admin for view permission.
        # They get exactly that JSON search (over agents only, get_queryset) and not the user pages.
        if super().has_view_permission(request, obj):
            return True
        return _is_autocomplete(request) and role_of(request.user) == Role.MANAGER

    def get_queryset(self, request):
        queryset = super().get_queryset(request).annotate(
            has_two_factor=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)))
        if request.user.has_perm("auth.view_user"):
            return queryset
        return queryset.filter(models.staff_role_users())

    @admin.display(boolean=True, description="Two-factor", ordering="has_two_factor")
    def two_factor(self, user):
        return user.has_two_factor

    @admin.action(description="Reset two-factor sign-in (lost phone): remove authenticator and backup codes",
                  permissions=["change"])
    def twofactor_reset(self, request, queryset):
        from servicedesk.twofactor import twofactor_reset

        users = [user for user in queryset if user.has_two_factor or twofactor_has_any(user)]
        for user in users:
            twofactor_reset(user=user, actor=request.user)
        self.message_user(request, f"Two-factor sign-in reset for {len(users)} user{'' if len(users) == 1 else 's'}"
                                   f"{': ' + ', '.join(u.get_username() for u in users) if users else ''}.")

    def user_change_password(self, request, id, form_url=""):
        """Admin's own password form saves through the form, not save_model: audit it here (the value never)."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, id)
            audit_record(actor=request.user, action="user.changed", obj=user,
                         changes={"before": {"password": MASK}, "after": {"password": f"{MASK} changed"}})
        return response


@admin.register(models.Organisation)
class OrganisationAdmin(AuditedAdmin):
    list_display = ["name", "email_domain", "created_at"]
    search_fields = ["name", "email_domain"]


@admin.register(models.Team)
class TeamAdmin(AuditedAdmin):
    """Admins edit every team. A manager sees and edits only the teams they lead: members, assignment
    strategy, email and description, not the name (routing rules, the API and reports refer to it) nor the
    lead (that is what gives them this page); they cannot add or delete teams (no permission)."""

    list_display = ["name", "lead", "assignment_strategy", "email"]
    search_fields = ["name"]
    fields = ["name", "lead", "description", "email", "assignment_strategy"]
    autocomplete_fields = ["lead"]
    inlines = [MembershipInline]

    @staticmethod
    def _manages_all(request) -> bool:
        return role_of(request.user) == Role.ADMIN

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("lead")
        return queryset if self._manages_all(request) else queryset.filter(lead=request.user)

    def get_object(self, request, object_id, from_field=None):
        # Another lead's team answers 404 exactly like a missing one (not admin's redirect to the index).
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such team")
        return obj

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or self._manages_all(request) or obj.lead_id == request.user.id)

    def get_readonly_fields(self, request, obj=None):
        return [] if self._manages_all(request) else ["name", "lead"]


@admin.register(models.Service)
class ServiceAdmin(AuditedAdmin):
    list_display = ["name", "owner_team", "criticality", "default_impact", "active"]
    list_filter = ["criticality", "default_impact", "active", "owner_team"]
    search_fields = ["name"]


@admin.register(models.ConfigurationItem)
class ConfigurationItemAdmin(AuditedAdmin):
    list_display = ["name", "kind", "state", "owner_team", "criticality"]
    list_filter = ["kind", "state", "criticality"]
    search_fields = ["name"]
    filter_horizontal = ["services"]


@admin.register(models.PriorityRule)
class PriorityRuleAdmin(AuditedAdmin):
    list_display = ["impact", "urgency", "priority"]
    list_editable = ["priority"]
    list_display_links = None


@admin.register(models.Webhook)
class WebhookAdmin(AuditedAdmin):
    list_display = ["name", "url", "active", "created_at"]
    list_filter = ["active"]


@admin.register(models.WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event", "webhook", "state", "attempts", "response_code", "created_at", "delivered_at"]
    list_filter = ["state", "webhook"]
    list_select_related = ["webhook"]
    readonly_fields = [f.name for f in models.WebhookDelivery._meta.fields]


@admin.register(models.AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "object_repr"]
    list_filter = ["action"]
    search_fields = ["object_repr", "action", "actor__username"]
    list_select_related = ["actor"]
    readonly_fields = ["at", "actor", "action", "content_type", "object_id", "object_repr", "changes"]


@admin.register(models.Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "seen_at", "detail"]

    def has_add_permission(self, request):
        return False


@admin.register(models.OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    """Every side effect waiting, done or failed; failed ones can be queued again."""

    list_display = ["id", "handler", "state", "attempts", "short_error", "next_attempt_at", "created_at",
                    "processed_at"]
    list_filter = ["state", "handler"]
    search_fields = ["handler", "last_error"]
    readonly_fields = [f.name for f in models.OutboxMessage._meta.fields]
    actions = ["retry_failed"]
    show_full_result_count = False  # the table grows with every side effect: no COUNT(*) per page

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error[:80] + "...") if len(obj.last_error) > 80 else obj.last_error

    @admin.action(description="Retry selected failed messages")
    def retry_failed(self, request, queryset):
        from servicedesk.outbox import outbox_retry_failed

        count = outbox_retry_failed(queryset.values_list("id", flat=True), actor=request.user)
        self.message_user(request, f"{count} failed message(s) queued again.")


@admin.register(models.IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ["key", "owner", "method", "path", "status_code", "created_at"]
    search_fields = ["key", "owner"]
    readonly_fields = [f.name for f in models.IdempotencyKey._meta.fields]




@admin.register(models.Rating)
class RatingAdmin(ReadOnlyAdmin):
    """Satisfaction ratings requesters gave (servicedesk.services.rating_give); agents also read them on the
    ticket's timeline."""

    list_display = ["number", "score", "comment", "by", "created_at", "updated_at"]
    list_filter = ["score", "content_type"]
    search_fields = ["number", "comment", "by__username"]
    list_select_related = ["by"]
    readonly_fields = ["number", "score", "comment", "by", "created_at", "updated_at", "content_type", "object_id"]


@admin.register(models.Watcher)
class WatcherAdmin(ReadOnlyAdmin):
    """Who watches which ticket (added and removed on the ticket's agent page or through the API)."""

    list_display = ["user", "content_type", "object_id", "added_by", "created_at"]
    list_filter = ["content_type"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user", "added_by", "content_type"]
    readonly_fields = ["user", "content_type", "object_id", "added_by", "created_at"]


# --- two-factor sign-in (issue 13) ------------------------------------------------------------------
# django-otp's own admin pages would show every user's secret (and its QR code): admins reset a user's
# two-factor sign-in from the user list instead (action "Reset two-factor sign-in"), audited.
for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


def twofactor_has_any(user) -> bool:
    return TOTPDevice.objects.filter(user=user).exists() or StaticDevice.objects.filter(user=user).exists()


@admin.register(models.SignInPolicy)
class SignInPolicyAdmin(AuditedAdmin):
    """Which roles must sign in with a second factor; one row. A tightened policy reaches sessions already
    signed in within a minute: they are sent to set it up (or to enter a code) before anything else."""

    list_display = ["__str__", "require_agents", "require_managers", "require_admins", "updated_at"]
    fields = ["require_agents", "require_managers", "require_admins"]

    def has_add_permission(self, request):
        return not models.SignInPolicy.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        from servicedesk.twofactor import policy_forget

        transaction.on_commit(policy_forget)
@admin.register(models.RetentionRun)
class RetentionRunAdmin(ReadOnlyAdmin):
    """Each run of retention (servicedesk.retention): what it removed per rule and its archive file."""

    list_display = ("started_at", "state", "removed", "finished_at", "archive")
    list_filter = ("state",)
    date_hierarchy = "started_at"

    @admin.display(description="removed")
    def removed(self, obj):
        return ", ".join(f"{key} {value.get('removed', 0)}" for key, value in obj.counts.items()) or "nothing"
