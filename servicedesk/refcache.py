"""Short reference data that admins edit and every page or task reads (resolution codes, monitoring's rules...),
kept in the cache for every process and dropped whenever a row of their models is saved or deleted through the
ORM (admin, services, fixtures). A bulk `QuerySet.update()` sends no signal: such a change shows within
`seconds`. An entry is dropped when the change is made and again when its transaction commits: a request that
read the old row in between (it was not committed yet) and kept it cannot keep it for long.

    active_codes = reference_data("incidents:resolution-codes", lambda: list(ResolutionCode.objects.filter(
        active=True)), models=[ResolutionCode])
    active_codes()  # one query the first time, then none until a code changes
"""

from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

KEY_PREFIX = "reference:"


def drop_now_and_at_commit(keys: list[str]) -> None:
    """Drop cache entries made stale by a write: now, and once more when the write's transaction commits (until
    then other requests still read the old rows, and may have kept them again)."""
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))


def reference_data(key: str, compute: Callable[[], Any], *, models: list, seconds: int = 600) -> Callable[[], Any]:
    """A function returning `compute()`'s value (a list, a dict... anything the cache can pickle, never None),
    kept under `key` until a row of `models` changes (at most `seconds`)."""
    cache_key = KEY_PREFIX + key

    def forget(**kwargs) -> None:
        drop_now_and_at_commit([cache_key])

    for model in models:
        post_save.connect(forget, sender=model, weak=False, dispatch_uid=f"{cache_key}:saved:{model._meta.label}")
        post_delete.connect(forget, sender=model, weak=False, dispatch_uid=f"{cache_key}:deleted:{model._meta.label}")

    def read():
        rows = cache.get(cache_key)
        if rows is None:
            rows = compute()
            cache.set(cache_key, rows, timeout=seconds)
        return rows

    read.forget = forget
    return read


# --- single rows of small admin-edited tables, by id ----------------------------------------------------------

ROW_PREFIX = "row:"
ROW_SECONDS = 3600
_KEPT: dict = {}  # model -> (related to join when reading, function giving the ids whose kept row embeds a row)


def _row_key(model, pk) -> str:
    return f"{ROW_PREFIX}{model._meta.label_lower}:{pk}"


def keep_rows(model, *, related: tuple = (), embedded_in: Callable[[Any], list] | None = None) -> None:
    """Let `rows_cached` keep `model`'s rows (teams, services, categories: rows a page shows by id), read with
    `related` joined. A save or delete through the ORM drops the row's entry, and the entries of the rows that
    embed it (`embedded_in(instance)`: the ids of e.g. the subcategories that show their parent's name)."""
    _KEPT[model] = (related, embedded_in)

    def forget(sender, instance, **kwargs) -> None:
        stale = [instance.pk, *(embedded_in(instance) if embedded_in else [])]
        drop_now_and_at_commit([_row_key(sender, pk) for pk in stale])

    label = model._meta.label
    post_save.connect(forget, sender=model, weak=False, dispatch_uid=f"{ROW_PREFIX}{label}:saved")
    post_delete.connect(forget, sender=model, weak=False, dispatch_uid=f"{ROW_PREFIX}{label}:deleted")


def rows_cached(wanted: dict) -> dict:
    """{model: {id: row}} for {model: ids}: every row from the cache in one round trip, the missing ones read
    (one query per model) and kept. A row that no longer exists is left out."""
    keys = {_row_key(model, pk): (model, pk) for model, ids in wanted.items() for pk in ids if pk is not None}
    found = cache.get_many(list(keys)) if keys else {}
    rows: dict = {model: {} for model in wanted}
    missing: dict = {}
    for key, (model, pk) in keys.items():
        if key in found:
            rows[model][pk] = found[key]
        else:
            missing.setdefault(model, set()).add(pk)
    fresh = {}
    for model, ids in missing.items():
        related, _ = _KEPT[model]
        for row in model.objects.select_related(*related).filter(pk__in=ids):
            rows[model][row.pk] = fresh[_row_key(model, row.pk)] = row
    if fresh:
        cache.set_many(fresh, ROW_SECONDS)
    return rows
