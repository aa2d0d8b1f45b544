"""Logging filters: keep the log for what needs a person's attention.

Django logs every 4xx as a WARNING and every 5xx as an ERROR on `django.request`, a PermissionDenied with
its traceback. Two of those are expected answers, not faults:
- a 403 from PermissionDenied (a requester opening an agent page): logged, without the traceback;
- /healthz answering 503: that view logs what is down itself (servicedesk.views.healthz), so the generic
  "ERROR Service Unavailable" line is dropped.

Also the log's shape (settings.LOG_FORMAT): readable lines, or one JSON object per line carrying the request id
bound by servicedesk.requestid (json_formatter, structlog_configure; docs/observability.md).
"""

import logging


class ExpectedResponses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        request = getattr(record, "request", None)
        match = getattr(request, "resolver_match", None)
        if status == 503 and match is not None and match.url_name == "healthz":
            return False
        if status == 403:
            record.exc_info = None
            record.exc_text = None
        return True


# --- structured logs (LOG_FORMAT, settings.LOGGING) ----------------------------------------------------------


def _shared_processors():
    import structlog

    return [
        structlog.contextvars.merge_contextvars,  # request_id (and task_id in a worker) on every line
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def json_formatter():
    """The "json" formatter of settings.LOGGING: every record, whether logged through structlog or the standard
    library (Django, Celery, our modules), as one JSON object with timestamp, level, logger, event and the
    context bound at the time (request_id...); a traceback as the "exception" string."""
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder(allow=["status_code"])],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )


def structlog_configure(log_format: str) -> None:
    """structlog's own loggers (django-structlog's request and task lines) hand their records to the standard
    library's handlers: with "json" rendered by json_formatter, with "plain" as `event key=value ...` text in the
    plain line format."""
    import structlog

    if log_format == "json":
        processors = [structlog.stdlib.filter_by_level, *_shared_processors(),
                      structlog.stdlib.PositionalArgumentsFormatter(), structlog.processors.StackInfoRenderer(),
                      structlog.stdlib.ProcessorFormatter.wrap_for_formatter]
    else:
        processors = [structlog.stdlib.filter_by_level, structlog.contextvars.merge_contextvars,
                      structlog.stdlib.PositionalArgumentsFormatter(), structlog.processors.StackInfoRenderer(),
                      structlog.processors.format_exc_info,
                      structlog.processors.KeyValueRenderer(key_order=["event", "request_id"], drop_missing=True)]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
