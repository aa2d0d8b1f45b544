"""What service level management adds to the kernel (servicedesk.registry): the read API of its
configuration, the compliance report (API, and a workspace page under "Reports" for managers and admins) and
a demo step that ensures the default calendars and policies (incidents' step runs after it). Imported once by
SlaConfig.ready(). Ticket apps register their SLA ticket types with sla.registry."""

from django.urls import reverse

from servicedesk.registry import DemoStep, NavItem, WorkspaceSection, registry


def _reports_nav(request, current: str) -> list[NavItem]:
    from sla.reports import reports_allowed

    if not reports_allowed(request.user):
        return []
    return [NavItem("SLA compliance", reverse("agent:sla_report"), "i-clock", current=current == "sla:report",
                    testid="nav-sla-report")]


def _seed(options: dict) -> str:
    from sla.defaults import ensure_defaults

    return ensure_defaults()


def register() -> None:
    from sla import retention

    retention.register()  # retention: what goes and what stays (docs/retention.md)
    from sla.api import CalendarViewSet, PolicyViewSet, SlaReportViewSet

    registry.api_route("sla/policies", PolicyViewSet, basename="sla-policy")
    registry.api_route("sla/calendars", CalendarViewSet, basename="sla-calendar")
    registry.api_route("sla/report", SlaReportViewSet, basename="sla-report")
    registry.workspace_section(WorkspaceSection("reports", "Reports", _reports_nav, order=80))
    registry.demo_step(DemoStep("sla", _seed))
    from servicedesk.registry import MetricSource
    from sla.metrics import sla_figures

    registry.metric(MetricSource("sla", sla_figures))
