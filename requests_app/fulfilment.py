"""Automated fulfilment: a registry of handlers by key, and the engine that runs one for a request.

A catalog item names its handler (`CatalogItem.handler`) and the handler's settings (`handler_settings`,
checked by `settings_errors` when an admin saves the item). `requests_app.services.fulfilment_start` -- the
one way into in_fulfilment -- writes a `FulfilmentRun` and the outbox message "request.fulfil"; once the
transaction commits, a worker runs `fulfilment_process`:

- The handler works in named steps (`FulfilmentContext.step`). Each finished step is recorded on the run in
  the same transaction as what it did, so a retried task skips it and never acts twice. Steps whose effect
  stays in the database (a group membership, a queued mail, a timeline entry) are exactly once; an outside
  call (the software tool's POST) is at least once, carrying the same delivery id each time.
- `Transient` (network down, 5xx): the attempt's finished steps are kept and the outbox runs the message
  again after its exponential backoff (5 s, 10 s, 20 s, 40 s, 80 s; `MAX_ATTEMPTS` in all). When the last
  attempt fails, `on_give_up` calls `request_fail`.
- `Failed` (the handler can never succeed: an account with no password here, a group that is gone, the tool
  refusing the job): `request_fail` at once -- failed, back in the item's team queue with the error as an
  internal note, the team mailed.
- Otherwise the handler returns `Done(note)` (the request is fulfilled through `request_fulfil`, the
  requester mailed) or `Waiting` (an outside tool finishes the job and calls back on a signed URL; see
  `fulfilment_callback`; `fulfilment_sweep` fails runs whose callback never came).

Handlers register with `handler_register(SomeHandler())`; the built-ins live in requests_app.handlers.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from servicedesk.errors import NotVisible, TransitionNotAllowed
from servicedesk.models import OutboxMessage, TimelineEntry
from servicedesk.outbox import Retry, outbox_enqueue, outbox_handler
from servicedesk.services import timeline_add

log = logging.getLogger(__name__)

OUTBOX_KEY = "request.fulfil"
MAX_ATTEMPTS = 6
CALLBACK_SALT = "requests_app.fulfilment.callback"


class Transient(Exception):  # noqa: N818 - read as "raise Transient(...)"
    """This attempt failed but a later one may succeed (the tool is unreachable, answered 5xx)."""


class Failed(Exception):  # noqa: N818
    """The handler can never succeed for this request; a person must take over. The message says why, for
    the team (it goes on an internal note)."""


@dataclass(frozen=True)
class Done:
    """The handler delivered it; `note` tells the requester what was done."""

    note: str


@dataclass(frozen=True)
class Waiting:
    """An outside tool has the job and will call back by `deadline`."""

    deadline: datetime


class FulfilmentHandler:
    """Base of every handler: a key (what `CatalogItem.handler` holds), a label for admins, a check of its
    settings, and `run`, which does the work in steps and returns Done or Waiting (or raises Transient or
    Failed)."""

    key: str = ""
    label: str = ""
    description: str = ""

    def settings_errors(self, settings: dict) -> dict[str, str]:
        """Setting name -> what is wrong with it; empty when the settings are fine."""
        return {}

    def run(self, ctx: "FulfilmentContext") -> Done | Waiting:
        raise NotImplementedError


def unknown_settings(settings: dict, known: set[str]) -> dict[str, str]:
    return {name: f"unknown setting (known: {', '.join(sorted(known)) or 'none'})"
            for name in settings if name not in known}


_handlers: dict[str, FulfilmentHandler] = {}


def handler_register(handler: FulfilmentHandler) -> FulfilmentHandler:
    existing = _handlers.get(handler.key)
    if existing is not None and type(existing) is not type(handler):
        raise ValueError(f"fulfilment handler {handler.key!r} is already registered by {type(existing).__name__}")
    _handlers[handler.key] = handler
    return handler


def _load_builtins() -> None:
    import requests_app.handlers  # noqa: F401 - registers the built-in handlers


def handler_get(key: str) -> FulfilmentHandler | None:
    _load_builtins()
    return _handlers.get(key)


def handler_choices() -> list[tuple[str, str]]:
    _load_builtins()
    return sorted(((h.key, f"{h.label} ({h.key})") for h in _handlers.values()), key=lambda c: c[1])


def handler_settings_errors(key: str, settings) -> dict[str, str]:
    """What CatalogItem.clean reports: {"handler": ...} for an unknown key, else the handler's own errors,
    each prefixed with the setting it names."""
    handler = handler_get(key)
    if handler is None:
        known = ", ".join(k for k, _ in handler_choices())
        return {"handler": f"No automated handler named {key!r}. Known: {known}."}
    if not isinstance(settings, dict):
        return {"handler_settings": "A JSON object."}
    errors = handler.settings_errors(settings)
    if errors:
        return {"handler_settings": "; ".join(f"{name}: {message}" for name, message in errors.items())}
    return {}


# --- the context a handler works with ------------------------------------------------------------------


class FulfilmentContext:
    """The request (row-locked), its run and the item's settings, with the two things every handler does:
    record steps and write the timeline."""

    def __init__(self, request, run, *, now):
        self.request = request
        self.run = run
        self.item = request.item
        self.settings = request.item.handler_settings or {}
        self.now = now

    def step(self, name: str, func):
        """Run `func()` unless step `name` is already recorded done in this round; record its (JSON) result.
        Each step is its own savepoint: one that raises leaves nothing half-written, the earlier ones stay."""
        if name in self.run.steps:
            return self.run.steps[name]
        with transaction.atomic():
            result = func()
            self.run.steps = {**self.run.steps, name: result if result is not None else True}
            self.run.save(update_fields=["steps", "updated_at"])
        return self.run.steps[name]

    def say(self, body: str, *, internal: bool = False, **data) -> None:
        """A timeline entry from the system: public wording for the requester, or internal details."""
        timeline_add(ticket=self.request, kind=TimelineEntry.Kind.SYSTEM, body=body, internal=internal,
                     data={"event": "fulfilment", "handler": self.run.handler, **data})

    def wait(self, *, minutes: int, external_ref: str = "") -> Waiting:
        deadline = self.now + timedelta(minutes=minutes)
        self.run.state = self.run.State.WAITING
        self.run.deadline = deadline
        self.run.external_ref = (external_ref or "")[:200]
        self.run.save(update_fields=["state", "deadline", "external_ref", "updated_at"])
        return Waiting(deadline)

    @property
    def delivery_id(self) -> str:
        """The same for every attempt of one round: an outside tool drops a repeated one."""
        return f"{self.request.number}.{self.run.round}"

    def callback_url(self) -> str:
        token = signing.dumps({"run": self.run.id, "nonce": self.run.callback_nonce}, salt=CALLBACK_SALT)
        return settings.SITE_URL.rstrip("/") + reverse("fulfilment-callback", kwargs={"token": token})


def callback_token_read(token: str) -> dict:
    """The run and nonce a callback URL names; NotVisible when the token was not signed by us."""
    try:
        data = signing.loads(token, salt=CALLBACK_SALT)
    except signing.BadSignature as bad:
        raise NotVisible("no such callback") from bad
    if not isinstance(data, dict) or not isinstance(data.get("run"), int):
        raise NotVisible("no such callback")
    return data


# --- starting a run (called by fulfilment_start) --------------------------------------------------------


def run_begin(request) -> "FulfilmentRun":  # noqa: F821
    """Start (or, after a failure, restart as the next round) the automated run of `request` and queue its
    outbox message. Inside the caller's transaction with the request row locked."""
    from requests_app.models import FulfilmentRun

    run = FulfilmentRun.objects.select_for_update().filter(request=request).first()
    if run is None:
        run = FulfilmentRun(request=request, round=1)
    else:
        run.round += 1
    run.handler = request.item.handler
    run.state = FulfilmentRun.State.RUNNING
    run.attempts = 0
    run.steps = {}
    run.external_ref = ""
    run.callback_nonce = secrets.token_urlsafe(24)
    run.deadline = None
    run.last_error = ""
    run.save()
    outbox_enqueue(OUTBOX_KEY, {"request_id": request.id, "round": run.round})
    return run


# --- the task ------------------------------------------------------------------------------------------


def _locked(request_id: int):
    """The request and then its run, both row-locked: every fulfilment path locks in this order."""
    from requests_app.models import FulfilmentRun, ServiceRequest
    from servicedesk.tickets import ticket_lock

    request = ticket_lock(ServiceRequest, request_id, "requester", "item", "item__fulfilment_team")
    run = FulfilmentRun.objects.select_for_update().filter(request_id=request_id).first()
    return request, run


def fulfilment_process(*, request_id: int, round: int, now=None) -> Retry | None:  # noqa: A002
    """One attempt at running the request's handler (the body of the "request.fulfil" outbox message)."""
    from requests_app.models import FulfilmentRun
    from requests_app.services import request_fail, request_fulfil
    from requests_app.states import Status

    now = now or timezone.now()
    request, run = _locked(request_id)
    if run is None or run.round != round or run.state != FulfilmentRun.State.RUNNING \
            or request.status != Status.IN_FULFILMENT:
        return None  # a stale message: cancelled, already done, or a newer round has its own message
    run.attempts += 1
    run.save(update_fields=["attempts", "updated_at"])
    handler = handler_get(run.handler)
    if handler is None:
        request_fail(request_id=request.id, error=f"no automated handler named {run.handler!r} is installed")
        return None
    ctx = FulfilmentContext(request, run, now=now)
    try:
        problems = handler.settings_errors(ctx.settings)
        if problems:
            raise Failed("the item's handler settings are wrong: "
                         + "; ".join(f"{name}: {message}" for name, message in problems.items()))
        outcome = handler.run(ctx)
    except Failed as exc:
        request_fail(request_id=request.id, error=str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - Transient, or a fault we cannot tell apart: try again later
        if not isinstance(exc, Transient):
            log.exception("fulfilment of request %s (%s) raised", request.number, run.handler)
        error = f"{exc}" if isinstance(exc, Transient) else f"{exc.__class__.__name__}: {exc}"
        run.last_error = error[:4000]
        run.save(update_fields=["last_error", "updated_at"])
        last = run.attempts >= MAX_ATTEMPTS
        ctx.say(f"Attempt {run.attempts} of {MAX_ATTEMPTS} failed: {error}"
                + ("" if last else "; trying again shortly"), internal=True, attempt=run.attempts)
        return Retry(error)
    if isinstance(outcome, Waiting):
        return None
    run.state = FulfilmentRun.State.DONE
    run.callback_nonce = ""
    run.save(update_fields=["state", "callback_nonce", "updated_at"])
    request_fulfil(request_id=request.id, actor=None, note=outcome.note)
    return None


def _give_up(message: OutboxMessage, error: str) -> None:
    """The last attempt failed: a person takes over (unless the run moved on meanwhile)."""
    from requests_app.models import FulfilmentRun
    from requests_app.services import request_fail
    from requests_app.states import Status

    request, run = _locked(message.payload["request_id"])
    if run is None or run.round != message.payload["round"] or run.state != FulfilmentRun.State.RUNNING \
            or request.status != Status.IN_FULFILMENT:
        return
    request_fail(request_id=request.id, error=error)


@outbox_handler(OUTBOX_KEY, max_attempts=MAX_ATTEMPTS, on_give_up=_give_up, queue="fulfilment")
def _fulfil(message: OutboxMessage) -> Retry | None:
    return fulfilment_process(request_id=message.payload["request_id"], round=message.payload["round"])


# --- the callback and the timeout sweep -----------------------------------------------------------------


@transaction.atomic
def fulfilment_callback(*, run_id: int, nonce: str, status: str, message: str = "",
                        reference: str = "") -> "ServiceRequest":  # noqa: F821
    """The outside tool says the job is done or failed. Only once, and only while the run waits for it:
    anything else (a replay, a callback of an earlier round, one after the timeout) is TransitionNotAllowed."""
    from requests_app.models import FulfilmentRun
    from requests_app.services import request_fail, request_fulfil

    request_id = FulfilmentRun.objects.filter(id=run_id).values_list("request_id", flat=True).first()
    if request_id is None:
        raise NotVisible("no such callback")
    request, run = _locked(request_id)
    if run.state != FulfilmentRun.State.WAITING or not secrets.compare_digest(run.callback_nonce, nonce or "-"):
        raise TransitionNotAllowed(f"{request.number}: this callback was already used or is no longer awaited",
                                   field="status")
    message = (message or "").strip()[:2000]
    run.callback_nonce = ""
    if reference:
        run.external_ref = reference[:200]
    ctx = FulfilmentContext(request, run, now=timezone.now())
    ctx.say(f"The tool called back: {status}" + (f" ({message})" if message else "")
            + (f", reference {run.external_ref}" if run.external_ref else ""), internal=True)
    if status == "done":
        run.state = FulfilmentRun.State.DONE
        run.deadline = None
        run.save(update_fields=["state", "callback_nonce", "deadline", "external_ref", "updated_at"])
        return request_fulfil(request_id=request.id, actor=None, note=message or "Done by the automated tool.")
    run.save(update_fields=["callback_nonce", "external_ref", "updated_at"])  # request_fail ends the run
    return request_fail(request_id=request.id, error=f"the tool reported a failure: {message or 'no reason given'}")


def fulfilment_sweep(*, now=None, batch: int = 200) -> int:
    """Fail runs still waiting for a callback past their deadline (beat). Reads only due rows (partial index
    on deadline where waiting); each is re-checked under its locks, so two sweeps never fail one twice."""
    from requests_app.models import FulfilmentRun
    from requests_app.services import request_fail
    from requests_app.states import Status

    now = now or timezone.now()
    due = list(FulfilmentRun.objects.filter(state=FulfilmentRun.State.WAITING, deadline__lte=now)
               .order_by("deadline").values_list("request_id", flat=True)[:batch])
    failed = 0
    for request_id in due:
        with transaction.atomic():
            request, run = _locked(request_id)
            if run is None or run.state != FulfilmentRun.State.WAITING or run.deadline > now \
                    or request.status != Status.IN_FULFILMENT:
                continue
            request_fail(request_id=request.id, error="no callback from the tool by the deadline "
                                                      f"({timezone.localtime(run.deadline):%Y-%m-%d %H:%M})")
            failed += 1
    if failed:
        log.info("fulfilment sweep failed %s run(s) whose callback never came", failed)
    return failed
