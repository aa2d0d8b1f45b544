"""/metrics for Prometheus: django-prometheus's request, latency and database metrics, plus our own figures
computed at scrape time from the database and the broker.

Our figures are read, not counted in memory, so they are the same whichever web process answers and survive
restarts: the kernel reports Celery queue depths (Redis LLEN per queue), the outbox backlog and how late its
oldest due message is, failed outbox messages and the worker heartbeat's age; practice apps add theirs through
`registry.metric(MetricSource(...))` (SLA sweep lag, events received and processed, tickets per practice).
Every source costs a fixed number of index scans, whatever the size of the tables: the scrape's query count
does not grow with history (tests/servicedesk/test_metrics.py asserts it).

django-prometheus's own counters live in each process's memory; under several gunicorn processes set
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode: each process writes its samples to files
there, and the scrape sums them) and use servicedesk.prometheus_gunicorn's hooks. See docs/observability.md.

Access: the client address (servicedesk.signin.client_address, so TRUSTED_PROXY_COUNT applies) must be in
METRICS_ALLOWED_NETWORKS (default: loopback only), else 404; and when METRICS_TOKEN is set the scrape must
send `Authorization: Bearer <token>`, else 403. No session is used; the page is not part of the API schema.
"""

import hmac
import ipaddress
import logging
import os
import time
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max, Min
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from servicedesk.registry import MetricFamily, MetricSource, registry

log = logging.getLogger(__name__)

# The text format every Prometheus 2.x reads (what generate_latest writes for our names).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# --- building figures --------------------------------------------------------------------------------------


def gauge(name: str, help: str, value: float, **labels: str) -> MetricFamily:
    return MetricFamily(name=name, help=help, samples=((labels, float(value)),))


def counter(name: str, help: str, value: float, **labels: str) -> MetricFamily:
    return MetricFamily(name=name, help=help, samples=((labels, float(value)),), kind="counter")


def age_seconds(moment, now) -> float:
    """Seconds since `moment` (0 for none or a moment still ahead)."""
    return max(0.0, (now - moment).total_seconds()) if moment is not None else 0.0


def ticket_metrics(kind: str, model, open_statuses) -> MetricSource:
    """The figures of one ticket type, for its app to register: `servicedesk_tickets_created_max_id{kind}`,
    the highest id, read backwards on the primary key (a gauge, not a counter: a lower id committing late or
    retention deleting the newest ticket steps it back; deriv() of it is about tickets opened per second); and `servicedesk_tickets_open{kind}`,
    counted on the type's partial index of open tickets (its cost follows the open tickets, not the history)."""
    statuses = sorted(open_statuses)

    def collect() -> list[MetricFamily]:
        last = model.objects.aggregate(last=Max("id"))["last"] or 0
        open_now = model.objects.filter(status__in=statuses).count()
        return [
            gauge("servicedesk_tickets_created_max_id", "Highest ticket id, per practice (grows as tickets are "
                  "opened; may step back: not a counter).", last, kind=kind),
            gauge("servicedesk_tickets_open", "Tickets not yet resolved, closed or cancelled, per practice.",
                  open_now, kind=kind),
        ]

    return MetricSource(key=f"tickets-{kind}", collect=collect)


# --- the kernel's own figures ------------------------------------------------------------------------------


def queue_names() -> list[str]:
    queues = getattr(settings, "SERVICEDESK_QUEUES", None) or [settings.CELERY_TASK_DEFAULT_QUEUE]
    return sorted(queues.keys() if isinstance(queues, dict) else queues)


# kombu's Redis transport keeps a queue's messages of priority 0 under the queue's name and those of the other
# priority steps (3, 6, 9 by default) under "<name>\x06\x16<step>".
_REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@lru_cache(maxsize=4)
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each Celery queue: one pipelined round trip to Redis (LLEN), or, with the local run's
    filesystem broker, the message files in its folder."""
    url = settings.CELERY_BROKER_URL
    names = queue_names()
    if url.startswith(("redis://", "rediss://")):
        pipe = _redis(url).pipeline(transaction=False)
        for name in names:
            for suffix in _REDIS_PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        counts = pipe.execute()
        step = len(_REDIS_PRIORITY_SUFFIXES)
        return {name: sum(counts[i * step:(i + 1) * step]) for i, name in enumerate(names)}
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", ""))
        files = [entry.name for entry in os.scandir(folder)] if folder.is_dir() else []
        return {name: sum(f.endswith(f".{name}.msg") for f in files) for name in names}
    return {}


def _broker_figures() -> list[MetricFamily]:
    try:
        lengths = queue_lengths()
    except Exception as exc:  # noqa: BLE001 - an unreachable broker is a figure, not a failed scrape
        log.warning("metrics: could not read the queue lengths (%s: %s)", exc.__class__.__name__, exc)
        return [gauge("servicedesk_broker_up", "1 when the broker answered the scrape's queue lengths.", 0)]
    return [
        gauge("servicedesk_broker_up", "1 when the broker answered the scrape's queue lengths.", 1),
        MetricFamily("servicedesk_celery_queue_length", "Messages waiting in a Celery queue (not yet taken by a "
                     "worker).", tuple(({"queue": name}, float(n)) for name, n in lengths.items())),
    ]


def _outbox_figures() -> list[MetricFamily]:
    from servicedesk.models import OutboxMessage

    now = timezone.now()
    # Both read the partial index outbox_pending_due_idx (pending rows only, by next_attempt_at); the oldest
    # next_attempt_at that has passed is how long the oldest due side effect has been waiting.
    pending = OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING).aggregate(
        n=Count("id"), first=Min("next_attempt_at"))
    failed = OutboxMessage.objects.filter(state=OutboxMessage.State.FAILED).count()  # (state, processed_at) index
    return [
        gauge("servicedesk_outbox_pending", "Outbox messages (side effects) not yet done, due or waiting for a "
              "retry.", pending["n"]),
        gauge("servicedesk_outbox_oldest_due_age_seconds", "Seconds the oldest due outbox message has been "
              "waiting (0: none due).", age_seconds(pending["first"], now)),
        gauge("servicedesk_outbox_failed", "Outbox messages that gave up, waiting for someone to retry them in "
              "admin.", failed),
    ]


def _heartbeat_figures() -> list[MetricFamily]:
    from servicedesk.health import WORKER
    from servicedesk.models import Heartbeat

    seen = Heartbeat.objects.filter(name=WORKER).values_list("seen_at", flat=True).first()
    if seen is None:
        return []  # never seen: absent, which the WorkerDown rule's absent() covers
    return [gauge("servicedesk_worker_heartbeat_age_seconds", "Seconds since a worker last ran beat's heartbeat "
                  "task.", age_seconds(seen, timezone.now()))]


KERNEL_SOURCES = (
    MetricSource("broker", _broker_figures, order=0),
    MetricSource("outbox", _outbox_figures, order=1),
    MetricSource("heartbeat", _heartbeat_figures, order=2),
)


# --- collecting and rendering ------------------------------------------------------------------------------


def collect_figures() -> list[MetricFamily]:
    """Every source's figures, then per source whether it answered (`servicedesk_metrics_source_up`) and the
    time the whole collection took. A source that fails (its table locked, the database away) is logged and
    reported as down; the others are still reported."""
    started = time.perf_counter()
    figures: list[MetricFamily] = []
    up: list[tuple[dict, float]] = []
    for source in [*KERNEL_SOURCES, *registry.metric_sources]:
        try:
            figures.extend(source.collect())
            up.append(({"source": source.key}, 1.0))
        except DatabaseError as exc:  # the database away: one line per source, no traceback
            log.warning("metrics: source %r could not be read (%s: %s)", source.key, exc.__class__.__name__,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            up.append(({"source": source.key}, 0.0))
        except Exception:
            log.exception("metrics: source %r failed", source.key)
            up.append(({"source": source.key}, 0.0))
    figures.append(MetricFamily("servicedesk_metrics_source_up", "1 when the source's figures were read at this "
                                "scrape.", tuple(up)))
    figures.append(gauge("servicedesk_metrics_collect_seconds", "Seconds this scrape spent reading our own "
                         "figures.", time.perf_counter() - started))
    return figures


def families(figures: list[MetricFamily]):
    """prometheus_client families, one per name: samples of one name from several sources are merged."""
    merged: dict[str, MetricFamily] = {}
    samples: dict[str, list] = {}
    for figure in figures:
        first = merged.setdefault(figure.name, figure)
        if first.kind != figure.kind:
            raise ValueError(f"metric {figure.name} is reported both as {first.kind} and as {figure.kind}")
        samples.setdefault(figure.name, []).extend(figure.samples)
    for name, figure in merged.items():
        label_names = sorted({key for labels, _ in samples[name] for key in labels})
        cls = CounterMetricFamily if figure.kind == "counter" else GaugeMetricFamily
        family = cls(name, figure.help, labels=label_names)
        for labels, value in samples[name]:
            family.add_metric([str(labels.get(key, "")) for key in label_names], value)
        yield family


class ServicedeskCollector:
    """A prometheus_client collector reading our figures at each scrape."""

    def collect(self):
        yield from families(collect_figures())


_own = CollectorRegistry(auto_describe=False)
_own.register(ServicedeskCollector())


def process_registry():
    """django-prometheus's metrics: summed over every process's files in multiprocess mode, else this one's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        return combined
    return REGISTRY


def render() -> bytes:
    return generate_latest(process_registry()) + generate_latest(_own)


# --- database queries (django-prometheus's django_db_* metrics) ---------------------------------------------


def _count_query(execute, sql, params, many, context):
    from django_prometheus.db import errors_total, execute_many_total, execute_total, query_duration_seconds

    db = context["connection"]
    n = len(params) if many and hasattr(params, "__len__") else 1
    execute_total.labels(db.alias, db.vendor).inc(n)
    if many:
        execute_many_total.labels(db.alias, db.vendor).inc(n)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        errors_total.labels(db.alias, db.vendor, type(exc).__name__).inc()
        raise
    finally:
        query_duration_seconds.labels(db.alias, db.vendor).observe(time.perf_counter() - started)


def _instrument(sender, connection, **kwargs):
    from django_prometheus.db import connections_total

    connections_total.labels(connection.alias, connection.vendor).inc()
    if _count_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query)


def instrument_connections() -> None:
    """Count every database's connections and queries in django-prometheus's django_db_* metrics, whatever the
    ENGINE (its own backends would have to replace it, and the database settings are not ours to rewrite)."""
    from django.db.backends.signals import connection_created

    connection_created.connect(_instrument, dispatch_uid="servicedesk.metrics.instrument")


# --- access ------------------------------------------------------------------------------------------------


def parse_networks(values: list[str], *, setting: str = "METRICS_ALLOWED_NETWORKS"):
    """CIDRs (or single addresses) as ip_network objects; a bad one is an error naming the setting."""
    from django.core.exceptions import ImproperlyConfigured

    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{setting}: {value!r} is not an address or a network such as "
                                       "10.0.0.0/8") from None
    return networks


def address_allowed(address: str | None, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


def token_matches(request, token: str) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


@require_GET
def metrics_view(request):
    from servicedesk.signin import client_address

    if not address_allowed(client_address(request), parse_networks(settings.METRICS_ALLOWED_NETWORKS)):
        raise Http404("No such page.")
    if settings.METRICS_TOKEN and not token_matches(request, settings.METRICS_TOKEN):
        response = HttpResponse("A valid metrics token is needed: send Authorization: Bearer <METRICS_TOKEN>.\n",
                                status=403, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE)


class MetricsMiddleware:
    """Answers /metrics before Django's host check and the HTTPS redirect. Prometheus scrapes each web container
    by its address (docker-compose's dns_sd_configs on the service name), so the Host it sends is an IP:port that
    ALLOWED_HOSTS cannot list, and an http scrape must not be redirected to https. The page builds no URL from
    the Host; the network and token checks of metrics_view still apply."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == "/metrics":
            return metrics_view(request)
        return self.get_response(request)
