"""The email channel in Django admin: mailboxes (configuration, every change audited, the password write-only)
and the mails that arrived (read-only: what each became and why; a failed one is processed again with an action;
the raw .eml downloads through an admin view)."""

from django import forms
from django.contrib import admin
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from email_channel.admin_actions import MAILBOX_ACTIONS
from email_channel.models import InboundMessage, Mailbox
from email_channel.processing import inbound_erased
from servicedesk.admin import AuditedAdmin, ReadOnlyAdmin


class MailboxForm(forms.ModelForm):
    # Write-only: the stored password is never sent to the browser; left blank, the old one is kept.
    password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The IMAP account's password. Leave blank to keep the current one.",
    )

    class Meta:
        model = Mailbox
        fields = ["name", "active", "address", "host", "port", "security", "username", "password", "folder",
                  "poll_seconds", "creates", "category", "service", "team", "catalog_item", "accept", "domains",
                  "create_accounts", "rate_limit_per_hour"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Not even the form's initial data holds it; so a blank field is also "unchanged" for the audit trail.
        self.initial["password"] = ""

    def clean_password(self):
        password = self.cleaned_data.get("password") or ""
        if not password and self.instance.pk:
            return Mailbox.objects.filter(pk=self.instance.pk).values_list("password", flat=True).first() or ""
        return password

    def clean(self):
        cleaned = super().clean()
        errors = {}
        if cleaned.get("creates") == Mailbox.Creates.REQUEST and not cleaned.get("catalog_item"):
            errors["catalog_item"] = "A mailbox that creates requests needs the catalog item they are ordered from."
        if cleaned.get("accept") == Mailbox.Accept.DOMAINS and not (cleaned.get("domains") or "").strip():
            errors["domains"] = "Name at least one domain (e.g. example.com), or accept anyone or known users."
        if errors:
            raise forms.ValidationError(errors)
        return cleaned


@admin.register(Mailbox)
class MailboxAdmin(AuditedAdmin):
    form = MailboxForm
    list_display = ["name", "address", "active", "creates", "accept", "host", "last_polled_at", "last_error_short"]
    list_filter = ["active", "creates", "accept"]
    search_fields = ["name", "address", "host"]
    actions = MAILBOX_ACTIONS
    readonly_fields = ["uidvalidity", "last_uid", "next_poll_at", "lease_until", "last_polled_at", "last_error",
                       "last_error_at", "created_at"]
    fieldsets = [
        ("Connection", {"fields": ["name", "active", "address", "host", "port", "security", "username", "password",
                                   "folder", "poll_seconds"]}),
        ("What a new mail creates", {"fields": ["creates", "category", "service", "team", "catalog_item"],
                                     "description": "Replies to a ticket's mail become comments on that ticket; "
                                                    "other mail opens a ticket of this kind."}),
        ("Who may write", {"fields": ["accept", "domains", "create_accounts"]}),
        ("Limits", {"fields": ["rate_limit_per_hour"]}),
        ("Poll state", {"fields": readonly_fields, "classes": ["collapse"]}),
    ]

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return (obj.last_error[:60] + "...") if len(obj.last_error) > 60 else obj.last_error


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    """Every mail that arrived, kept as it came; never added, edited or deleted here."""

    list_display = ["received_at", "mailbox", "from_address", "subject_short", "state", "why", "ticket_number"]
    # Received: today / 7 days / this month / this year, ranges on the received index. No date_hierarchy: its
    # month list reads every row (238 ms at 1M mails, docs/email-bench.md).
    list_filter = ["state", ("received_at", admin.DateFieldListFilter), "mailbox", "source"]
    search_fields = ["from_address", "subject", "message_id"]
    list_select_related = ["mailbox"]
    show_full_result_count = False  # grows with every mail: no COUNT(*) per page
    actions = ["process_again"]
    fields = ["mailbox", "source", "received_at", "state", "reason", "error", "attempts", "processed_at", "action",
              "ticket_number", "ticket_kind", "message_id", "from_address", "subject", "size", "uidvalidity", "uid",
              "raw_download", "original_link", "headers_shown", "text_shown", "attachments_shown"]
    readonly_fields = fields

    def get_queryset(self, request):
        # The list never loads the raw mail; the detail page reads it once.
        queryset = super().get_queryset(request)
        return queryset if getattr(request, "_inbound_detail", False) else queryset.defer("raw")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        request._inbound_detail = True
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [path("<int:message_id>/raw/", self.admin_site.admin_view(self.raw_view),
                     name="email_channel_inboundmessage_raw"), *super().get_urls()]

    def raw_view(self, request, message_id):
        """The mail exactly as it arrived, as an .eml file (never shown inline: it is the sender's content)."""
        message = get_object_or_404(InboundMessage, id=message_id)
        if not self.has_view_permission(request, message):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        if inbound_erased(message):
            raise Http404("This mail was erased with its ticket.")
        response = HttpResponse(bytes(message.raw), content_type="message/rfc822")
        response["Content-Disposition"] = f'attachment; filename="mail-{message.id}.eml"'
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @admin.display(description="subject")
    def subject_short(self, obj):
        return (obj.subject[:70] + "...") if len(obj.subject) > 70 else obj.subject

    @admin.display(description="reason / error")
    def why(self, obj):
        text = obj.error or obj.reason
        return (text[:80] + "...") if len(text) > 80 else text

    @admin.display(description="as agents see it")
    def original_link(self, obj):
        url = reverse("agent:mail_original", args=[obj.id])
        return format_html('<a href="{}">Open the original mail (formatted, with inline images)</a>', url)

    @admin.display(description="raw mail")
    def raw_download(self, obj):
        if inbound_erased(obj):
            return obj.reason  # "erased with INC...": nothing left to download
        url = reverse("admin:email_channel_inboundmessage_raw", args=[obj.id])
        return format_html('<a href="{}">Download mail-{}.eml</a> ({} bytes)', url, obj.id, obj.size)

    def _parsed(self, obj):
        cached = getattr(obj, "_parsed", None)
        if cached is None:
            from email_channel.parsing import mail_parse

            try:
                cached = mail_parse(bytes(obj.raw))
            except Exception as exc:  # noqa: BLE001 - the page still shows the row and the raw download
                cached = exc
            obj._parsed = cached
        return cached

    @admin.display(description="headers")
    def headers_shown(self, obj):
        parsed = self._parsed(obj)
        if isinstance(parsed, Exception):
            return f"Cannot read this mail: {parsed.__class__.__name__}: {parsed}"
        lines = "\n".join(f"{name}: {value}" for name, value in parsed.headers.items())
        return format_html("<pre>{}</pre>", lines)

    @admin.display(description="text")
    def text_shown(self, obj):
        parsed = self._parsed(obj)
        if isinstance(parsed, Exception):
            return ""
        return format_html("<pre>{}</pre>", parsed.text)

    @admin.display(description="attachments")
    def attachments_shown(self, obj):
        parsed = self._parsed(obj)
        if isinstance(parsed, Exception) or not parsed.parts:
            return "none"
        return ", ".join(f"{part.filename or '(unnamed)'} ({part.content_type}, {len(part.payload)} bytes"
                         f"{', inline' if part.inline else ''})" for part in parsed.parts)

    @admin.action(description="Process again (failed or ignored mails)")
    def process_again(self, request, queryset):
        """Failed mail after a fix, ignored mail (a rate limit, a policy since changed): back to new and queued;
        every rule applies again. New and processed mails are left alone."""
        from email_channel.processing import RETRYABLE, inbound_retry

        count = 0
        for message_id in queryset.filter(state__in=RETRYABLE).values_list("id", flat=True):
            if inbound_retry(message_id=message_id, by=request.user).state == InboundMessage.State.NEW:
                count += 1
        self.message_user(request, f"{count} failed or ignored mail(s) queued to be processed again.")
