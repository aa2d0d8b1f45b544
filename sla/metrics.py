"""SLA figures on /metrics (servicedesk.metrics): how late the breach sweep is.

The sweep (sla.sweep) marks running clocks whose warning or due instant has passed. A clock past its instant
but not yet marked is work the sweep has not done: the age of the oldest one is the sweep's lag. It normally
stays under the sweep's period (SLA_SWEEP_SECONDS); a lag that keeps growing means the sweep is not running
(beat or the workers are down) or cannot keep up. Both figures read the sweep's own partial indexes
(sla_clock_breach_due_idx, sla_clock_warn_due_idx): their cost follows what is overdue, not the clocks stored.
"""

from django.db.models import Count, Min
from django.utils import timezone

from servicedesk.metrics import age_seconds, gauge
from servicedesk.registry import MetricFamily
from sla.models import ClockState, SlaClock


def sla_figures(now=None) -> list[MetricFamily]:
    now = now or timezone.now()
    running = SlaClock.objects.filter(state=ClockState.RUNNING)
    breach = running.filter(breached_at__isnull=True, due_at__isnull=False, due_at__lte=now).aggregate(
        n=Count("id"), first=Min("due_at"))
    warn = running.filter(warned_at__isnull=True, warn_at__isnull=False, warn_at__lte=now).aggregate(
        n=Count("id"), first=Min("warn_at"))
    firsts = [moment for moment in (breach["first"], warn["first"]) if moment is not None]
    return [
        gauge("servicedesk_sla_sweep_lag_seconds", "Seconds since the oldest SLA deadline or warning instant that "
              "the sweep has not marked yet (0: it is up to date).", age_seconds(min(firsts, default=None), now)),
        gauge("servicedesk_sla_sweep_backlog", "Running SLA clocks past their due or warning instant, not yet "
              "marked by the sweep.", breach["n"] + warn["n"]),
    ]
