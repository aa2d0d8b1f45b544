"""Reports and exports read from a read replica when there is one (DATABASE_REPLICA_URL), else from default.

Only reads that may be a few seconds behind go there, and only when the code asks for it:

    rows = on_replica(queryset)               # one queryset (what `exports.rows_of` does)
    with replica_reads():                     # every ORM read of a block: a report's many aggregates
        report = compliance_report(...)

Nothing is ever sent to the replica inside a transaction on default (what was just written there would be
missing), nor written there: the router sends every write, and every read outside `replica_reads()`, to
default. Objects read from the replica fetch their related rows from it too (Django follows the instance's
database). Without DATABASE_REPLICA_URL both are no-ops.
"""

import functools
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
_wanted: ContextVar[bool] = ContextVar("servicedesk_replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def read_alias() -> str:
    """Where a report's reads go right now: the replica when configured and no write transaction is open."""
    if replica_configured() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return REPLICA
    return DEFAULT_DB_ALIAS


def on_replica(queryset):
    return queryset.using(read_alias())


@contextmanager
def replica_reads():
    """ORM reads in this block (of this thread or task) go to the replica when `read_alias()` allows."""
    token = _wanted.set(True)
    try:
        yield
    finally:
        _wanted.reset(token)


@contextmanager
def primary_reads():
    """ORM reads in this block go to default even inside `replica_reads()`: what decides who may see what
    (memberships, roles) must not lag behind a change just made, e.g. a user removed from a team."""
    token = _wanted.set(False)
    try:
        yield
    finally:
        _wanted.reset(token)


def replica_iter(iterable):
    """`iterable`, each item read inside `replica_reads()`: a streamed export evaluated after its view returned
    still reads from the replica, and nothing else run between two items does."""
    iterator = iter(iterable)
    while True:
        with replica_reads():
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def replica_view(view):
    """A report or export view: its reads go to the replica (`replica_reads()`), and so do those of a streamed
    response's body."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        with replica_reads():
            response = view(*args, **kwargs)
        if getattr(response, "streaming", False) and not hasattr(response, "file_to_stream"):
            response.streaming_content = replica_iter(response.streaming_content)
        return response

    return wrapped


class ReplicaRouter:
    """settings.DATABASE_ROUTERS. None means "Django's default": default, or the instance's own database."""

    def db_for_read(self, model, **hints):
        if _wanted.get() and read_alias() == REPLICA:
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # The replica is a copy of default: an object read there may be linked to one of default.
        if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA, None}:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == REPLICA else None
