"""Reads of the catalog with who-may-order built into the query."""

from django.db.models import Exists, OuterRef, Prefetch, Q

from requests_app.models import Approval, ApprovalLevel, Audience, CatalogField, CatalogItem


def catalog_items_for(user):
    """Active items `user` may order: those for everyone, those for the organisation of the user's profile,
    and those for a group the user belongs to. One query (EXISTS, so an item in several of the user's groups
    appears once), which also says whether each needs approval; anonymous users get none."""
    if user is None or not user.is_authenticated:
        return CatalogItem.objects.none()
    of_my_organisation = Exists(CatalogItem.organisations.through.objects.filter(
        catalogitem_id=OuterRef("id"), organisation__people__user=user))
    of_my_groups = Exists(CatalogItem.groups.through.objects.filter(
        catalogitem_id=OuterRef("id"), group__user=user))
    return CatalogItem.objects.filter(active=True).filter(
        Q(audience=Audience.EVERYONE)
        | Q(of_my_organisation, audience=Audience.ORGANISATIONS)
        | Q(of_my_groups, audience=Audience.GROUPS)
    ).annotate(
        # CatalogItem.requires_approval reads it: no query per item in lists.
        has_approval_levels=Exists(ApprovalLevel.objects.filter(item_id=OuterRef("id"))),
    )


def catalog_items_for_api(user):
    """The items `user` may order, with their category and form fields: three queries in all for a page of
    the list (the count, the items, their fields), whatever its size."""
    return catalog_items_for(user).select_related("category").prefetch_related(
        Prefetch("fields", queryset=CatalogField.objects.order_by("order", "id")),
    ).order_by("category__order", "category__name", "order", "name", "id")


def requests_for(user):
    """Service requests `user` may see, with what the API shows of them in the same query: agents see all,
    anyone else only the requests they raised."""
    from requests_app.models import ServiceRequest
    from servicedesk.roles import is_staff_role

    if user is None or not user.is_authenticated:
        return ServiceRequest.objects.none()
    rows = ServiceRequest.objects.select_related("item", "requester", "assignment_group", "assignee")
    if not is_staff_role(user):
        rows = rows.filter(requester=user)
    return rows.order_by("-created_at", "-id")


def approvals_for(user):
    """Approvals `user` may see and decide: those naming them as approver; admins every one. With what the
    inboxes and the API show of them (request, item, requester, people) in the same query."""
    from requests_app.approvals import is_admin

    if user is None or not user.is_authenticated:
        return Approval.objects.none()
    rows = Approval.objects.select_related("request__item", "request__requester", "approver", "decided_by")
    if not is_admin(user):
        rows = rows.filter(approver=user)
    return rows


def approvals_pending_for(user):
    """What waits for `user`'s decision (admins: every pending approval), oldest first, with the items' form
    fields prefetched for the answers: two queries whatever the number of rows."""
    return (approvals_for(user).filter(state=Approval.State.PENDING)
            .prefetch_related(Prefetch("request__item__fields", queryset=CatalogField.objects.order_by("order", "id")))
            .order_by("created_at", "id"))


def approvals_pending_count(user) -> int:
    return approvals_for(user).filter(state=Approval.State.PENDING).count()


def approval_chain(request):
    """A request's approvals by level, for its page: [(level, [approval, ...]), ...] (one query)."""
    rows = Approval.objects.filter(request=request).select_related("approver", "decided_by").order_by("level", "id")
    chain: dict[int, list] = {}
    for row in rows:
        chain.setdefault(row.level, []).append(row)
    return sorted(chain.items())


# The portal's search over the catalog: every word must appear in the item's name or description. On
# PostgreSQL the expression below is what the trigram index of migration 0005 covers, so ILIKE '%word%' is an
# index scan whatever the catalog's size; SQLite (the local run) reads the small table.
SEARCH_DOCUMENT = "(requests_app_catalogitem.name || ' ' || requests_app_catalogitem.description)"


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def catalog_search(user, q: str):
    """Items `user` may order whose name or description holds every word of `q`; a match in the name first.
    One query."""
    from django.db import connection
    from django.db.models import Case, IntegerField, Value, When

    words = [w for w in (q or "").split() if w][:8]
    items = catalog_items_for(user).select_related("category")
    if not words:
        return items.none()
    if connection.vendor == "postgresql":
        items = items.extra(where=[f"{SEARCH_DOCUMENT} ILIKE %s"] * len(words), params=[_like(w) for w in words])
    else:
        for word in words:
            items = items.filter(Q(name__icontains=word) | Q(description__icontains=word))
    in_name = Q()
    for word in words:
        in_name &= Q(name__icontains=word)
    return items.annotate(
        name_match=Case(When(in_name, then=Value(1)), default=Value(0), output_field=IntegerField()),
    ).order_by("-name_match", "name", "id")


def catalog_order_counts(*, days: int = 90, now=None) -> dict[int, int]:
    """{item id: orders in the last `days` days, by anyone}: one query over the window's requests (the
    created_at index), the same for everyone, so it is kept PORTAL_POPULAR_SECONDS in the cache (unless `now`
    is given): counting 90 days of a large desk's orders (80,000 at 1M requests, ~50 ms) on every portal home
    page cost PostgreSQL a second of work per page as a join."""
    from datetime import timedelta

    from django.conf import settings
    from django.core.cache import cache
    from django.db.models import Count
    from django.utils import timezone

    from requests_app.models import ServiceRequest

    seconds = settings.PORTAL_POPULAR_SECONDS if now is None else 0
    key = f"catalog-order-counts:{days}"
    if seconds:
        counts = cache.get(key)
        if counts is not None:
            return counts
    since = (now or timezone.now()) - timedelta(days=days)
    counts = dict(ServiceRequest.objects.filter(created_at__gte=since).order_by()
                  .values_list("item_id").annotate(n=Count("id")).values_list("item_id", "n"))
    if seconds:
        cache.set(key, counts, timeout=seconds)
    return counts


def catalog_popular(user, *, days: int = 90, limit: int = 5, now=None) -> list:
    """The items `user` may order that were ordered most in the last `days` days (by anyone), most first,
    each with `orders` (its count). The counts come from `catalog_order_counts` (cached), then one query for
    the items the person may order."""
    counts = catalog_order_counts(days=days, now=now)
    if not counts:
        return []
    items = list(catalog_items_for(user).select_related("category").filter(id__in=list(counts)))
    for item in items:
        item.orders = counts[item.id]
    items.sort(key=lambda item: (-item.orders, item.name))
    return items[:limit]


def catalog_for_portal(user) -> list:
    """The catalog as the portal lists it: categories in order, each with the items `user` may order. Two
    queries whatever its size (the items with their categories joined, and nothing else)."""
    items = catalog_items_for(user).select_related("category").order_by(
        "category__order", "category__name", "order", "name", "id")
    categories: dict[int, tuple] = {}
    for item in items:
        categories.setdefault(item.category_id, (item.category, []))[1].append(item)
    return list(categories.values())
