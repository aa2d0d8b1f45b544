"""The one way services queue background work: an outbox row in the caller's transaction.

`enqueue_on_commit(task, **kwargs)` writes a "task.run" outbox message; once the transaction commits it
is handed to Celery, and if the broker is down then, the outbox relay runs it later (servicedesk.outbox).
A rolled-back write therefore never sends mail, calls a webhook or starts fulfilment, and a committed one
never loses its work. The task body runs inside the outbox claim, so its writes commit with the message's
"done" mark; kwargs must be JSON values (ids, strings, numbers).
"""

from servicedesk.outbox import outbox_enqueue


def enqueue_on_commit(task, **kwargs) -> None:
    """Run `task(**kwargs)` in the background once the current transaction commits (at once outside one)."""
    outbox_enqueue("task.run", {"task": task.name, "kwargs": kwargs})
