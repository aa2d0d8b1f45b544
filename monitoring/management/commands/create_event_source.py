"""`manage.py create_event_source NAME --kind generic|alertmanager|grafana [--rotate]` (shared/API.md, Operations).

Creates the source if missing and prints its new token alone on the last line of stdout, so a script can take
it with `| tail -n 1`. The token is not stored (only its SHA-256), so a source that exists already has no token
to print: without --rotate the command says so on stderr and exits 1, changing nothing; with --rotate it issues
a new token (the old one stops working at once) and prints it. --rotate on a missing source creates it, so
`--rotate` always ends with a working token. --kind is needed to create a source; given with --rotate it must
match the existing source's kind (nothing is changed otherwise: the kind is edited in admin)."""

from django.core.management.base import BaseCommand, CommandError

from monitoring.models import EventSource
from monitoring.sources import event_source_create, event_source_rotate
from servicedesk.errors import DomainError

KINDS = ", ".join(EventSource.Kind.values)


class Command(BaseCommand):
    help = ("Create an event source (or, with --rotate, issue a new token for an existing one) and print its "
            "token alone on the last line.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="The source's name, as shown in admin.")
        parser.add_argument("--kind", help=f"One of {KINDS}; needed to create the source.")
        parser.add_argument("--rotate", action="store_true",
                            help="The source exists: issue a new token for it (the current one stops working).")

    def handle(self, *args, name, kind, rotate, **options):
        name = name.strip()
        if kind is not None and kind not in EventSource.Kind.values:
            raise CommandError(f"--kind: unknown kind {kind!r}; give one of {KINDS}.")
        existing = EventSource.objects.filter(name=name).first()
        try:
            if existing is None:
                if kind is None:
                    raise CommandError(f"--kind: {name!r} does not exist yet; give its kind ({KINDS}) to create it.")
                source, token = event_source_create(name=name, kind=kind)
                self.stdout.write(f"Created event source {source.name} ({source.kind}). Its token, shown once:")
            else:
                if not rotate:
                    raise CommandError(
                        f"Event source {existing.name!r} exists already; its token was shown when it was issued and "
                        "is not stored. Run again with --rotate to issue a new token (the current one stops "
                        "working at once).")
                if kind is not None and kind != existing.kind:
                    raise CommandError(f"--kind: {existing.name!r} is of kind {existing.kind}, not {kind}; change "
                                       "its kind in admin, or leave --kind out.")
                source, token = event_source_rotate(source_id=existing.id)
                self.stdout.write(f"Rotated the token of event source {source.name} ({source.kind}); the previous "
                                  "token no longer works. The new token, shown once:")
                if not source.enabled:
                    self.stderr.write(f"Note: {source.name!r} is disabled; its token is refused until it is "
                                      "enabled in admin.")
        except DomainError as exc:  # e.g. an empty name; its message names the field
            raise CommandError(exc.message) from exc
        self.stdout.write(token)
