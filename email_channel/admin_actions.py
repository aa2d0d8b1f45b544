"""The Mailbox admin's "Poll now" and "Test connection" actions (email_channel.admin lists them in
MailboxAdmin.actions). Both talk to the IMAP server within the request, bounded by EMAIL_IMAP_TIMEOUT per
mailbox, and say what happened in the admin's messages."""

from django.contrib import admin, messages

from email_channel.imap import ImapProblem, mailbox_poll, mailbox_test


@admin.action(description="Poll now")
def poll_now(modeladmin, request, queryset):
    """Read new mail of the chosen mailboxes at once (the worker then processes it, as after a scheduled poll)."""
    for mailbox in queryset:
        result = mailbox_poll(mailbox_id=mailbox.id)
        if result.busy:
            modeladmin.message_user(request, f"{mailbox}: a poll is already running; try again in a moment.",
                                    messages.WARNING)
        elif result.error:
            modeladmin.message_user(request, f"{mailbox}: {result.error} (stored {result.stored} before that)"
                                    if result.stored else f"{mailbox}: {result.error}", messages.ERROR)
        else:
            new = f"{result.stored} new message{'' if result.stored == 1 else 's'} stored for processing"
            seen = f", {result.skipped} already stored" if result.skipped else ""
            modeladmin.message_user(request, f"{mailbox}: {new}{seen}.", messages.SUCCESS)


@admin.action(description="Test connection")
def test_connection(modeladmin, request, queryset):
    """Connect, log in and open the folder of each chosen mailbox, reading nothing."""
    for mailbox in queryset:
        try:
            modeladmin.message_user(request, f"{mailbox}: {mailbox_test(mailbox=mailbox)}", messages.SUCCESS)
        except ImapProblem as exc:
            modeladmin.message_user(request, f"{mailbox}: {exc}", messages.ERROR)


MAILBOX_ACTIONS = [poll_now, test_connection]
