"""What service level management adds to the kernel (servicedesk.registry): the read API of its
configuration and a demo step that ensures the default calendars and policies (incidents' step runs after
it). Imported once by SlaConfig.ready(). Ticket apps register their SLA ticket types with sla.registry."""

from servicedesk.registry import DemoStep, registry


def _seed(options: dict) -> str:
    from sla.defaults import ensure_defaults

    return ensure_defaults()


def register() -> None:
    from sla.api import CalendarViewSet, PolicyViewSet

    registry.api_route("sla/policies", PolicyViewSet, basename="sla-policy")
    registry.api_route("sla/calendars", CalendarViewSet, basename="sla-calendar")
    registry.demo_step(DemoStep("sla", _seed))
