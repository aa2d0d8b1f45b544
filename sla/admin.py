"""SLA configuration in Django admin. Every change is audited (servicedesk.admin.AuditedAdmin), inline rows
included; validation names the field; calendars import public holidays from a form on their change page."""

from datetime import date

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from servicedesk.admin import AuditedAdmin, ReadOnlyAdmin
from sla import models
from sla.registry import ticket_types
from sla.services import holidays_import, sweep_schedule_apply


class IntervalFormSet(BaseInlineFormSet):
    """Checks a calendar's intervals together: rows may be moved at once, so each row alone is not compared
    with what is stored (WorkingInterval.clean does that for a row saved on its own)."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.instance._overlap_checked_by_formset = True
        return form

    def clean(self):
        super().clean()
        seen = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or self._should_delete_form(form):
                continue
            day, start, end = data.get("weekday"), data.get("start"), data.get("end")
            if day is None or start is None or end is None:
                continue
            for other_day, other_start, other_end in seen:
                if models.find_overlap([(0, day, start, end), (1, other_day, other_start, other_end)]):
                    form.add_error("start", f"Overlaps {models.describe_interval(other_day, other_start, other_end)}.")
                    break
            else:
                seen.append((day, start, end))


class WorkingIntervalInline(admin.TabularInline):
    model = models.WorkingInterval
    formset = IntervalFormSet
    extra = 1


class HolidayInline(admin.TabularInline):
    model = models.Holiday
    extra = 1


class HolidayImportForm(forms.Form):
    country = forms.CharField(max_length=3, help_text="ISO 3166 code, e.g. GB, DE, US.")
    subdivision = forms.CharField(max_length=10, required=False, help_text="Optional, e.g. ENG for England.")
    year_from = forms.IntegerField(label="From year")
    year_to = forms.IntegerField(label="To year")


@admin.register(models.BusinessCalendar)
class BusinessCalendarAdmin(AuditedAdmin):
    list_display = ["name", "timezone", "is_24x7"]
    search_fields = ["name"]
    fields = ["name", "timezone", "is_24x7", "import_holidays"]
    readonly_fields = ["import_holidays"]
    inlines = [WorkingIntervalInline, HolidayInline]

    @admin.display(description="Public holidays")
    def import_holidays(self, obj):
        if not obj.pk:
            return "Save the calendar first, then import a country's public holidays."
        url = reverse("admin:sla_businesscalendar_import_holidays", args=[obj.pk])
        return format_html('<a href="{}">Import public holidays…</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_holidays_view)
        return [path("<path:object_id>/import-holidays/", view, name="sla_businesscalendar_import_holidays"),
                *super().get_urls()]

    def import_holidays_view(self, request, object_id):
        calendar = self.get_object(request, object_id)
        if calendar is None:
            raise Http404("No such calendar")
        if not self.has_change_permission(request, calendar):
            raise PermissionDenied
        this_year = date.today().year
        form = HolidayImportForm(request.POST or None, initial={"year_from": this_year, "year_to": this_year + 1})
        if request.method == "POST" and form.is_valid():
            try:
                done = holidays_import(calendar_id=calendar.id, actor=request.user, **form.cleaned_data)
            except ValidationError as error:
                for field, messages in error.message_dict.items():
                    form.add_error(field, messages)
            else:
                self.message_user(request, f"{done.added} holiday(s) added; {done.kept} date(s) already there kept.")
                return HttpResponseRedirect(reverse("admin:sla_businesscalendar_change", args=[calendar.pk]))
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "original": calendar,
            "title": f"Import public holidays into {calendar}", "form": form,
        }
        return TemplateResponse(request, "admin/sla/businesscalendar/import_holidays.html", context)


class SlaTargetInline(admin.TabularInline):
    model = models.SlaTarget
    extra = 1


class EscalationStepInline(admin.TabularInline):
    model = models.EscalationStep
    extra = 1


class SlaPolicyForm(forms.ModelForm):
    class Meta:
        model = models.SlaPolicy
        fields = ["name", "order", "active", "ticket_type", "priority", "service", "organisation", "calendar",
                  "warning_percent", "pause_statuses"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        known = ticket_types()
        if known:  # once ticket apps have registered, offer exactly their types
            self.fields["ticket_type"].widget = forms.Select(choices=list(known.items()))


@admin.register(models.SlaPolicy)
class SlaPolicyAdmin(AuditedAdmin):
    form = SlaPolicyForm
    list_display = ["name", "order", "active", "ticket_type", "priority", "service", "organisation", "calendar",
                    "warning_percent"]
    list_filter = ["active", "ticket_type", "calendar"]
    list_select_related = ["service", "organisation", "calendar"]
    search_fields = ["name"]
    fields = ["name", "order", "active", "ticket_type", "priority", "service", "organisation", "calendar",
              "warning_percent", "pause_statuses"]
    inlines = [SlaTargetInline, EscalationStepInline]


@admin.register(models.OlaTarget)
class OlaTargetAdmin(AuditedAdmin):
    list_display = ["team", "priority", "minutes", "calendar"]
    list_filter = ["team", "calendar"]
    list_select_related = ["team", "calendar"]


@admin.register(models.TeamWorkingHours)
class TeamWorkingHoursAdmin(AuditedAdmin):
    list_display = ["team", "calendar", "hold_escalations"]
    list_select_related = ["team", "calendar"]


@admin.register(models.SlaSettings)
class SlaSettingsAdmin(AuditedAdmin):
    """One row; saving it re-times the sweep's beat entry."""

    fields = ["sweep_interval_seconds"]

    def has_add_permission(self, request):
        return not models.SlaSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        sweep_schedule_apply(obj.sweep_interval_seconds)


@admin.register(models.SlaClock)
class SlaClockAdmin(ReadOnlyAdmin):
    """Clocks are written only by the ticket services and the sweep; shown here to answer "why this state"."""

    list_display = ["ticket_type", "ticket_id", "kind", "state", "priority", "policy_name", "due_at", "breached_at"]
    list_filter = ["state", "kind", "ticket_type"]
    search_fields = ["=ticket_id", "policy_name"]
    list_select_related = ["calendar"]
