"""What monitoring adds to the kernel (servicedesk.registry): the resolve interlock on incidents, the event
console's workspace section and the incident page's alerts panel, the API routes and demo data. Imported once
by MonitoringConfig.ready(); nothing in the kernel or in incidents imports this app."""

from servicedesk.registry import DemoStep, registry


def _seed(options: dict) -> str:
    from monitoring.demo import seed_monitoring

    return seed_monitoring()


def register() -> None:
    from monitoring import retention

    retention.register()  # retention: what goes and what stays (docs/retention.md)
    # --- ingestion and processing (monitoring.api, monitoring.processing) ---
    from monitoring.api import AlertmanagerView, EventsView, GrafanaView

    registry.api_path("events/", EventsView.as_view(), name="events")
    registry.api_path("integrations/alertmanager/", AlertmanagerView.as_view(), name="integrations-alertmanager")
    registry.api_path("integrations/grafana/", GrafanaView.as_view(), name="integrations-grafana")
    registry.demo_step(DemoStep(app="monitoring", seed=_seed, after=("incidents", "problems-detection")))
    # --- console, KPIs, incident panel, alerts API (monitoring.views, monitoring.api_alerts) ---
    from monitoring.api_alerts import AlertViewSet
    from monitoring.selectors import alerts_objection
    from monitoring.views import alerts_panel, console_nav
    from servicedesk.registry import ResolveCheck, TicketPanel, WorkspaceSection

    registry.api_route("alerts", AlertViewSet, basename="alert")
    registry.workspace_section(WorkspaceSection("monitoring", "Monitoring", console_nav, order=35))
    registry.ticket_panel(TicketPanel("monitoring-alerts", "monitoring/_panel_alerts.html", alerts_panel,
                                      ticket_kinds=("incident",), order=1))
    registry.resolve_check(ResolveCheck("alerts", ticket_kinds=("incident",), check=alerts_objection))
    # --- figures on /metrics (monitoring.metrics) ---
    from monitoring.metrics import event_figures
    from servicedesk.registry import MetricSource

    registry.metric(MetricSource("events", event_figures))
