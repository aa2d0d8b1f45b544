"""The counts of the workspace sidebar, kept for a few seconds.

Every agent page draws the sidebar, and each practice's part of it counts its queues (one aggregate query over
the open work each). Under a desk's traffic those queries were a fifth to a quarter of an agent page's cost, and
their cost follows the open workload. So a practice asks `sidebar_counts(request, key, compute)`:

- `compute()` runs at most once per HTTP request (the sidebar and the dashboard's tiles share it), and across
  requests at most every `SIDEBAR_COUNTS_SECONDS` (settings; 0 computes them on every request);
- counts that are the same for every agent ("All open", "Unassigned", the event console's) are asked with
  `shared=True`: counted once for the whole desk every `SIDEBAR_COUNTS_SECONDS`, whoever asks first;
- a person's own counts ("Mine", "My teams", approvals waiting for them) are kept per person, and their own
  changes show at once: any POST, PUT, PATCH or DELETE they make drops them (`SidebarCountsMiddleware`), so
  after assigning a ticket to themselves their "Mine" counts it on the next page. Everything else shows within
  `SIDEBAR_COUNTS_SECONDS`.

A person's counts are one cache entry (`sidebar-counts:<user id>`: a dict of each practice's counts and when
they were counted), the desk's one entry per practice (`sidebar-counts:shared:<key>`); a page reads them all in
one round trip and writes what it counted.
"""

import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import cache

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_SHARED_USED: set[str] = set()  # the shared entries this process has asked for: read with the person's


def _cache_key(user_id) -> str:
    return f"sidebar-counts:{user_id}"


def _shared_key(key: str) -> str:
    return f"sidebar-counts:shared:{key}"


def sidebar_counts(request, key: str, compute: Callable[[], dict], *, shared: bool = False) -> dict:
    """`compute()`'s counts for `key`, fresh to `SIDEBAR_COUNTS_SECONDS`: this person's (the default), or the
    desk's (`shared=True`: only for counts that are the same for everyone who sees the sidebar)."""
    memo = getattr(request, "_sidebar_counts", None)
    if memo is None:
        memo = request._sidebar_counts = {}
    memo_key = (shared, key)
    if memo_key in memo:
        return memo[memo_key]
    seconds = settings.SIDEBAR_COUNTS_SECONDS
    user_id = getattr(request.user, "pk", None)
    if not seconds or user_id is None:
        memo[memo_key] = compute()
        return memo[memo_key]
    stored = getattr(request, "_sidebar_stored", None)
    if stored is None:  # one round trip: this person's entry and every shared one this process has used
        stored = request._sidebar_stored = cache.get_many([_cache_key(user_id), *_SHARED_USED])
    if shared:  # its own entry: (counts, when)
        cache_key = _shared_key(key)
        if cache_key not in _SHARED_USED:
            _SHARED_USED.add(cache_key)
            stored[cache_key] = cache.get(cache_key)
        entry = stored.get(cache_key)
    else:  # the person's entry: {key: (counts, when)}
        cache_key = _cache_key(user_id)
        entries = stored[cache_key] = stored.get(cache_key) or {}
        entry = entries.get(key)
    now = time.time()
    if entry is not None and now - entry[1] < seconds:
        memo[memo_key] = entry[0]
        return entry[0]
    counts = memo[memo_key] = compute()
    if shared:
        cache.set(cache_key, (counts, now), timeout=seconds)
    else:
        entries[key] = (counts, now)
        cache.set(cache_key, entries, timeout=seconds)
    return counts


def queue_counts_split(request, key: str, count: Callable[[Iterable[str]], dict], *, desk: Iterable[str],
                       personal: Iterable[str]) -> dict:
    """A practice's queue counts as the sidebar keeps them: `count(keys)` (one aggregate over those queues)
    for the `desk` queues once for every agent, for the `personal` ones ("mine", "team") per person. Only for
    staff pages, where every agent sees the same tickets."""
    return {**sidebar_counts(request, key, lambda: count(desk), shared=True),
            **sidebar_counts(request, key, lambda: count(personal))}


def forget_sidebar_counts(user_id) -> None:
    """Drop this person's stored counts: the next page counts them afresh (the desk's shared ones stay)."""
    cache.delete(_cache_key(user_id))


class SidebarCountsMiddleware:
    """After a signed-in person's POST, PUT, PATCH or DELETE, their own sidebar counts are counted afresh."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in SAFE_METHODS and settings.SIDEBAR_COUNTS_SECONDS:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                forget_sidebar_counts(user.pk)
        return response
