"""What the service catalog adds to the kernel (servicedesk.registry): its API and its demo catalog.
Imported once by RequestsAppConfig.ready(); nothing in the kernel imports this app."""

from servicedesk.registry import DemoStep, registry


def _seed(options: dict) -> str:
    from requests_app.demo import seed_catalog

    return seed_catalog()


def register() -> None:
    from requests_app.api import CatalogItemViewSet

    registry.api_route("catalog/items", CatalogItemViewSet, basename="catalog-item")
    registry.demo_step(DemoStep("requests_app", _seed, after=("sla",)))
