import time

from django.core.management.base import BaseCommand
from django.db import connection

from servicedesk.demo import DEMO_PASSWORD, DEMO_USERS, seed_base
from servicedesk.registry import registry


class Command(BaseCommand):
    help = ("Load demo data: the kernel's (organisation, teams, one user per role, services, CIs), then each "
            "installed app's demo step in dependency order. Idempotent.")

    def add_arguments(self, parser):
        parser.add_argument("--tickets", type=int, default=0,
                            help="Top the ticket tables up to N tickets of each type (0 = none). On PostgreSQL "
                                 "the rows are made server-side (INSERT ... SELECT generate_series): a million "
                                 "in minutes; elsewhere bulk inserts.")
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the demo logins.")

    def handle(self, *args, **opts):
        started = time.perf_counter()
        seed_base()
        summaries = [f"{step.app}: {step.seed(opts)}" for step in registry.demo_steps()]
        seeded = time.perf_counter() - started
        if opts["tickets"] and connection.vendor == "postgresql":
            # Fresh statistics, so the planner sees the new size at once (autovacuum would take a while).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        took = time.perf_counter() - started
        detail = "; ".join(summaries) or "no app has demo data"
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({detail}; {took:.1f}s)."))
        if opts["tickets"]:
            self.stdout.write(f"Seeded in {seeded:.1f}s ({opts['tickets'] / seeded:,.0f} tickets/s of each type), "
                              f"ANALYZE {took - seeded:.1f}s.")
        if not opts["quiet_logins"]:
            self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD})")
            for username, role, first, last, _teams in DEMO_USERS[:4]:
                self.stdout.write(f"  {role:<10} {username:<10} {first} {last}")
