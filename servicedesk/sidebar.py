"""The counts of the workspace sidebar, kept for a few seconds per person.

Every agent page draws the sidebar, and each practice's part of it counts its queues (one aggregate query over
the open work each). Under a desk's traffic those queries are a fifth to a quarter of an agent page's cost, and
their cost follows the open workload. So a practice asks `sidebar_counts(request, key, compute)`:

- `compute()` runs at most once per HTTP request (the sidebar and the dashboard's tiles share it), and across
  requests at most every `SIDEBAR_COUNTS_SECONDS` per person (settings; 0 computes them on every request);
- the person's own changes show at once: any POST, PUT, PATCH or DELETE they make drops their stored counts
  (`SidebarCountsMiddleware`), so after assigning or resolving a ticket the next page counts afresh. Other
  people's changes show within `SIDEBAR_COUNTS_SECONDS`.

A person's counts are one cache entry (`sidebar-counts:<user id>`): a dict of each practice's counts and when
they were counted. One cache read per page, one write when something was counted.
"""

import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _cache_key(user_id) -> str:
    return f"sidebar-counts:{user_id}"


def sidebar_counts(request, key: str, compute: Callable[[], dict]) -> dict:
    """`compute()`'s counts for this person and this practice (`key`), fresh to `SIDEBAR_COUNTS_SECONDS`."""
    memo = getattr(request, "_sidebar_counts", None)
    if memo is None:
        memo = request._sidebar_counts = {}
    if key in memo:
        return memo[key]
    seconds = settings.SIDEBAR_COUNTS_SECONDS
    user_id = getattr(request.user, "pk", None)
    if not seconds or user_id is None:
        memo[key] = compute()
        return memo[key]
    stored = getattr(request, "_sidebar_stored", None)
    if stored is None:
        stored = request._sidebar_stored = cache.get(_cache_key(user_id)) or {}
    now = time.time()
    entry = stored.get(key)
    if entry is not None and now - entry[1] < seconds:
        memo[key] = entry[0]
        return entry[0]
    counts = memo[key] = compute()
    stored[key] = (counts, now)
    cache.set(_cache_key(user_id), stored, timeout=seconds)
    return counts


def forget_sidebar_counts(user_id) -> None:
    """Drop this person's stored counts: the next page counts afresh."""
    cache.delete(_cache_key(user_id))


class SidebarCountsMiddleware:
    """After a signed-in person's POST, PUT, PATCH or DELETE, their sidebar counts are counted afresh."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in SAFE_METHODS and settings.SIDEBAR_COUNTS_SECONDS:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                forget_sidebar_counts(user.pk)
        return response
