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
