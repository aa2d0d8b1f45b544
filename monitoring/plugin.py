"""What monitoring adds to the kernel (servicedesk.registry): the resolve interlock on incidents, the event
console's workspace section and the incident page's alerts panel, the API routes and demo data. Imported once
by MonitoringConfig.ready(); nothing in the kernel or in incidents imports this app."""

from servicedesk.registry import registry  # noqa: F401 - used by the registrations below


def register() -> None:
    # --- ingestion and processing (monitoring.api, monitoring.processing) ---
    pass
    # --- console, KPIs, incident panel, alerts API (monitoring.views, monitoring.api_alerts) ---
