"""The agent workspace and the portal as the kernel draws them: the sidebar, the portal's tiles and
"My tickets", and global search, each built from what the practice apps registered (servicedesk.registry).

Practice apps render their agent pages with `agent_render` and guard them with `agent_required`, so every
workspace page has the same sidebar whatever app it belongs to.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from servicedesk.registry import (
    NavItem,
    PortalHit,
    PortalSearchProvider,
    SearchResults,
    TicketRow,
    WorkspaceSection,
    merged_rows,
    registry,
)
from servicedesk.roles import is_staff_role
from servicedesk.selectors import timeline_recent


def agent_required(view):
    """Signed in (else the login page) and an agent, manager or admin (else 403), before anything else:
    a requester gets 403 on every /agent/ URL, whatever the method."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_staff_role(request.user):
            raise PermissionDenied("The agent workspace is for agents.")
        return view(request, *args, **kwargs)

    return wrapped


@dataclass(frozen=True)
class NavSection:
    section: WorkspaceSection
    items: list[NavItem]


def workspace_nav(request, current: str) -> list[NavSection]:
    return [NavSection(section, section.nav(request, current)) for section in registry.sections]


def agent_render(request, template: str, context: dict, *, current_nav: str = "", status: int = 200):
    """Render a full workspace page with the sidebar every installed app contributes to."""
    context = {"current_nav": current_nav, **context}
    nav = workspace_nav(request, context["current_nav"])
    return render(request, template, {"nav_sections": nav, **context}, status=status)


def timeline_context(request, ticket, page_url: str, spell: Callable[[list], list]) -> dict:
    """What a ticket's agent page gives includes/timeline_entries.html: its latest timeline entries (all of them
    with `?timeline=all`; servicedesk.selectors.timeline_recent), spelled by the ticket's app (`spell` sets each
    change entry's `change_list`), how many earlier ones were left out, and the link that opens them."""
    entries, earlier = timeline_recent(ticket, request.user, everything=request.GET.get("timeline") == "all")
    return {"timeline": spell(entries), "timeline_earlier": earlier,
            "timeline_all_url": f"{page_url}?timeline=all#timeline"}


def portal_tiles(user) -> list:
    return [tile for tile in registry.tiles if tile.visible(user)]


def portal_panels(request) -> list[tuple]:
    """(panel, data) for each registered home-page card that has something to show this person."""
    shown = []
    for panel in registry.panels:
        data = panel.context(request)
        if data is not None:
            shown.append((panel, data))
    return shown


_NOTHING = "-"  # a shared card with nothing to show, as kept in the cache (None is the cache's "not there")


def _shared_panel_key(panel, brief) -> str:
    words = hashlib.blake2b(f"{brief.status}\0{brief.title}\0{brief.description}".encode(), digest_size=12)
    return f"ticket-panel:{panel.key}:{brief.kind}:{brief.number}:{words.hexdigest()}"


def ticket_panels(request, kind: str, ticket) -> list[tuple]:
    """(panel, data) for each card other apps add to the side of this ticket's agent page, in their order;
    a panel whose context returns None is left out. Shared cards (TicketPanel.shared) are read from the cache,
    all in one round trip, and computed only when missing."""
    panels = [p for p in registry.ticket_panels if kind in p.ticket_kinds]
    if not panels:
        return []
    brief = registry.kinds[kind].brief(ticket)
    seconds = settings.TICKET_PANELS_SECONDS
    keys = {p.key: _shared_panel_key(p, brief) for p in panels if p.shared and seconds}
    kept = cache.get_many(list(keys.values())) if keys else {}
    fresh = {}
    shown = []
    for panel in panels:
        key = keys.get(panel.key)
        data = kept.get(key) if key else None
        if data is None:
            data = panel.context(request, brief)
            if key:
                fresh[key] = _NOTHING if data is None else data
        if data is not None and data != _NOTHING:
            shown.append((panel, data))
    if fresh:
        cache.set_many(fresh, seconds)
    return shown


@dataclass(frozen=True)
class PortalSearchGroup:
    provider: PortalSearchProvider
    hits: list[PortalHit]


def portal_search(user, q: str, limit: int = 6, *, answers_only: bool = False) -> list[PortalSearchGroup]:
    """What the portal's search box finds for `q`: a group per registered provider (articles, catalog items...),
    each with at most `limit` hits `user` may open. `answers_only`: only providers whose hits may answer a
    problem (the suggestions of the report page)."""
    q = (q or "").strip()[:200]
    if not q:
        return []
    return [PortalSearchGroup(p, p.search(user, q, limit)) for p in registry.portal_searches
            if p.answers or not answers_only]


def _in_words(labels: list[str]) -> str:
    labels = [label.lower() for label in labels]
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def portal_search_scope() -> str:
    """"articles and catalog items": what the portal's search box searches, in words."""
    return _in_words([p.label for p in registry.portal_searches])


def search_scope(user) -> str:
    """"incidents and knowledge base": what global search looks through for this user, in words."""
    return _in_words([p.label for p in _providers_for(user)])


def my_tickets(user, limit: int = 50) -> list[TicketRow]:
    """The person's own tickets of every type, latest change first."""
    return merged_rows((source.mine(user, limit) for source in registry.sources), limit)


@dataclass(frozen=True)
class SearchGroup:
    key: str
    label: str
    results: SearchResults


def _providers_for(user) -> list:
    staff = is_staff_role(user)
    return [p for p in registry.providers if staff or not p.for_agents_only]


def search_everything(user, q: str, limit: int = 10) -> list[SearchGroup]:
    return [SearchGroup(p.key, p.label, p.search(user, q, limit)) for p in _providers_for(user)]


def find_number(user, text: str) -> str | None:
    """The URL of the ticket `text` names, if some app has one this user may open."""
    for provider in _providers_for(user):
        url = provider.find_number(user, text)
        if url:
            return url
    return None


def safe_next(request, default: str) -> str:
    """The `next` URL of a form if it stays on this site, else `default`."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


# --- queue sorting, the same for every ticket type's queues ---------------------------------------------


def queue_sort_key(raw: str | None, sorts: dict[str, list[str]], default: str) -> str:
    """The requested sort ("sla", "-updated_at"...) if `sorts` names it, else `default`."""
    raw = (raw or "").strip()
    return raw if raw.lstrip("-") in sorts and raw.count("-") <= 1 else default


def queue_ordering(sort: str, sorts: dict[str, list[str]], model=None) -> list:
    """ORDER BY for a queue. "sla": next deadline first and tickets without a running clock last; ascending it
    is the order of the ticket type's partial index (sla_due_at, id), so an open queue's page is an index scan.
    Other keys sort by their columns, then the latest change, then id. Empty values sort last; a column of
    `model` that is never NULL gets a plain DESC, the order its index is in (`updated_at DESC NULLS LAST`
    matches no index, so "-updated_at" over a million incidents sorted them all instead of reading 25)."""
    from servicedesk.keyset import field_nullable

    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key == "sla":
        due = F("sla_due_at")
        return [due.desc(nulls_last=True), F("id").desc()] if desc else [due.asc(nulls_last=True), F("id").asc()]

    def descending(column):
        return F(column).desc() if model is not None and not field_nullable(model, column) else (
            F(column).desc(nulls_last=True))

    order = [descending(c) if desc else F(c).asc(nulls_last=True) for c in sorts[key]]
    if key != "updated_at":
        order.append(F("updated_at").desc())
    order.append(F("id").desc())
    return order
