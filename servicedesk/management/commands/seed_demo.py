import time

from django.core.management.base import BaseCommand

from servicedesk.demo import DEMO_PASSWORD, DEMO_USERS, seed_base, seed_tickets


class Command(BaseCommand):
    help = "Load demo data (organisation, teams, one user per role, services, CIs). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--tickets", type=int, default=0,
                            help="Top the incident table up to N incidents (bulk inserts; 0 = none).")
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the demo logins.")

    def handle(self, *args, **opts):
        started = time.perf_counter()
        seed_base()
        made = seed_tickets(opts["tickets"]) if opts["tickets"] else 0
        took = time.perf_counter() - started
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({made} incidents generated, {took:.1f}s)."))
        if not opts["quiet_logins"]:
            self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD})")
            for username, role, first, last, _teams in DEMO_USERS[:4]:
                self.stdout.write(f"  {role:<10} {username:<10} {first} {last}")
