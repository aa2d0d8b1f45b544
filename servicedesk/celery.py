"""The Celery application. Workers: `celery -A servicedesk worker`; scheduler: `celery -A servicedesk beat`.

Conventions (see docs/architecture.md): tasks take ids and plain values, call one service, are safe to
run twice, and are queued only through the outbox (servicedesk.outbox; tasking.enqueue_on_commit), which
hands them over on commit and re-drives them when the broker was down.
"""

import gc
import os

from celery import Celery
from celery.signals import setup_logging, worker_process_init, worker_ready
from django_structlog.celery.steps import DjangoStructLogInitStep

from servicedesk.env import env_str

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")

app = Celery("servicedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# django-structlog in the worker: binds the publisher's context (the request_id) from the task's headers.
app.steps["worker"].add(DjangoStructLogInitStep)


@worker_process_init.connect
def _freeze_loaded(**kwargs):
    # As servicedesk/wsgi.py does: what a pool process inherited lives as long as it does, out of the garbage
    # collector's sight.
    gc.freeze()


@worker_ready.connect
def _stamp_heartbeat_on_start(sender=None, **kwargs):
    # A worker that just came up is alive even before beat's first heartbeat reaches it.
    from servicedesk.health import heartbeat_record

    heartbeat_record(worker=getattr(sender, "hostname", "worker"))


def _logging_from_settings(**kwargs):
    """The worker and beat log as the web processes do (settings.LOGGING): one JSON object per line, with the
    request_id of the request that caused the work (servicedesk.requestid)."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# Only for JSON logs (settings.LOG_FORMAT, checked there): with plain logs Celery keeps its own readable format,
# which it uses only while no receiver is connected to setup_logging.
if env_str("LOG_FORMAT", "plain").strip().lower() == "json":
    setup_logging.connect(_logging_from_settings, weak=False)
