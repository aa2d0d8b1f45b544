from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from servicedesk import retention


class Command(BaseCommand):
    help = (
        "Remove the history that is due under the RETENTION_* settings (closed tickets, events, deliveries, mails, "
        "audit rows, done outbox messages, old Idempotency-Keys, archive files), in batches, archived first, each "
        "kind with its share of the time budget. --dry-run only prints what would go. Beat runs this every "
        "RETENTION_INTERVAL_SECONDS. Exits with an error if a step failed (the others still ran)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what is due; remove nothing.")
        parser.add_argument("--budget", type=float, metavar="SECONDS",
                            help=f"Stop after this many seconds (default RETENTION_BUDGET_SECONDS, "
                                 f"{settings.RETENTION_BUDGET_SECONDS}).")
        parser.add_argument("--batch", type=int, metavar="ROWS",
                            help=f"Rows per transaction (default RETENTION_BATCH, {settings.RETENTION_BATCH}).")

    def handle(self, *args, dry_run=False, budget=None, batch=None, **opts):
        if budget is not None and budget < 0:
            raise CommandError("--budget: give 0 or more seconds")
        if batch is not None and batch < 1:
            raise CommandError("--batch: give 1 or more rows")
        if dry_run:
            due = retention.due_counts()
            if not due:
                self.stdout.write("Nothing has a retention limit: everything is kept (RETENTION_* settings are 0).")
            for step, count in due:
                self.stdout.write(f"{step.key}: {count} {step.label} before {step.cutoff:%Y-%m-%d %H:%M %Z} "
                                  f"would go")
            if settings.RETENTION_ARCHIVE_DAYS:
                files = retention.archives_due()
                self.stdout.write(f"archive_files: {len(files)} archive files older than "
                                  f"{settings.RETENTION_ARCHIVE_DAYS} days would go")
            self.stdout.write("Dry run: nothing was removed.")
            return
        run = retention.retention_run(budget=budget, batch=batch)
        if run is None:
            raise CommandError("another retention run is going: nothing was done")
        for key, counts in run.counts.items():
            parts = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "removed")
            self.stdout.write(f"{key}: {counts['removed']} removed" + (f" ({parts})" if parts else ""))
        if not run.counts and not run.error:
            self.stdout.write("Nothing was due.")
        summary = f"Retention run {run.id}: {run.get_state_display()}" + (
            f"; archive {run.archive}" if run.archive else "")
        if run.state == run.State.FAILED:
            # The other steps ran; the failed ones are named with their error (and logged with the traceback).
            raise CommandError(f"{summary}\n{run.error}")
        self.stdout.write(self.style.SUCCESS(summary))
