"""The transactional outbox: every side effect is a row written in the same transaction as the change.

    outbox_enqueue("email.send", {"template": ..., "to": [...], "context": {...}})

writes an `OutboxMessage` in the caller's transaction and, once it commits, hands the row's id to Celery
(`servicedesk.tasks.outbox_process`). A rolled-back write therefore leaves nothing to send, and a committed
one never loses its side effect: when the broker is unreachable the hand-off is logged (one WARNING line)
and skipped, the caller's write still succeeds, and the relay (`outbox_relay`, run by beat) re-drives every
row still pending past a short age.

Processing claims the row with SELECT ... FOR UPDATE SKIP LOCKED, runs its handler inside a savepoint and
records the outcome in the same transaction, so two workers or relays never run one message at the same
time, and a message marked done is never run again. Delivery is at least once: a process killed after the
handler's outside effect but before the commit leaves the row pending, and it runs again. Handlers whose
effects stay in the database are exactly once (their writes commit with the "done" mark).

Handlers are registered by key, so practice apps plug in their own side effects without the kernel
importing them (register them in the app's `tasks.py`, which every worker imports):

    @outbox_handler("sla.escalate", retry_on=(SomeTransientError,), max_attempts=5, queue="sla")
    def escalate(message): ...

`queue` names the Celery queue (one of settings.SERVICEDESK_QUEUES; default: the default queue) its messages
are handed to and relayed on, so a worker group consuming only that queue runs them (docs/scaling.md).

A handler returns None (done), `Retry("why")` (keep its writes, try again after a backoff), or
`Fail("why")` (keep its writes, give up now). Raising one of its `retry_on` exceptions rolls its writes
back and retries; any other exception rolls back and fails the message at once. After `max_attempts`
the message fails and the handler's `on_give_up(message, error)` runs. Failed messages are listed in
admin (Outbox messages), where an action queues them again.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from servicedesk.models import OutboxMessage
from servicedesk.requestid import current_request_id, request_id_bound

log = logging.getLogger(__name__)

State = OutboxMessage.State


@dataclass(frozen=True)
class Retry:
    """Returned by a handler: this attempt failed but a later one may succeed; keep what it wrote."""

    error: str


@dataclass(frozen=True)
class Fail:
    """Returned by a handler: the message can never succeed (e.g. the receiver refused it); keep its writes."""

    error: str


@dataclass(frozen=True)
class Handler:
    key: str
    func: Callable
    retry_on: tuple[type[BaseException], ...]
    max_attempts: int
    on_give_up: Callable | None
    queue: str = ""

    def backoff(self, attempts: int) -> timedelta:
        """Seconds before the next attempt after `attempts` failed ones: 5, 10, 20, ... up to 10 minutes."""
        return timedelta(seconds=min(600, 5 * 2 ** max(0, attempts - 1)))


_handlers: dict[str, Handler] = {}
_loading = threading.Lock()


def outbox_handler(key: str, *, retry_on: tuple[type[BaseException], ...] = (), max_attempts: int = 9,
                   on_give_up: Callable | None = None, queue: str = ""):
    """Register `func(message)` as the handler of outbox messages with this key, run on Celery queue `queue`."""
    if queue and queue not in settings.SERVICEDESK_QUEUES:
        raise ValueError(f"outbox handler {key!r}: queue {queue!r} is not one of settings.SERVICEDESK_QUEUES "
                         f"({', '.join(settings.SERVICEDESK_QUEUES)})")

    def register(func):
        existing = _handlers.get(key)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"outbox handler {key!r} is already registered by {existing.func.__qualname__}")
        _handlers[key] = Handler(key=key, func=func, retry_on=tuple(retry_on), max_attempts=max_attempts,
                                 on_give_up=on_give_up, queue=queue)
        return func

    return register


def handler_for(key: str) -> Handler | None:
    if key not in _handlers:
        _import_task_modules()
    return _handlers.get(key)


def queue_for(key: str, payload: dict | None = None) -> str:
    """The Celery queue messages of handler `key` go to: the one the handler declares; for "task.run", the
    queue settings.CELERY_TASK_ROUTES gives its task; else the default queue."""
    from servicedesk.celery import app

    default = app.conf.task_default_queue
    if key == "task.run" and payload:
        queue = app.amqp.router.route({}, payload.get("task", "")).get("queue")
        return getattr(queue, "name", queue) or default
    handler = handler_for(key)
    return (handler.queue if handler is not None else "") or default


def handler_keys(queue: str) -> tuple[set[str], bool]:
    """The handler keys relayed on `queue`, and whether that queue also takes every other key (the default
    queue does: "task.run", unknown keys)."""
    from servicedesk.celery import app

    _import_task_modules()
    default = app.conf.task_default_queue
    if queue == default:
        return {key for key, handler in _handlers.items() if (handler.queue or default) != default}, True
    return {key for key, handler in _handlers.items() if handler.queue == queue}, False


def relayed_on(queue: str):
    """Q of the messages `queue`'s relay runs: the same queue `queue_for` hands them to. Handler keys by the
    queue each handler declares; "task.run" messages by the queue CELERY_TASK_ROUTES gives their task (the
    default queue's relay takes those whose task is routed nowhere else, and every unknown key)."""
    from django.db.models import Q

    from servicedesk.celery import app

    keys, everything_else = handler_keys(queue)
    default = app.conf.task_default_queue
    routed = {name: queue_for("task.run", {"task": name}) for name in app.tasks if not name.startswith("celery.")}
    if everything_else:
        elsewhere = sorted(name for name, q in routed.items() if q != default)
        return ~Q(handler__in=keys) & ~Q(handler="task.run", payload__task__in=elsewhere)
    here = sorted(name for name, q in routed.items() if q == queue)
    return Q(handler__in=keys) | Q(handler="task.run", payload__task__in=here)


def _import_task_modules() -> None:
    """Handlers live in each app's tasks.py; a process that has not imported them yet (a shell, the test
    runner) loads them the way the worker does. One thread at a time: while one thread runs Celery's
    autodiscovery, a second thread's call returns at once with nothing imported (celery.loaders.base
    `_RACE_PROTECTION`), and that thread would fail its message for want of a handler."""
    from servicedesk.celery import app

    with _loading:
        app.loader.import_default_modules()


# --- writing ---------------------------------------------------------------------------------------------


def _plain(payload: dict) -> dict:
    """Only JSON values reach the row (dates and decimals become strings), as the handler will read them."""
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def outbox_enqueue(handler: str, payload: dict, *, delay: timedelta | None = None,
                   not_before: datetime | None = None) -> OutboxMessage:
    """Write one message in the current transaction; hand it to Celery once it commits.

    With `delay`, or `not_before` in the future, the message waits for the relay once it is due (no hand-off
    on commit).
    """
    return outbox_enqueue_many(handler, [payload], delay=delay, not_before=not_before)[0]


def outbox_enqueue_many(handler: str, payloads: list[dict], *, delay: timedelta | None = None,
                        not_before: datetime | None = None) -> list[OutboxMessage]:
    now = timezone.now()
    due = max(now + (delay or timedelta(0)), not_before or now)
    request_id = current_request_id()  # the worker logs the message's lines under the request that caused it
    messages = OutboxMessage.objects.bulk_create(
        OutboxMessage(handler=handler, payload=_plain(payload), created_at=now, next_attempt_at=due,
                      request_id=request_id)
        for payload in payloads
    )
    if due <= now:
        queues = [queue_for(handler, payload) for payload in payloads]
        if len(messages) == 1:
            transaction.on_commit(partial(hand_off, messages[0].id, queue=queues[0]))
        else:
            for queue in dict.fromkeys(queues):  # in the order written
                ids = [message.id for message, q in zip(messages, queues, strict=True) if q == queue]
                for start in range(0, len(ids), HAND_OFF_CHUNK):
                    transaction.on_commit(partial(hand_off_chunk, ids[start:start + HAND_OFF_CHUNK], queue=queue))
    return messages


# --- handing off to Celery -------------------------------------------------------------------------------

# After a failed publish, further hand-offs to that broker are skipped for a few seconds (the relay picks
# their rows up), so a request that wrote several messages during an outage pays for one failed connect.
BROKER_DOWN_PAUSE_SECONDS = 10.0
_broker_down_until: dict[str, float] = {}


# Many messages written at once (a sweep's escalations, a webhook fan-out) go to the broker as one task per
# chunk rather than one per message: publishing costs about a millisecond each, the work is the same.
HAND_OFF_CHUNK = 50


def hand_off(message_id: int, *, countdown: float | None = None, queue: str | None = None) -> bool:
    """Publish `outbox_process(message_id)` on `queue` (default: the default queue). Never raises: a broker
    failure is logged and left to the relay."""
    from servicedesk.tasks import outbox_process

    return _publish(outbox_process, [message_id], countdown, f"message {message_id}", queue)


def hand_off_chunk(message_ids: list[int], *, queue: str | None = None) -> bool:
    """Publish `outbox_process_many(message_ids)` on `queue`: one task runs them one after the other."""
    from servicedesk.tasks import outbox_process_many

    return _publish(outbox_process_many, [message_ids], None,
                    f"messages {message_ids[0]}..{message_ids[-1]} ({len(message_ids)})", queue)


def _publish(task, args: list, countdown: float | None, what: str, queue: str | None = None) -> bool:
    from servicedesk.celery import app

    broker = app.conf.broker_url or ""
    if _broker_down_until.get(broker, 0.0) > time.monotonic():
        log.debug("outbox: broker marked down, %s left to the relay", what)
        return False
    try:
        # One connection attempt, bounded by broker_connection_timeout: fail fast rather than hold a request.
        task.apply_async(args=args, countdown=countdown, retry=True, retry_policy={"max_retries": 0},
                         **({"queue": queue} if queue else {}))
    except Exception as exc:  # noqa: BLE001 - whatever the broker raised, the committed write stands
        _broker_down_until[broker] = time.monotonic() + BROKER_DOWN_PAUSE_SECONDS
        log.warning("outbox: could not hand %s to the broker (%s: %s); the relay will re-drive it",
                    what, exc.__class__.__name__, exc)
        return False
    _broker_down_until.pop(broker, None)
    return True


# --- processing ------------------------------------------------------------------------------------------


def _due(now):
    return OutboxMessage.objects.filter(state=State.PENDING, next_attempt_at__lte=now)


def outbox_process(message_id: int, *, now=None, reschedule: bool = False) -> str | None:
    """Claim and run one message if it is pending and due; return its new state.

    None means it was not ours to run: already done or failed, claimed by another worker right now
    (SKIP LOCKED), or not due yet (a stale duplicate of a rescheduled message). With `reschedule`, a
    message left pending for a retry is handed to Celery again with the backoff as countdown.
    """
    now = now or timezone.now()
    with transaction.atomic():
        message = _due(now).select_for_update(skip_locked=True).filter(id=message_id).first()
        if message is None:
            return None
        _run(message)
        if reschedule and message.state == State.PENDING:
            countdown = max(0.0, (message.next_attempt_at - timezone.now()).total_seconds())
            transaction.on_commit(partial(hand_off, message.id, countdown=countdown,
                                          queue=queue_for(message.handler, message.payload)))
        return message.state


def outbox_relay(*, batch: int | None = None, min_age: timedelta | None = None, time_budget: float = 20.0,
                 now=None, queue: str | None = None) -> int:
    """Run pending messages that are due and older than `min_age`, one claimed row at a time.

    The age leaves fresh messages to their on-commit hand-off; what is older was lost on the way (broker
    down, worker killed) or is waiting for a retry. Several relays at once never run one message twice.
    With `queue`, only the messages whose handler runs on that queue (beat runs one relay per queue, on that
    queue, so a backlog of events never holds up an SLA escalation's re-drive). Returns how many it ran.
    """
    batch = batch or settings.OUTBOX_RELAY_BATCH
    min_age = settings.OUTBOX_RELAY_MIN_AGE if min_age is None else min_age
    now = now or timezone.now()
    deadline = time.monotonic() + time_budget
    due = _due(now)
    if queue is not None:
        due = due.filter(relayed_on(queue))
    ran = 0
    while ran < batch and time.monotonic() < deadline:
        with transaction.atomic():
            message = (due.filter(created_at__lte=now - min_age).order_by("next_attempt_at", "id")
                       .select_for_update(skip_locked=True).first())
            if message is None:
                break
            _run(message)
        ran += 1
    if ran:
        log.info("outbox relay ran %s message(s)", ran)
    return ran


def _run(message: OutboxMessage) -> None:
    """Run the claimed (row-locked) message's handler and record the outcome on it, its log lines under the id
    of the request that caused it."""
    with request_id_bound(message.request_id):
        _run_handler(message)
        log.debug("outbox: message %s (%s) ran: %s", message.id, message.handler, message.state)


def _run_handler(message: OutboxMessage) -> None:
    message.attempts += 1
    handler = handler_for(message.handler)
    if handler is None:
        _finish(message, State.FAILED, f"no handler registered for {message.handler!r}")
        log.error("outbox: message %s has no handler %r", message.id, message.handler)
        return
    try:
        with transaction.atomic():  # a savepoint: the handler's writes commit with the outcome, or not at all
            outcome = handler.func(message)
    except handler.retry_on as exc:
        outcome = Retry(f"{exc.__class__.__name__}: {exc}")
    except Exception as exc:
        log.exception("outbox: message %s (%s) failed", message.id, message.handler)
        _finish(message, State.FAILED, f"{exc.__class__.__name__}: {exc}")
        return
    if isinstance(outcome, Fail):
        _finish(message, State.FAILED, outcome.error)
    elif isinstance(outcome, Retry):
        if message.attempts >= handler.max_attempts:
            error = f"gave up after {message.attempts} attempts: {outcome.error}"
            log.warning("outbox: message %s (%s) %s", message.id, message.handler, error)
            if handler.on_give_up is not None:
                try:
                    with transaction.atomic():  # its failure must not undo the "failed" mark (retry for ever)
                        handler.on_give_up(message, error)
                except Exception:
                    log.exception("outbox: on_give_up of message %s (%s) failed", message.id, message.handler)
            _finish(message, State.FAILED, error)
        else:
            message.last_error = outcome.error[:4000]
            message.next_attempt_at = timezone.now() + handler.backoff(message.attempts)
            message.save(update_fields=["attempts", "last_error", "next_attempt_at"])
    else:
        _finish(message, State.DONE, "")


def _finish(message: OutboxMessage, state: str, error: str) -> None:
    message.state = state
    message.last_error = error[:4000]
    message.processed_at = timezone.now()
    message.save(update_fields=["state", "attempts", "last_error", "processed_at"])


# --- upkeep ----------------------------------------------------------------------------------------------


def outbox_retry_failed(message_ids, *, actor=None) -> int:
    """Queue failed messages again (admin action): pending, attempts from zero, handed off on commit."""
    from servicedesk.services import audit_record

    with transaction.atomic():
        rows = list(OutboxMessage.objects.select_for_update().filter(id__in=list(message_ids), state=State.FAILED)
                    .values_list("id", "handler", "payload"))
        if not rows:
            return 0
        ids = [row[0] for row in rows]
        OutboxMessage.objects.filter(id__in=ids).update(state=State.PENDING, attempts=0, processed_at=None,
                                                       next_attempt_at=timezone.now())
        audit_record(actor=actor, action="outboxmessage.retried", changes={"ids": ids})
        for message_id, handler, payload in rows:
            transaction.on_commit(partial(hand_off, message_id, queue=queue_for(handler, payload)))
    return len(ids)


def outbox_purge(*, now=None) -> int:
    """Delete done messages older than OUTBOX_KEEP_DAYS (failed ones stay until someone looks), in batches. The
    hourly retention run does this (rule "outbox", servicedesk.retention); this runs that rule alone, now."""
    from servicedesk.retention import rule_purge

    return rule_purge("outbox", now=now)


# --- the generic handler behind servicedesk.tasking.enqueue_on_commit -----------------------------------


@outbox_handler("task.run", retry_on=(Exception,))
def _run_task(message: OutboxMessage) -> None:
    """Run a registered Celery task's body here, in the claim: `{"task": name, "kwargs": {...}}`."""
    from servicedesk.celery import app

    name = message.payload["task"]
    if name not in app.tasks:
        _import_task_modules()
    if name not in app.tasks:
        return Fail(f"no Celery task named {name!r}")
    app.tasks[name](**message.payload.get("kwargs", {}))
    return None
