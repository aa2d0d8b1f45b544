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
from sla.clocks import clock_calendar
from sla.registry import ticket_types
from sla.retime import retime_enqueue
from sla.services import holidays_import, sweep_schedule_apply
from sla.whatif import PolicyDraft, calendar_whatif, draft_calendar, policy_whatif

PREVIEW = "_preview"


def previewing(request) -> bool:
    """A change form posted with its "Preview changes" button."""
    return request.method == "POST" and PREVIEW in request.POST


class HeldForPreview:
    """Mixed into the change form of a preview: validated exactly as a save would validate it, then reported
    not valid, so admin saves nothing (not even `save(commit=False)`) and renders the posted form and its
    inlines again, with their errors if any. `valid_for_preview` keeps the real answer."""

    valid_for_preview = False

    def is_valid(self):
        self.valid_for_preview = super().is_valid()
        return False


def kept_rows(formset):
    """The inline rows a save would keep, as their (unsaved) instances: stored rows not marked for deletion
    and new rows that were filled in."""
    for form in formset.forms:
        if not form.has_changed() and form.instance.pk is None:
            continue  # an empty extra row
        if form.cleaned_data.get("DELETE"):
            continue
        yield form.instance


class WhatIfPreviewAdmin(AuditedAdmin):
    """A "Preview changes" button beside Save on the change form: the posted form and inlines are validated
    as a save would (errors shown the normal way); when valid, the same form comes back, nothing saved, with
    the open tickets' deadlines now and after the change (sla.whatif). Save then saves as usual."""

    change_form_template = "admin/sla/whatif_change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if previewing(request):
            form = type(form.__name__, (HeldForPreview, form), {})
        return form

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if previewing(request) and change and obj is not None:
            form = context["adminform"].form
            formsets = [inline.formset for inline in context["inline_admin_formsets"]]
            if getattr(form, "valid_for_preview", False) and all(fs.is_valid() for fs in formsets):
                context["whatif_notes"] = []
                try:
                    context["whatif"] = self.whatif(form, formsets, context["whatif_notes"])
                except ValueError as error:  # a calendar the clocks cannot count on
                    context["whatif_error"] = str(error)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def whatif(self, form, formsets, notes: list):
        raise NotImplementedError

    retime_key = ""  # "policy_id" or "calendar_id"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:  # the open tickets follow, once this save commits (sla.retime)
            retime_enqueue(**{self.retime_key: form.instance.pk},
                           reason=f"{form.instance._meta.verbose_name.capitalize()} {form.instance} changed")


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
        if not seen and not self.instance.is_24x7 and not any(self.errors):
            # Clocks on a calendar without hours would never reach a deadline: refuse it before it is used.
            raise ValidationError("Give the calendar at least one working interval, or tick 24x7.")


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
class BusinessCalendarAdmin(WhatIfPreviewAdmin):
    retime_key = "calendar_id"
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

    def whatif(self, form, formsets, notes):
        calendar = form.instance
        intervals, holidays = [], []
        for formset in formsets:
            if formset.model is models.WorkingInterval:
                intervals = [(i.weekday, i.start, i.end) for i in kept_rows(formset)]
            elif formset.model is models.Holiday:
                holidays = [h.date for h in kept_rows(formset)]
        edited = draft_calendar(tz=calendar.timezone, is_24x7=calendar.is_24x7, intervals=intervals,
                                holidays=holidays)
        return calendar_whatif(calendar.pk, edited)


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
class SlaPolicyAdmin(WhatIfPreviewAdmin):
    retime_key = "policy_id"
    form = SlaPolicyForm
    list_display = ["name", "order", "active", "ticket_type", "priority", "service", "organisation", "calendar",
                    "warning_percent"]
    list_filter = ["active", "ticket_type", "calendar"]
    list_select_related = ["service", "organisation", "calendar"]
    search_fields = ["name"]
    fields = ["name", "order", "active", "ticket_type", "priority", "service", "organisation", "calendar",
              "warning_percent", "pause_statuses"]
    inlines = [SlaTargetInline, EscalationStepInline]

    def whatif(self, form, formsets, notes):
        policy = form.instance
        targets = {}
        for formset in formsets:
            if formset.model is models.SlaTarget:
                targets = {t.priority: {models.ClockKind.FIRST_RESPONSE: t.first_response_minutes * 60,
                                        models.ClockKind.RESOLUTION: t.resolution_minutes * 60}
                           for t in kept_rows(formset)}
        changed = set(form.changed_data)
        if "pause_statuses" in changed:
            notes.append("Pause statuses apply when the change is saved; here every clock stays running or paused "
                         "as it is.")
        if changed & {"service", "organisation"}:
            notes.append("Which service or organisation the policy covers is checked again for each open ticket "
                         "when the change is saved; not previewed here.")
        draft = PolicyDraft(calendar=clock_calendar(policy.calendar), targets=targets,
                            warning_percent=policy.warning_percent, ticket_type=policy.ticket_type,
                            priority=policy.priority, active=policy.active, calendar_id=policy.calendar_id)
        return policy_whatif(policy.pk, draft)


@admin.register(models.OlaTarget)
class OlaTargetAdmin(AuditedAdmin):
    list_display = ["team", "priority", "minutes", "calendar"]
    list_filter = ["team", "calendar"]
    list_select_related = ["team", "calendar"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The team's open OLA clocks follow once this save commits (sla.retime).
        retime_enqueue(ola_team_id=obj.team_id, reason=f"OLA target {obj} saved")

    def delete_model(self, request, obj):
        team_id = obj.team_id
        super().delete_model(request, obj)
        retime_enqueue(ola_team_id=team_id, reason=f"OLA target {obj} deleted")


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
