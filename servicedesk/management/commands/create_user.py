from django.core.management.base import BaseCommand, CommandError

from servicedesk.errors import DomainError
from servicedesk.roles import Role
from servicedesk.services import user_provision


class Command(BaseCommand):
    help = "Create or update a user with one role (and team/organisation membership). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="Set this password (left unchanged when omitted).")
        parser.add_argument("--email")
        parser.add_argument("--first-name")
        parser.add_argument("--last-name")
        parser.add_argument("--team", action="append", default=[], help="Team name; repeat for several.")
        parser.add_argument("--organisation")

    def handle(self, *args, **opts):
        try:
            user, created = user_provision(
                username=opts["username"],
                role=opts["role"],
                password=opts["password"],
                email=opts["email"],
                first_name=opts["first_name"],
                last_name=opts["last_name"],
                teams=opts["team"],
                organisation=opts["organisation"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {user.username} ({opts['role']})"))
