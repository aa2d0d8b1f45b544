"""`python manage.py insights_rollup [--rebuild] [--since YYYY-MM-DD]`: run the insights rollup now."""

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from insights.rollup import rollup_rebuild, rollup_run


class Command(BaseCommand):
    help = "Count the insights rollup now: the recent and changed days, or with --rebuild every day."

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="Recount every day from the first ticket's.")
        parser.add_argument("--since", help="With --rebuild: recount from this day (YYYY-MM-DD).")

    def handle(self, *args, rebuild=False, since=None, **options):
        started = time.monotonic()
        if since and not rebuild:
            raise CommandError("--since goes with --rebuild.")
        try:
            first = date.fromisoformat(since) if since else None
        except ValueError as error:
            raise CommandError(f"--since: {since!r} is not a date (YYYY-MM-DD)") from error
        days = rollup_rebuild(since=first) if rebuild else rollup_run()
        self.stdout.write(f"insights rollup: {days} day{'s' if days != 1 else ''} counted in "
                          f"{time.monotonic() - started:.1f} s")
