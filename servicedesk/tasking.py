"""The one way services queue background work: after the transaction commits, never inside it."""

from functools import partial

from django.db import transaction


def enqueue_on_commit(task, **kwargs) -> None:
    """Queue `task.delay(**kwargs)` once the current transaction commits (at once outside one).

    A rolled-back write therefore never sends mail, calls a webhook or starts fulfilment.
    """
    transaction.on_commit(partial(task.delay, **kwargs))
