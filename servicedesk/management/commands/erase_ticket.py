import sys

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError

from servicedesk.errors import DomainError
from servicedesk.models import Attachment, TimelineEntry
from servicedesk.services import ticket_erase, ticket_model_for


class Command(BaseCommand):
    help = (
        "Erase one ticket for data protection: the ticket, its timeline, its attachments and their files. "
        "Writes an audit row naming the operator and the reason. Tickets are otherwise never deleted."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("number", help="Ticket number, e.g. INC0001001 (any ticket type).")
        parser.add_argument("--by", required=True, metavar="USERNAME", help="The admin who runs the erasure.")
        parser.add_argument("--reason", required=True, help="Why (goes into the audit trail; no personal data).")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **opts):
        number = opts["number"].strip().upper()
        operator = get_user_model().objects.filter(username=opts["by"]).first()
        if operator is None:
            raise CommandError(f"--by: there is no user {opts['by']!r}")
        try:
            model = ticket_model_for(number)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        ticket = model.objects.filter(number=number).first()
        if ticket is None:
            raise CommandError(f"there is no {model._meta.verbose_name} {number}")
        if not opts["yes"]:
            ct = ContentType.objects.get_for_model(model)
            entries = TimelineEntry.objects.filter(content_type=ct, object_id=ticket.pk).count()
            files = Attachment.objects.filter(content_type=ct, object_id=ticket.pk).count()
            self.stdout.write(
                f"This erases {model._meta.verbose_name} {number} for good, with {entries} timeline entries "
                f"and {files} attachments (files included). It cannot be undone."
            )
            self.stdout.write(f"Type {number} to confirm: ", ending="")
            self.stdout.flush()
            answer = (opts.get("stdin") or sys.stdin).readline().strip().upper()
            if answer != number:
                raise CommandError("not confirmed: nothing was erased")
        try:
            log = ticket_erase(number=number, by=operator, reason=opts["reason"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        changes = log.changes
        self.stdout.write(self.style.SUCCESS(
            f"Erased {number}: {changes['timeline_entries']} timeline entries, {changes['attachments']} attachments, "
            f"{changes['files']} files (audit row {log.id})."
        ))
