"""Logging filters: keep the log for what needs a person's attention.

Django logs every 4xx as a WARNING and every 5xx as an ERROR on `django.request`, a PermissionDenied with
its traceback. Two of those are expected answers, not faults:
- a 403 from PermissionDenied (a requester opening an agent page): logged, without the traceback;
- /healthz answering 503: that view logs what is down itself (servicedesk.views.healthz), so the generic
  "ERROR Service Unavailable" line is dropped.
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
