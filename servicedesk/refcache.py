"""Short reference data that admins edit and every page or task reads (resolution codes, monitoring's rules...),
kept in the cache for every process and dropped whenever a row of their models is saved or deleted through the
ORM (admin, services, fixtures). A bulk `QuerySet.update()` sends no signal: such a change shows within
`seconds`.

    active_codes = reference_data("incidents:resolution-codes", lambda: list(ResolutionCode.objects.filter(
        active=True)), models=[ResolutionCode])
    active_codes()  # one query the first time, then none until a code changes
"""

from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

KEY_PREFIX = "reference:"


def reference_data(key: str, compute: Callable[[], Any], *, models: list, seconds: int = 600) -> Callable[[], Any]:
    """A function returning `compute()`'s value (a list, a dict... anything the cache can pickle, never None),
    kept under `key` until a row of `models` changes (at most `seconds`)."""
    cache_key = KEY_PREFIX + key

    def forget(**kwargs) -> None:
        cache.delete(cache_key)

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
