"""Monitoring configuration in Django admin: event sources, classification rules, maintenance windows and the
settings singleton (every change audited, validation names the field); received events and alerts read-only.

Event source tokens are issued only by monitoring.sources (creating a source, or "Rotate token" on its page).
The token reaches the next page, and only that page, in a short-lived signed cookie scoped to that page's path:
the server never stores it, the page deletes the cookie as it shows it, and it shows it only while it is still
the source's current token. Reloading the page shows no token again."""

import json

from django import forms
from django.contrib import admin
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from monitoring.models import (
    SEVERITY_RANK,
    Alert,
    Event,
    EventSource,
    MaintenanceWindow,
    MonitoringSettings,
    Rule,
    Severity,
)
from monitoring.sources import event_source_create, event_source_rotate, token_digest
from servicedesk.admin import AuditedAdmin, ReadOnlyAdmin, audit_snapshot
from servicedesk.services import audit_record

# Where each kind of source posts (shared/API.md, "Events").
ENDPOINTS = {
    EventSource.Kind.GENERIC: "/api/v1/events/",
    EventSource.Kind.ALERTMANAGER: "/api/v1/integrations/alertmanager/",
    EventSource.Kind.GRAFANA: "/api/v1/integrations/grafana/",
}
TOKEN_PLACEHOLDER = "<token>"  # noqa: S105 - shown where no token is
TOKEN_COOKIE = "sd_event_source_token"  # noqa: S105 - a cookie name
TOKEN_COOKIE_SECONDS = 300  # the redirect to the token page follows at once; a forgotten cookie soon expires


class MonitoringMedia:
    css = {"all": ["css/monitoring-admin.css"]}


def pretty_json(value) -> str:
    """A JSON value as indented text in a <pre> (escaped by format_html)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return format_html('<pre class="monitoring-json">{}</pre>', text)


# --- event sources ---------------------------------------------------------------------------------------------

def _token_salt(source_id) -> str:
    return f"monitoring.event_source_token.{source_id}"


def token_page_url(source_id) -> str:
    return reverse("admin:monitoring_eventsource_token", args=[source_id])


def hand_over_token(request, response, *, source: EventSource, token: str, rotated: bool):
    """Carry a just-issued token to the token page (and no other page), signed, for a few minutes at most."""
    value = signing.dumps({"token": token, "rotated": rotated}, salt=_token_salt(source.id))
    response.set_cookie(TOKEN_COOKIE, value, max_age=TOKEN_COOKIE_SECONDS, path=token_page_url(source.id),
                        secure=request.is_secure(), httponly=True, samesite="Strict")
    return response


def take_token(request, source: EventSource) -> tuple[str | None, bool]:
    """The token handed over for this source, if it is still the source's current one; else (None, False)."""
    try:
        data = signing.loads(request.COOKIES.get(TOKEN_COOKIE, ""), salt=_token_salt(source.id),
                             max_age=TOKEN_COOKIE_SECONDS)
    except signing.BadSignature:  # absent, tampered with, for another source, or expired
        return None, False
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or token_digest(token) != source.token_hash:
        return None, False  # rotated again since: that token no longer works, so it is not shown
    return token, bool(data.get("rotated"))


def connection_help(request, source: EventSource | None, token: str | None = None) -> dict:
    """What to paste into the monitoring tool: the endpoint URL(s), and a receiver snippet for Alertmanager."""
    credential = token or TOKEN_PLACEHOLDER
    endpoints = [(EventSource.Kind(kind).label, request.build_absolute_uri(url)) for kind, url in ENDPOINTS.items()]
    if source is None:
        return {"endpoints": endpoints}
    url = request.build_absolute_uri(ENDPOINTS[source.kind])
    info = {"endpoint": url, "credential": credential, "kind": source.kind}
    if source.kind == EventSource.Kind.ALERTMANAGER:
        info["snippet"] = alertmanager_receiver(name=source.name, url=url, token=credential)
    return info


def alertmanager_receiver(*, name: str, url: str, token: str) -> str:
    """An alertmanager.yml receiver posting to this desk with the source's token (Authorization: Token ...)."""
    receiver = "servicedesk-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return (
        "receivers:\n"
        f"  - name: {receiver}\n"
        "    webhook_configs:\n"
        f"      - url: {url}\n"
        "        send_resolved: true\n"
        "        http_config:\n"
        "          authorization:\n"
        "            type: Token\n"
        f"            credentials: {token}\n"
    )


class EventSourceForm(forms.ModelForm):
    class Meta:
        model = EventSource
        fields = ["name", "kind", "enabled", "default_service", "default_configuration_item", "service_label",
                  "ci_label", "severity_label", "rate_limit_per_minute"]
        labels = {"default_configuration_item": "Default CI", "ci_label": "CI label"}


@admin.register(EventSource)
class EventSourceAdmin(AuditedAdmin):
    """Creating a source issues its token through monitoring.sources.event_source_create and shows it once;
    "Rotate token" (a confirmed POST) issues a new one through event_source_rotate. A source that has received
    events is not deleted (that would delete its events and alerts): disable it instead."""

    form = EventSourceForm
    list_display = ["name", "kind", "enabled", "token", "token_rotated_at", "default_service",
                    "default_configuration_item"]
    list_filter = ["kind", "enabled"]
    list_select_related = ["default_service", "default_configuration_item"]
    search_fields = ["name"]
    autocomplete_fields = ["default_service", "default_configuration_item"]
    Media = MonitoringMedia

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["name", "kind", "enabled"]}),
            ("Where its events belong", {
                "fields": ["default_service", "default_configuration_item", "service_label", "ci_label",
                           "severity_label"],
                "description": "The labels name the service, the configuration item and the severity of each "
                               "event; the defaults apply when an event names no known service or item."}),
            ("Limits", {"fields": ["rate_limit_per_minute"]}),
        ]
        if obj is not None:
            fieldsets.append(("Token", {"fields": ["token", "token_rotated_at", "created_at"],
                                        "description": "Only the token's last characters are kept in clear. "
                                                       "Lost it? Rotate it (button above): the old one stops "
                                                       "working at once."}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return ["token", "token_rotated_at", "created_at"] if obj is not None else []

    @admin.display(description="token")
    def token(self, obj):
        return f"…{obj.token_hint}" if obj.token_hint else "-"

    # Creation goes through the service, which issues the token (admin never saves the form's instance).
    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        fields = {k: v for k, v in form.cleaned_data.items() if k not in ("name", "kind")}
        source, token = event_source_create(name=form.cleaned_data["name"], kind=form.cleaned_data["kind"],
                                            actor=request.user, **fields)
        for field in EventSource._meta.concrete_fields:
            setattr(obj, field.attname, getattr(source, field.attname))
        obj._state.adding, obj._state.db = False, source._state.db
        request._monitoring_issued = (source, token)

    def save_related(self, request, form, formsets, change):
        if change:
            return super().save_related(request, form, formsets, change)
        # event_source_create wrote the audit row ("event_source.created"); a second one would repeat it.
        admin.ModelAdmin.save_related(self, request, form, formsets, change)

    @staticmethod
    def _audit_deleted(request, obj):
        before = audit_snapshot(obj)
        before.pop("token_hash", None)
        audit_record(actor=request.user, action=f"{obj._meta.model_name}.deleted", obj=obj,
                     changes={"before": before, "after": {}})

    def response_add(self, request, obj, post_url_continue=None):
        issued = getattr(request, "_monitoring_issued", None)
        if issued is None:
            return super().response_add(request, obj, post_url_continue)
        source, token = issued
        return hand_over_token(request, HttpResponseRedirect(token_page_url(source.id)), source=source,
                               token=token, rotated=False)

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        used = [source for source in objs if source.events.exists()]
        if used:
            # Say why in words, rather than "no permission to delete events" (events and alerts are read-only).
            perms_needed = set(perms_needed) - {Event._meta.verbose_name, Alert._meta.verbose_name}
            protected = [*protected, *(f"Event source “{source}” has received events: disable it instead "
                                       "(deleting it would delete its events and alerts)." for source in used)]
        return to_delete, model_count, perms_needed, protected

    def add_view(self, request, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "connection": connection_help(request, None)}
        return super().add_view(request, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        source = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if source is not None:
            extra_context["connection"] = connection_help(request, source)
            extra_context["can_rotate"] = self.has_change_permission(request, source)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path("<path:object_id>/rotate/", self.admin_site.admin_view(self.rotate_view),
                 name="monitoring_eventsource_rotate"),
            path("<path:object_id>/token/", self.admin_site.admin_view(self.token_view),
                 name="monitoring_eventsource_token"),
            *super().get_urls(),
        ]

    def _source_for(self, request, object_id) -> EventSource:
        source = self.get_object(request, object_id)
        if source is None:
            raise Http404("No such event source")
        if not self.has_change_permission(request, source):
            raise PermissionDenied
        return source

    def _page_context(self, request, source, title):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "original": source,
                "title": title, "media": self.media}

    def rotate_view(self, request, object_id):
        """GET: what rotating does, and a button. POST: rotate, then the token page."""
        source = self._source_for(request, object_id)
        if request.method == "POST":
            source, token = event_source_rotate(source_id=source.id, actor=request.user)
            self.log_change(request, source, "Rotated the token.")
            return hand_over_token(request, HttpResponseRedirect(token_page_url(source.id)), source=source,
                                   token=token, rotated=True)
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET", "POST"])
        context = self._page_context(request, source, f"Rotate the token of {source}?")
        return TemplateResponse(request, "admin/monitoring/eventsource/rotate.html", context)

    def token_view(self, request, object_id):
        """The just-issued token, once: the cookie carrying it is deleted by this very response."""
        source = self._source_for(request, object_id)
        token, rotated = take_token(request, source)
        title = (f"New token for {source}" if rotated else f"Event source {source} created") if token \
            else f"Token of {source}"
        context = {**self._page_context(request, source, title), "token": token, "rotated": rotated,
                   "connection": connection_help(request, source, token)}
        response = TemplateResponse(request, "admin/monitoring/eventsource/token.html", context)
        response.delete_cookie(TOKEN_COOKIE, path=token_page_url(source.id), samesite="Strict")
        response["Cache-Control"] = "no-store"  # nor kept in the browser's or a proxy's cache
        return response


# --- rules -----------------------------------------------------------------------------------------------------

class RuleForm(forms.ModelForm):
    match_severities = forms.MultipleChoiceField(
        label="Severities", choices=Severity.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Tick none to match every severity.")

    class Meta:
        model = Rule
        fields = ["name", "order", "enabled", "match_source", "match_severities", "match_labels", "match_text",
                  "classification", "suppress", "priority", "service", "team", "on_recovery"]
        widgets = {"match_labels": forms.Textarea(attrs={"rows": 3, "cols": 60})}
        labels = {"match_source": "Source", "match_labels": "Labels", "match_text": "Text"}

    def clean(self):
        data = super().clean()
        severities = data.get("match_severities")
        if severities is not None:
            unknown = [s for s in severities if s not in Severity.values]  # the choices refuse them already
            if unknown:
                self.add_error("match_severities", f"Unknown severity {unknown[0]!r}: give some of "
                                                   f"{', '.join(Severity.values)}.")
            else:
                data["match_severities"] = sorted(set(severities), key=lambda s: SEVERITY_RANK[s])
        if "match_labels" in data:
            labels = data["match_labels"]
            if labels in (None, ""):
                data["match_labels"] = {}
            elif not isinstance(labels, dict):
                self.add_error("match_labels", 'Give an object of label names and values, e.g. {"env": "prod"} '
                                               '(or {} for any labels).')
            else:
                for key, value in labels.items():
                    if not key.strip():
                        self.add_error("match_labels", "Label names must not be empty.")
                        break
                    if not isinstance(value, str):
                        self.add_error("match_labels", f"The value of label {key!r} must be a string in quotes "
                                                       f'(e.g. "{json.dumps(value)}"), or "*" for any value.')
                        break
        priority = data.get("priority")
        if priority is not None and not 1 <= priority <= 5:
            self.add_error("priority", "Give a priority from 1 (critical) to 5 (planning), or leave it empty.")
        return data


class SourceFilter(admin.RelatedFieldListFilter):
    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "source"


@admin.register(Rule)
class RuleAdmin(AuditedAdmin):
    """Ordered: the first enabled rule whose matchers all match an event decides what it becomes."""

    form = RuleForm
    list_display = ["order", "name", "enabled", "matchers", "classification_shown", "suppress", "priority", "team"]
    list_display_links = ["name"]
    list_editable = ["order", "enabled"]
    list_filter = ["enabled", "classification", "suppress", ("match_source", SourceFilter)]
    list_select_related = ["match_source", "team"]
    search_fields = ["name", "match_text"]
    autocomplete_fields = ["service", "team"]
    fieldsets = [
        (None, {"fields": ["name", "order", "enabled"]}),
        ("Matches events (all that are given must match; none given: every event)",
         {"fields": ["match_source", "match_severities", "match_labels", "match_text"]}),
        ("Then", {"fields": ["classification", "suppress", "priority", "service", "team", "on_recovery"]}),
    ]
    Media = MonitoringMedia

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "match_source" and field is not None:
            # Adding a source from a popup would issue a token the popup never shows.
            field.widget.can_add_related = False
        return field

    @admin.display(description="matches")
    def matchers(self, obj):
        parts = []
        if obj.match_source_id:
            parts.append(f"source {obj.match_source}")
        if obj.match_severities:
            parts.append("severity " + " or ".join(obj.match_severities))
        for key, value in (obj.match_labels or {}).items():
            parts.append(f"label {key}" if value == "*" else f"{key}={value}")
        if obj.match_text:
            parts.append(f"text “{obj.match_text}”")
        return "; ".join(parts) or "every event"

    @admin.display(description="classification", ordering="classification")
    def classification_shown(self, obj):
        return obj.get_classification_display() if obj.classification else "by severity"


# --- maintenance windows ---------------------------------------------------------------------------------------

class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ["name", "service", "configuration_item", "starts_at", "ends_at", "reason"]

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must be after the start.")
        if "service" in data and "configuration_item" in data and not (data["service"]
                                                                          or data["configuration_item"]):
            self.add_error("service", "Choose the service or the configuration item under maintenance (or both).")
        return data


class WhenFilter(admin.SimpleListFilter):
    title = "when"
    parameter_name = "when"

    def lookups(self, request, model_admin):
        return [("now", "Active now"), ("upcoming", "Upcoming"), ("past", "Past")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "now":
            return queryset.filter(starts_at__lte=now, ends_at__gt=now)
        if self.value() == "upcoming":
            return queryset.filter(starts_at__gt=now)
        if self.value() == "past":
            return queryset.filter(ends_at__lte=now)
        return queryset


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(AuditedAdmin):
    """Events of the service or configuration item between start and end are recorded and suppressed."""

    form = MaintenanceWindowForm
    list_display = ["name", "service", "configuration_item", "starts_at", "ends_at", "active_now", "created_by"]
    list_filter = [WhenFilter, "service"]
    list_select_related = ["service", "configuration_item", "created_by"]
    search_fields = ["name", "reason"]
    autocomplete_fields = ["service", "configuration_item"]
    readonly_fields = ["created_by"]
    fields = ["name", "service", "configuration_item", "starts_at", "ends_at", "reason", "created_by"]

    @admin.display(description="active now", boolean=True)
    def active_now(self, obj):
        return obj.starts_at <= timezone.now() < obj.ends_at

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


# --- settings --------------------------------------------------------------------------------------------------

@admin.register(MonitoringSettings)
class MonitoringSettingsAdmin(AuditedAdmin):
    """One row (pk=1, MonitoringSettings.current()): the list opens it; it is neither added nor deleted."""

    fieldsets = [
        ("Correlation and reopening", {"fields": ["correlation_window_minutes", "reopen_window_minutes"]}),
        ("Flapping", {"fields": ["flap_changes", "flap_minutes"]}),
        ("Recovery and resolving", {"fields": ["on_recovery", "recovery_spares_human_work", "resolve_interlock"]}),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if object_id == "1":
            MonitoringSettings.current()  # the row exists before anyone saves it
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        current = MonitoringSettings.current()
        return HttpResponseRedirect(reverse("admin:monitoring_monitoringsettings_change", args=[current.pk]))

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        if isinstance(response, HttpResponseRedirect) and "_continue" not in request.POST:
            return HttpResponseRedirect(reverse("admin:monitoring_monitoringsettings_change", args=[obj.pk]))
        return response


# --- what arrived: read-only -----------------------------------------------------------------------------------

@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Every event as received (written only by ingestion), with what processing made of it."""

    list_display = ["received_at", "source", "status", "severity", "summary", "service_name", "ci_name", "outcome",
                    "alert_link"]
    list_filter = ["source", "status", "severity", "outcome"]
    list_select_related = ["source"]
    search_fields = ["summary", "external_id", "fingerprint", "service_name", "ci_name"]
    show_full_result_count = False  # the table grows with every event: no second COUNT(*) per page
    fields = ["received_at", "source", "status", "severity", "summary", "description", "service_name", "ci_name",
              "labels_shown", "occurred_at", "starts_at", "external_id", "fingerprint", "group_key", "dedup_key",
              "processed_at", "outcome", "error", "alert_link", "raw_payload"]
    readonly_fields = fields
    Media = MonitoringMedia

    def get_queryset(self, request):
        # The list never shows the raw payload (it can be large); an event's own page loads it when shown.
        return super().get_queryset(request).defer("raw")

    @admin.display(description="alert")
    def alert_link(self, obj):
        if obj.alert_id is None:
            return "-"
        return format_html('<a href="{}">#{}</a>', reverse("admin:monitoring_alert_change", args=[obj.alert_id]),
                           obj.alert_id)

    @admin.display(description="labels")
    def labels_shown(self, obj):
        return pretty_json(obj.labels)

    @admin.display(description="raw payload")
    def raw_payload(self, obj):
        return pretty_json(obj.raw)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Alerts as processing folded them (written only by monitoring.processing and monitoring.services)."""

    list_display = ["summary", "status", "severity", "classification", "source", "service", "configuration_item",
                    "count", "first_seen", "last_seen", "incident", "flapping", "acknowledged_at"]
    list_filter = ["source", "status", "severity", "classification", "live", "flapping"]
    list_select_related = ["source", "service", "configuration_item", "incident"]
    search_fields = ["summary", "fingerprint", "external_id", "incident__number"]
    show_full_result_count = False
    fields = ["summary", "description", "status", "live", "severity", "classification", "source", "fingerprint",
              "external_id", "group_key", "labels_shown", "service", "configuration_item", "rule", "incident",
              "count", "first_seen", "last_seen", "starts_at", "cleared_at", "flapping", "flapping_since",
              "changes_shown", "acknowledged_at", "acknowledged_by", "events_link", "latest_payload"]
    readonly_fields = fields
    Media = MonitoringMedia

    @admin.display(description="labels")
    def labels_shown(self, obj):
        return pretty_json(obj.labels)

    @admin.display(description="firing/resolved changes")
    def changes_shown(self, obj):
        return pretty_json(obj.changes)

    @admin.display(description="events")
    def events_link(self, obj):
        url = reverse("admin:monitoring_event_changelist") + f"?alert__id__exact={obj.id}"
        return format_html('<a href="{}">The {} event(s) of this alert</a>', url, obj.count)

    @admin.display(description="latest raw payload")
    def latest_payload(self, obj):
        event = obj.events.order_by("-received_at", "-id").only("raw").first()
        return pretty_json(event.raw) if event else "-"

