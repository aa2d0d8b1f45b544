"""What insights adds to the kernel (servicedesk.registry): the "Insights" workspace section (dashboard,
improvement register, weekly e-mail) and its demo data. Imported once by InsightsConfig.ready(); no other app
imports insights: it reads the practices' tables (never writes them) to roll up and show their figures."""

from django.urls import reverse

from servicedesk.registry import DemoStep, NavItem, WorkspaceSection, registry


def insights_nav(request, current: str) -> list[NavItem]:
    """The "Insights" links, for every staff role (the figures are scoped to the viewer's teams); no query."""
    from insights.scope import insights_allowed

    if not insights_allowed(request.user):
        return []
    return [
        NavItem("Service insights", reverse("agent:insights"), "i-layers", current=current == "insights:dashboard",
                testid="nav-insights-dashboard"),
        NavItem("Improvements", reverse("agent:insights_improvements"), "i-check",
                current=current == "insights:improvements", testid="nav-insights-improvements"),
        NavItem("Weekly e-mail", reverse("agent:insights_subscriptions"), "i-send",
                current=current == "insights:subscriptions", testid="nav-insights-subscriptions"),
    ]


def _seed(options: dict) -> str:
    from insights.demo import seed_insights

    return seed_insights()


def register() -> None:
    from insights.api import MeasuresView

    registry.api_path("insights/measures/", MeasuresView.as_view(), name="insights-measures")
    registry.workspace_section(WorkspaceSection("insights", "Insights", insights_nav, order=60))
    registry.demo_step(DemoStep(app="insights", seed=_seed,
                                after=("incidents", "requests", "knowledge", "monitoring", "problems")))
