"""Reads of the catalog with who-may-order built into the query."""

from django.db.models import Exists, OuterRef, Prefetch, Q

from requests_app.models import Audience, CatalogField, CatalogItem


def catalog_items_for(user):
    """Active items `user` may order: those for everyone, those for the organisation of the user's profile,
    and those for a group the user belongs to. One query (EXISTS, so an item in several of the user's groups
    appears once); anonymous users get none."""
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
