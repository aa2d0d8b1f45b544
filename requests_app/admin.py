from django import forms
from django.contrib import admin

from requests_app.fulfilment import handler_choices
from requests_app.models import (
    Approval,
    ApprovalLevel,
    Audience,
    CatalogCategory,
    CatalogField,
    CatalogItem,
    FulfilmentRun,
    ServiceRequest,
)
from servicedesk.admin import AuditedAdmin, ReadOnlyAdmin, TicketAdmin


@admin.register(CatalogCategory)
class CatalogCategoryAdmin(AuditedAdmin):
    list_display = ["name", "order", "icon"]
    list_editable = ["order"]
    search_fields = ["name"]


class FieldFormSet(forms.BaseInlineFormSet):
    def clean(self):
        """Field names once per item, the error on each repeated name (Django's own unique check would name
        neither the field nor the row)."""
        super().clean()
        rows = [f for f in self.forms if f.has_changed() or f.instance.pk]
        rows = [f for f in rows if not self._should_delete_form(f) and f.cleaned_data.get("name")]
        seen = set()
        for form in rows:
            name = form.cleaned_data["name"]
            if name in seen:
                form.add_error("name", f"The name {name!r} is used by another field of this item.")
            seen.add(name)

    def validate_unique(self):
        pass  # replaced by clean() above, which names the field


class FieldInline(admin.StackedInline):
    model = CatalogField
    formset = FieldFormSet
    extra = 0
    ordering = ["order", "id"]
    fieldsets = [
        (None, {"fields": [("order", "name", "label"), ("type", "required"), "help_text"]}),
        ("Choices (choice and multiple-choice fields)", {"fields": ["choices"]}),
        ("Validation", {"fields": [("min_value", "max_value"), ("max_length", "regex")]}),
    ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "choices":
            field.widget = forms.Textarea(attrs={"rows": 4, "cols": 40})
        return field


class ApprovalLevelInline(admin.TabularInline):
    """The item's approval policy: ordered levels, each the requester's manager or an approver group,
    any-of or all-of. No levels: the item needs no approval."""

    model = ApprovalLevel
    extra = 0
    ordering = ["order", "id"]
    fields = ["order", "kind", "group", "mode"]
    verbose_name_plural = "approval levels (in order; none: no approval needed)"


class CatalogItemForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The registered handlers (requests_app.fulfilment), or none: the team fulfils it by hand.
        choices = [("", "None: the team fulfils it by hand"), *handler_choices()]
        current = self.instance.handler if self.instance else ""
        if current and current not in dict(choices):
            choices.append((current, f"{current} (not installed)"))
        self.fields["handler"].widget = forms.Select(choices=choices)

    class Meta:
        model = CatalogItem
        fields = ["name", "category", "order", "icon", "description", "active", "audience", "organisations",
                  "groups", "approval_fallback_group", "fulfilment_team", "handler", "handler_settings", "sla_policy",
                  "delivery_amount", "delivery_unit"]

    def clean(self):
        data = super().clean()
        audience = data.get("audience")
        if audience == Audience.ORGANISATIONS and not data.get("organisations"):
            self.add_error("organisations", "Choose at least one organisation, or let everyone order it.")
        if audience == Audience.GROUPS and not data.get("groups"):
            self.add_error("groups", "Choose at least one group, or let everyone order it.")
        return data


@admin.register(CatalogItem)
class CatalogItemAdmin(AuditedAdmin):
    form = CatalogItemForm
    list_display = ["name", "category", "active", "audience", "fulfilment_team", "handler", "delivery"]
    list_filter = ["active", "category", "audience", "fulfilment_team"]
    list_select_related = ["category", "fulfilment_team"]
    search_fields = ["name", "description"]
    autocomplete_fields = ["fulfilment_team"]
    filter_horizontal = ["organisations", "groups"]
    fieldsets = [
        (None, {"fields": ["name", "category", "order", "icon", "description", "active"]}),
        ("Who may order it", {"fields": ["audience", "organisations", "groups"]}),
        ("Approval", {"fields": ["approval_fallback_group"],
                      "description": "Levels of approval are listed below the form; the fallback group decides "
                                     "when a level names nobody."}),
        ("Fulfilment", {"fields": ["fulfilment_team", "handler", "handler_settings", "sla_policy",
                                   ("delivery_amount", "delivery_unit")]}),
    ]
    inlines = [FieldInline, ApprovalLevelInline]

    @admin.display(description="expected delivery")
    def delivery(self, obj):
        return obj.expected_delivery or "-"


@admin.register(ServiceRequest)
class ServiceRequestAdmin(TicketAdmin):
    """Read-only and never deleted here: requests change through the API's actions, which go through
    requests_app.services; erasure is `manage.py erase_ticket`."""

    list_display = ["number", "item", "requester", "status", "assignment_group", "created_at"]
    list_filter = ["status", "assignment_group"]
    search_fields = ["number", "title", "requester__username"]
    list_select_related = ["item", "requester", "assignment_group"]


@admin.register(FulfilmentRun)
class FulfilmentRunAdmin(admin.ModelAdmin):
    """Read-only: what each automated handler did (steps, reference, deadline, last error)."""

    list_display = ["request", "handler", "state", "round", "attempts", "external_ref", "deadline", "updated_at"]
    list_filter = ["state", "handler"]
    search_fields = ["request__number", "external_ref"]
    list_select_related = ["request"]
    exclude = ["callback_nonce"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    """Read-only: approvals are decided in the inboxes, the API or the mailed links (requests_app.approvals)."""

    list_display = ["request", "level", "approver", "state", "override", "decided_by", "decided_at", "created_at"]
    list_filter = ["state", "override"]
    search_fields = ["request__number", "approver__username"]
    list_select_related = ["request", "approver", "decided_by"]
