"""Small builders for catalog tests (minimal defaults)."""

from requests_app.models import CatalogCategory, CatalogField, CatalogItem
from servicedesk.models import Team


def category(name="Access", **kwargs) -> CatalogCategory:
    return CatalogCategory.objects.get_or_create(name=name, defaults=kwargs)[0]


def item(name="Reset my password", *, fields=(), organisations=(), groups=(), **kwargs) -> CatalogItem:
    kwargs.setdefault("category", category())
    kwargs.setdefault("fulfilment_team", Team.objects.get_or_create(name="Service Desk")[0])
    made = CatalogItem.objects.create(name=name, **kwargs)
    made.organisations.set(organisations)
    made.groups.set(groups)
    for order, spec in enumerate(fields):
        CatalogField.objects.create(item=made, order=order, **spec)
    return made
