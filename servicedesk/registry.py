"""How a practice app plugs into the kernel.

The kernel never imports a practice. Each app says what it contributes in one module of its own
(`<app>/plugin.py`), which its `AppConfig.ready()` imports; the agent workspace, the portal, global search,
webhook event names, the API router and `seed_demo` are then built from what was registered here:

    registry.workspace_section(WorkspaceSection(key="incidents", label="Incidents", order=10, nav=...))
    registry.portal_tile(PortalTile(key="report", title="Report an issue", url_name="portal:report", ...))
    registry.portal_panel(PortalPanel(key="popular", template="requests_app/_popular.html", context=...))
    registry.ticket_kind(TicketKind(kind="incident", label="Incident", find=..., brief=..., reply=..., prefix="INC",
                                    get=..., create_from_mail=..., accepts_reply=...))
    registry.ticket_panel(TicketPanel(key="kb-suggested", template="knowledge/_panel.html", context=...,
                                      ticket_kinds=("incident",)))
    registry.portal_search(PortalSearchProvider(key="knowledge", label="Articles", search=..., answers=True))
    registry.resolve_check(ResolveCheck(key="alerts", ticket_kinds=("incident",), check=...))
    registry.ticket_bulk_action(TicketBulkAction(key="problem", label="Create problem", ticket_kinds=("incident",),
                                                 url_name="agent:problem_from_incidents"))
    registry.ticket_source(TicketSource(key="incidents", label="Incidents", mine=...))
    registry.search_provider(SearchProvider(key="incidents", label="Incidents", search=..., find_number=...))
    registry.notification_events("incidents", {"incident.created": "An incident was raised", ...})
    registry.api_route("incidents", IncidentViewSet, basename="incident")
    registry.demo_step(DemoStep(app="incidents", seed=seed_incidents, after=("sla",)))
    registry.ticket_erase_hook(inbound_mail_forget)   # func(kind, ticket_id): drop what the app keeps of it

`ticket_erase_hook(func)`: servicedesk.services.ticket_erase (`manage.py erase_ticket`) calls every hook with
the erased ticket's kind ("incident") and id inside its transaction, before the ticket row goes, so an app that
keeps something about tickets by id (the email channel's raw mails) erases it too; a hook that raises undoes the
whole erasure. A hook may return how many rows it removed (recorded in the erasure's audit row).

Retention (servicedesk.retention, docs/retention.md) removes old rows in batches:

    registry.ticket_retention(TicketRetention(kind="incident", model=Incident, due=..., order=20))
    registry.retention_hold(RetentionHold(key="problem-links", ticket_kinds=("incident",), narrow=...))
    registry.tickets_retire_hook(inbound_mails_retire)   # func(kind, ids): what the app keeps about many tickets
    registry.retention_rule(RetentionRule(key="monitoring.events", label=..., keep=..., due=..., ...))

Registration happens once per process, at start-up, before any request; the lists are read-only afterwards.
Callables receive the request or user, so every contribution builds its own permission into its query.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class NavItem:
    """One link of the workspace sidebar."""

    label: str
    url: str
    icon: str = "i-circle-dot"
    count: int | None = None
    current: bool = False
    hot: bool = False  # a count that needs attention (drawn red)
    testid: str = ""


@dataclass(frozen=True)
class WorkspaceSection:
    """A group of sidebar links in the agent workspace, e.g. an app's queues.

    `nav(request, current)` returns the links; `current` is the page's nav key (e.g. "queue:mine"), so the
    section can mark its own link as the current page. It should cost at most one query (counts in one
    aggregate), asked through `servicedesk.sidebar.sidebar_counts` so it runs once per person every
    SIDEBAR_COUNTS_SECONDS rather than on every page."""

    key: str
    label: str
    nav: Callable[[Any, str], list[NavItem]]
    order: int = 100
    empty: str = ""  # shown when the section has no links


@dataclass(frozen=True)
class PortalTile:
    """A tile on the portal's home page and a link in its top bar: "Report an issue", "Request something"..."""

    key: str
    title: str
    description: str
    url_name: str
    icon: str = "i-plus"
    order: int = 100
    visible: Callable[[Any], bool] = field(default=lambda user: True)


@dataclass(frozen=True)
class PortalPanel:
    """A card on the portal's home page below the tiles: "Popular requests", "Waiting for my approval"...

    `context(request)` returns what `template` reads as `data`, or None to leave the card out (e.g. nothing
    to show); it should cost at most one or two queries, holding only what the person may see."""

    key: str
    template: str
    context: Callable[[Any], dict | None]
    order: int = 100


@dataclass(frozen=True)
class TicketBrief:
    """What another app may know of one ticket without importing the ticket's app: the kernel's Ticket fields
    plus the few facts every ticket type can answer in its own terms."""

    kind: str
    number: str
    title: str
    description: str
    status: str
    status_label: str
    url: str  # the ticket's agent page
    solved: bool = False  # resolved or closed: how it was fixed is known (`resolution`)
    can_reply: bool = True  # a public reply to the requester may still be added
    resolution: str = ""
    service_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class TicketKind:
    """A ticket type's actions that other apps may call without importing it.

    `find(user, number)` returns the ticket `number` names if `user` may open it on its agent page (else
    None); `brief(ticket)` describes it as a TicketBrief; `reply(ticket=, author=, body=, files=(), data=None,
    internal=False)` adds a public reply through the ticket app's own comment service (timeline, mail to the
    requester and the watchers, first response, reopening or resuming on a requester's or watcher's reply), so
    a reply sent from another app's page or by mail is the same as one typed in the reply box; with
    `internal=True` it adds an internal note instead (agents only; the comment service refuses anyone else),
    e.g. an agent's answer by mail to agent-only mail (servicedesk.mailthread.ThreadRef.internal). `files` are
    Django File objects (checked by servicedesk.services.attachment_add), `data` is merged into the entry's
    TimelineEntry.data (e.g. {"channel": "email", "mail": <InboundMessage id>}).

    For channels that act without a signed-in person (the email channel): `prefix` is the number prefix
    ("INC"), `get(number)` returns the ticket without a permission check (None when there is none),
    `accepts_reply(ticket)` says whether it can still take a public reply (not closed or cancelled), and
    `create_from_mail(intake=MailIntake)` raises a new ticket from a mail (InvalidInput naming the field when
    the channel's configuration cannot make one)."""

    kind: str
    label: str
    find: Callable[[Any, str], Any]
    brief: Callable[[Any], TicketBrief]
    reply: Callable[..., Any]
    prefix: str = ""
    get: Callable[[str], Any] | None = None
    create_from_mail: Callable[..., Any] | None = None
    accepts_reply: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class MailIntake:
    """What a channel knows of a mail that raises a new ticket: the sender (a requester account), the subject
    as `title`, the reply text as `body`, its attachments (`files`, Django File objects) and what the "created"
    timeline entry records in its data (`data`, e.g. {"channel": "email", "mail": 12}); plus the mailbox's
    defaults: `service`, `team`, `category_id` (incidents.Category, for incidents) and `catalog_item_id`
    (requests_app.CatalogItem, required for requests). Ids, not instances: the kernel imports no practice."""

    requester: Any
    title: str
    body: str
    files: tuple = ()
    data: dict = field(default_factory=dict)
    service: Any = None
    team: Any = None
    category_id: int | None = None
    catalog_item_id: int | None = None


@dataclass(frozen=True)
class TicketPanel:
    """A card another app adds to the side column of a ticket's agent page ("Suggested articles"...).

    `context(request, brief)` gets the ticket as a TicketBrief and returns what `template` reads as `data`, or
    None to leave the card out; it should cost at most one or two queries. Shown on the ticket types named in
    `ticket_kinds`.

    `shared=True`: the card follows from the ticket's own words alone and is the same for every agent who may
    open the page (suggestions such as related articles), so the kernel keeps its `data` for
    `TICKET_PANELS_SECONDS` (settings) per ticket and per title, description and status, and every agent's page
    reads it from there (`servicedesk.workspace.ticket_panels`). What else it depends on (a newly published
    article) shows within that time. A card that follows what agents do on the page (links, alerts) is not
    shared, and neither is one whose `context` reads `request.user` or a field of the brief other than its
    kind, number, title, description and status: those are not in the key, and the card would show one agent
    what was drawn for another."""

    key: str
    template: str
    context: Callable[[Any, TicketBrief], dict | None]
    ticket_kinds: tuple[str, ...]
    order: int = 100
    shared: bool = False


@dataclass(frozen=True)
class ResolveCheck:
    """Another app's reason not to resolve a ticket yet ("2 alerts of this incident still fire").

    `check(ticket)` returns a sentence a person can act on, or "" when nothing stands in the way. The ticket
    app's resolve service refuses while any check objects, unless the caller forces it (`force: true` in the
    API, "Resolve anyway" on the page); pages show the objections beside the resolve form. Shown on the
    ticket types named in `ticket_kinds`; one or two queries at most."""

    key: str
    ticket_kinds: tuple[str, ...]
    check: Callable[[Any], str]
    order: int = 100


@dataclass(frozen=True)
class TicketBulkAction:
    """A button another app adds to the bulk bar of a ticket type's queues ("Create problem from these
    incidents"...). The queue's bulk form posts the checked numbers (`numbers`) to `url_name` instead of its
    own bulk view, so the ticket app never imports the app that acts on them."""

    key: str
    label: str
    ticket_kinds: tuple[str, ...]
    url_name: str
    icon: str = "i-plus"
    order: int = 100


@dataclass(frozen=True)
class PortalHit:
    """One thing the portal's search box found: an article to read, an item to order...

    `solved_url` (answers only) is where "This solved it" POSTs (with `q`) when the hit is suggested while
    someone reports an issue."""

    kind: str
    title: str
    url: str
    snippet: str = ""
    meta: str = ""
    solved_url: str = ""


@dataclass(frozen=True)
class PortalSearchProvider:
    """What the portal's search box searches besides tickets: `search(user, q, limit)` -> at most `limit`
    PortalHits that `user` may open or order, best match first, in one or two queries.

    `answers`: its hits may answer a problem (knowledge articles), so the "Report an issue" page suggests
    them as the person types, before a ticket is raised (deflection)."""

    key: str
    label: str
    search: Callable[[Any, str, int], list[PortalHit]]
    order: int = 100
    answers: bool = False


@dataclass(frozen=True)
class TicketRow:
    """A ticket as the portal's "My tickets" and global search list it, whatever its type."""

    kind: str
    number: str
    title: str
    status: str
    status_label: str
    updated_at: datetime
    url: str
    snippet: str = ""


@dataclass(frozen=True)
class TicketSource:
    """Where the portal finds a person's own tickets of one type: `mine(user, limit)` -> TicketRow list,
    newest change first, holding only what `user` may see."""

    key: str
    label: str
    mine: Callable[[Any, int], list[TicketRow]]
    order: int = 100


@dataclass(frozen=True)
class SearchResults:
    rows: list[TicketRow]
    more_url: str = ""  # the app's own full search (filters, bulk actions) for this query


@dataclass(frozen=True)
class SearchProvider:
    """Global search over one ticket type. `search(user, q, limit)` returns at most `limit` rows visible to
    `user`; `find_number(user, text)` returns the URL of the ticket `text` names (its number, however typed)
    if `user` may open it, else None."""

    key: str
    label: str
    search: Callable[[Any, str, int], SearchResults]
    find_number: Callable[[Any, str], str | None]
    order: int = 100
    for_agents_only: bool = False


@dataclass(frozen=True)
class DemoStep:
    """An app's part of `seed_demo`: `seed(options)` -> a one-line summary. Runs after the apps in `after`."""

    app: str
    seed: Callable[[dict], str]
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricFamily:
    """One Prometheus metric an app reports at scrape time (servicedesk.metrics renders it).

    `name` starts with "servicedesk_"; `kind` is "gauge" or "counter" (a counter's name ends in "_total" and
    never goes down, e.g. a high-water mark of ids); `samples` are (labels, value) pairs, labels a dict of
    strings. Several apps may report samples of the same family (tickets per kind): they are merged."""

    name: str
    help: str
    samples: tuple[tuple[dict, float], ...]
    kind: str = "gauge"


@dataclass(frozen=True)
class MetricSource:
    """What an app reports on /metrics: `collect()` -> MetricFamily list, computed at every scrape.

    It must cost a fixed number of index scans whatever the size of the tables (no count over history):
    a scrape runs every 15-60 seconds on a database of millions of rows."""

    key: str
    collect: Callable[[], list[MetricFamily]]
    order: int = 100


@dataclass(frozen=True)
class TicketRetention:
    """A ticket type's part in retention: `due(cutoff)` is the queryset of its tickets in a final status (closed,
    cancelled) whose closing date is before `cutoff`, filtered on an indexed date column named by `date_field`.
    Types with a lower `order` go first (problems before the incidents they hold)."""

    kind: str
    model: Any
    due: Callable[[datetime], Any]
    date_field: str = "closed_at"
    order: int = 100


@dataclass(frozen=True)
class RetentionHold:
    """Another app's reason to keep tickets that are due ("a problem still explains this incident", "this closed
    problem explains an incident still open"): `narrow(kind, queryset)` returns the queryset without the tickets
    that must stay, as a filter in the same query (an Exists, through an index), never per-row Python, so a batch
    never reads rows it will not remove."""

    key: str
    ticket_kinds: tuple[str, ...]
    narrow: Callable[[str, Any], Any]


@dataclass(frozen=True)
class RetentionRule:
    """Rows of one kind (not tickets) that retention removes once they are older than `keep()` (a timedelta read
    from the settings at run time; None keeps them for ever).

    `due(cutoff)` is the queryset of rows due, filtered on the indexed date `date_field` (the run takes batches in
    (date_field, id) order with SKIP LOCKED). `remove(ids)` removes a batch and returns how many rows it changed
    (default: delete them); a rule may scrub instead of deleting (the raw bytes of old mails). `archive`: whether
    the rows go to the archive file first, as `archive_rows(ids)` returns them (default: every concrete field; an
    iterator is written row by row). `size_field`: a column holding each row's size in bytes; a batch then also
    stops at RETENTION_BATCH_BYTES (at least one row), so big rows (raw mails) never fill the worker's memory."""

    key: str
    label: str
    keep: Callable[[], Any]
    due: Callable[[datetime], Any]
    date_field: str
    remove: Callable[[list[int]], int] | None = None
    archive: bool = True
    archive_rows: Callable[[list[int]], Any] | None = None
    order: int = 100
    size_field: str | None = None


@dataclass(frozen=True)
class ApiRoute:
    prefix: str
    viewset: Any
    basename: str


@dataclass(frozen=True)
class ApiPath:
    """A plain view under /api/v1/ (not a viewset): `route` as for django.urls.path, e.g. "x/<str:token>/"."""

    route: str
    view: Any
    name: str


class Registry:
    def __init__(self):
        self.sections: list[WorkspaceSection] = []
        self.tiles: list[PortalTile] = []
        self.panels: list[PortalPanel] = []
        self.kinds: dict[str, TicketKind] = {}
        self.ticket_panels: list[TicketPanel] = []
        self.bulk_actions: list[TicketBulkAction] = []
        self.resolve_checks: list[ResolveCheck] = []
        self.sources: list[TicketSource] = []
        self.providers: list[SearchProvider] = []
        self.portal_searches: list[PortalSearchProvider] = []
        self.events: dict[str, tuple[str, str]] = {}  # event name -> (app, description)
        self.routes: list[ApiRoute] = []
        self.paths: list[ApiPath] = []
        self.demo: list[DemoStep] = []
        self.erase_hooks: list[Callable[[str, int], int | None]] = []
        self.metric_sources: list[MetricSource] = []
        self.retentions: dict[str, TicketRetention] = {}
        self.retention_holds: list[RetentionHold] = []
        self.retire_hooks: list[Callable[[str, list[int]], int | None]] = []
        self.retention_rules: list[RetentionRule] = []

    # --- registration ------------------------------------------------------------------------------

    def workspace_section(self, section: WorkspaceSection) -> None:
        self._add(self.sections, section)

    def portal_tile(self, tile: PortalTile) -> None:
        self._add(self.tiles, tile)

    def portal_panel(self, panel: PortalPanel) -> None:
        self._add(self.panels, panel)

    def ticket_kind(self, kind: TicketKind) -> None:
        if kind.kind in self.kinds:
            raise ValueError(f"ticket kind {kind.kind!r} is already registered")
        self.kinds[kind.kind] = kind

    def ticket_panel(self, panel: TicketPanel) -> None:
        self._add(self.ticket_panels, panel)

    def ticket_bulk_action(self, action: TicketBulkAction) -> None:
        self._add(self.bulk_actions, action)

    def resolve_check(self, check: ResolveCheck) -> None:
        self._add(self.resolve_checks, check)

    def ticket_source(self, source: TicketSource) -> None:
        self._add(self.sources, source)

    def search_provider(self, provider: SearchProvider) -> None:
        self._add(self.providers, provider)

    def portal_search(self, provider: PortalSearchProvider) -> None:
        self._add(self.portal_searches, provider)

    def notification_events(self, app: str, events: dict[str, str]) -> None:
        for name, description in events.items():
            owner = self.events.get(name)
            if owner and owner[0] != app:
                raise ValueError(f"notification event {name!r} is already registered by {owner[0]}")
            self.events[name] = (app, description)

    def api_route(self, prefix: str, viewset, *, basename: str) -> None:
        if any(r.prefix == prefix for r in self.routes):
            raise ValueError(f"API prefix {prefix!r} is already registered")
        self.routes.append(ApiRoute(prefix, viewset, basename))

    def api_path(self, route: str, view, *, name: str) -> None:
        if any(p.route == route or p.name == name for p in self.paths):
            raise ValueError(f"API path {route!r} ({name}) is already registered")
        self.paths.append(ApiPath(route, view, name))

    def demo_step(self, step: DemoStep) -> None:
        if any(s.app == step.app for s in self.demo):
            raise ValueError(f"{step.app} already has a demo step")
        self.demo.append(step)

    def ticket_erase_hook(self, func: Callable[[str, int], int | None]) -> None:
        if func in self.erase_hooks:
            raise ValueError(f"erase hook {func!r} is already registered")
        self.erase_hooks.append(func)

    def metric(self, source: MetricSource) -> None:
        """Report gauges or counters on /metrics (servicedesk.metrics), computed at every scrape."""
        self._add(self.metric_sources, source)
    def ticket_retention(self, retention: TicketRetention) -> None:
        if retention.kind in self.retentions:
            raise ValueError(f"ticket kind {retention.kind!r} already has a retention")
        self.retentions[retention.kind] = retention

    def retention_hold(self, hold: RetentionHold) -> None:
        if any(h.key == hold.key for h in self.retention_holds):
            raise ValueError(f"RetentionHold {hold.key!r} is already registered")
        self.retention_holds.append(hold)

    def tickets_retire_hook(self, func: Callable[[str, list[int]], int | None]) -> None:
        """`func(kind, ids)`: retention is about to delete these tickets (in its transaction, before the ticket
        rows go); the app removes or scrubs what it keeps about them by id, in a few queries for the whole batch,
        and may return how many rows it changed. One that raises undoes the batch (the run records the failed
        step and goes on with the others)."""
        if func in self.retire_hooks:
            raise ValueError(f"retire hook {func!r} is already registered")
        self.retire_hooks.append(func)

    def retention_rule(self, rule: RetentionRule) -> None:
        self._add(self.retention_rules, rule)

    @staticmethod
    def _add(items: list, item) -> None:
        if any(existing.key == item.key for existing in items):
            raise ValueError(f"{type(item).__name__} {item.key!r} is already registered")
        items.append(item)
        items.sort(key=lambda x: (x.order, x.key))

    # --- reading -----------------------------------------------------------------------------------

    def ticket_kinds(self) -> list[TicketKind]:
        return list(self.kinds.values())

    def ticket_kind_named(self, kind: str) -> TicketKind | None:
        return self.kinds.get(kind)

    def ticket_kind_for_prefix(self, prefix: str) -> TicketKind | None:
        """The kind whose numbers start with `prefix` ("INC"), whatever its case; None when no kind has it."""
        prefix = (prefix or "").upper()
        return next((k for k in self.kinds.values() if k.prefix and k.prefix == prefix), None)

    def bulk_actions_for(self, kind: str) -> list[TicketBulkAction]:
        return [a for a in self.bulk_actions if kind in a.ticket_kinds]

    def resolve_objections(self, kind: str, ticket) -> list[str]:
        """What other apps say against resolving `ticket` now (empty: nothing)."""
        return [text for c in self.resolve_checks if kind in c.ticket_kinds if (text := c.check(ticket))]

    def event_names(self) -> list[str]:
        return sorted(self.events)

    def demo_steps(self) -> list[DemoStep]:
        """Every app's demo step, each after the apps it names (those not installed are ignored)."""
        pending = {s.app: s for s in self.demo}
        done: list[DemoStep] = []
        placed: set[str] = set()
        while pending:
            ready = [s for s in pending.values() if all(a in placed or a not in pending for a in s.after)]
            if not ready:
                raise ValueError(f"demo steps depend on each other in a circle: {sorted(pending)}")
            for step in sorted(ready, key=lambda s: s.app):
                done.append(step)
                placed.add(step.app)
                del pending[step.app]
        return done


registry = Registry()


def merged_rows(batches: Iterable[list[TicketRow]], limit: int) -> list[TicketRow]:
    """Rows of several ticket types in one list, latest change first."""
    rows = [row for batch in batches for row in batch]
    rows.sort(key=lambda r: r.updated_at, reverse=True)
    return rows[:limit]
