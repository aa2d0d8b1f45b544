"""Health of the parts: database, broker, worker heartbeat."""

from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import Connection

from servicedesk.models import Heartbeat

WORKER = "worker"


def heartbeat_record(*, worker: str = "", now=None) -> None:
    now = now or timezone.now()
    Heartbeat.objects.update_or_create(name=WORKER, defaults={"seen_at": now, "detail": worker[:200]})


def check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down", with its text
        return False, f"down: {exc.__class__.__name__}: {exc}".strip()


def check_broker() -> tuple[bool, str]:
    url = settings.CELERY_BROKER_URL
    try:
        with Connection(url, connect_timeout=2, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return True, "ok"
    except Exception as exc:  # noqa: BLE001
        return False, f"down: {exc.__class__.__name__}: {exc}".strip()


def check_worker(now=None) -> tuple[bool, str, float | None]:
    now = now or timezone.now()
    try:
        beat = Heartbeat.objects.filter(name=WORKER).first()
    except Exception as exc:  # noqa: BLE001
        return False, f"unknown: {exc.__class__.__name__}", None
    if beat is None:
        return False, "down: no heartbeat yet (is `celery -A servicedesk worker` running with beat?)", None
    age = (now - beat.seen_at).total_seconds()
    if age > settings.WORKER_HEARTBEAT_MAX_AGE:
        return False, f"down: last heartbeat {int(age)}s ago", age
    return True, "ok", age


def health_report(now=None) -> tuple[bool, dict]:
    db_ok, db = check_database()
    broker_ok, broker = check_broker()
    if db_ok:
        worker_ok, worker, age = check_worker(now)
    else:
        worker_ok, worker, age = False, "unknown: database is down", None
    down = [name for name, ok in (("database", db_ok), ("broker", broker_ok), ("worker", worker_ok)) if not ok]
    report = {
        "status": "ok" if not down else "down",
        "database": db,
        "broker": broker,
        "worker": worker,
        "worker_heartbeat_age_seconds": None if age is None else round(age, 1),
        "down": down,
        "time": (now or timezone.now()).isoformat(),
    }
    return not down, report
