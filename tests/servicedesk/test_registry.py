"""One way for every practice to plug in: the kernel imports no practice app, and the workspace, the portal,
global search, webhook events, the API and seed_demo are built from what the apps registered."""

import ast
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from servicedesk.registry import (
    DemoStep,
    NavItem,
    Registry,
    TicketKind,
    TicketPanel,
    WorkspaceSection,
    registry,
)

ROOT = Path(__file__).resolve().parents[2]
PRACTICES = {"incidents", "requests_app", "problems", "sla", "monitoring", "knowledge"}
# The URL configuration and settings may name the apps (they list what is installed); nothing else may.
MAY_NAME_APPS = {"servicedesk/urls.py", "servicedesk/settings.py"}


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_it_imports_no_practice_app_from_the_kernel():
    offenders = []
    for path in sorted((ROOT / "servicedesk").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in MAY_NAME_APPS or "/migrations/" in relative:
            continue
        for module in _imported_modules(path):
            if module.split(".")[0] in PRACTICES:
                offenders.append(f"{relative} imports {module}")
    assert offenders == []


def test_it_runs_demo_steps_after_the_apps_they_depend_on():
    local = Registry()
    seen = []
    local.demo_step(DemoStep("problems", lambda o: seen.append("problems") or "", after=("incidents",)))
    local.demo_step(DemoStep("incidents", lambda o: seen.append("incidents") or "", after=("sla",)))
    local.demo_step(DemoStep("sla", lambda o: seen.append("sla") or ""))
    local.demo_step(DemoStep("monitoring", lambda o: seen.append("monitoring") or "", after=("incidents", "absent")))
    for step in local.demo_steps():
        step.seed({})
    assert seen.index("sla") < seen.index("incidents") < seen.index("problems")
    assert seen.index("incidents") < seen.index("monitoring")


def test_it_refuses_circular_demo_steps_and_twice_registered_keys():
    local = Registry()
    local.demo_step(DemoStep("a", lambda o: "", after=("b",)))
    local.demo_step(DemoStep("b", lambda o: "", after=("a",)))
    with pytest.raises(ValueError, match="circle"):
        local.demo_steps()
    local.workspace_section(WorkspaceSection("queues", "Queues", lambda r, c: []))
    with pytest.raises(ValueError, match="already registered"):
        local.workspace_section(WorkspaceSection("queues", "Other", lambda r, c: []))
    local.notification_events("incidents", {"incident.created": "raised"})
    with pytest.raises(ValueError, match="already registered by incidents"):
        local.notification_events("problems", {"incident.created": "raised"})


def test_incidents_register_every_contribution():
    assert [s.key for s in registry.sections][:2] == ["home", "queues"]
    assert "report" in [t.key for t in registry.tiles]
    assert "incidents" in [s.key for s in registry.sources]
    assert "incidents" in [p.key for p in registry.providers]
    assert {"incident.created", "incident.resolved", "incident.commented"} <= set(registry.event_names())
    assert "incidents" in [r.prefix for r in registry.routes]
    assert "incidents" in [s.app for s in registry.demo_steps()]
    from sla.registry import ticket_types

    assert ticket_types()["incident"] == "Incident"


def test_the_workspace_sidebar_grows_by_registration(agent_client, monkeypatch):
    section = WorkspaceSection("changes", "Changes", lambda request, current: [
        NavItem("Awaiting CAB", "/agent/changes/cab/", count=3, testid="nav-changes-cab"),
    ], order=50)
    monkeypatch.setattr(registry, "sections", [*registry.sections, section])
    page = agent_client.get("/agent/").content.decode()
    assert 'data-testid="nav-changes"' in page
    assert 'data-testid="nav-changes-cab"' in page and ">Awaiting CAB<" in page
    assert 'data-testid="nav-queue-unassigned"' in page  # the incidents' own section is still there


def test_a_ticket_kind_and_a_ticket_panel_are_registered_once():
    local = Registry()
    kind = TicketKind("change", "Change", find=lambda u, n: None, brief=lambda t: None, reply=lambda **kw: None)
    local.ticket_kind(kind)
    with pytest.raises(ValueError, match="already registered"):
        local.ticket_kind(kind)
    local.ticket_panel(TicketPanel("notes", "x.html", lambda r, b: {}, ticket_kinds=("change",)))
    with pytest.raises(ValueError, match="already registered"):
        local.ticket_panel(TicketPanel("notes", "y.html", lambda r, b: {}, ticket_kinds=("change",)))


def test_the_incident_page_draws_the_panels_other_apps_register(agent_client, incident_factory, monkeypatch,
                                                                settings, tmp_path):
    """A panel sees the incident only as a TicketBrief; one returning None is left out."""
    (tmp_path / "test_panel.html").write_text('<p data-testid="test-panel">{{ data.greeting }}</p>')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    seen = []

    def context(request, brief):
        seen.append(brief)
        return {"greeting": f"Hello from the panel about {brief.number}"}

    monkeypatch.setattr(registry, "ticket_panels", [
        TicketPanel("hello", "test_panel.html", context, ticket_kinds=("incident",), order=1),
        TicketPanel("hidden", "test_panel.html", lambda r, b: None, ticket_kinds=("incident",)),
        TicketPanel("other", "test_panel.html", context, ticket_kinds=("change",)),
    ])
    incident = incident_factory(title="Printer on fire", description="Smoke.")
    page = agent_client.get(f"/agent/incidents/{incident.number}/").content.decode()
    assert page.count('data-testid="test-panel"') == 1
    assert f"Hello from the panel about {incident.number}" in page
    assert [(b.kind, b.number, b.title, b.description, b.solved) for b in seen] == [
        ("incident", incident.number, "Printer on fire", "Smoke.", False)]


def test_the_portal_lists_every_registered_tile_and_only_my_tickets(client, requester, other_requester,
                                                                    incident_factory):
    mine = incident_factory(title="Laptop will not boot")
    theirs = incident_factory(requester=other_requester, created_by=other_requester, title="Screen cracked")
    client.force_login(requester)
    page = client.get("/portal/").content.decode()
    assert 'data-testid="report-button"' in page
    assert f'data-number="{mine.number}"' in page and "Received" in page
    assert theirs.number not in page


def test_global_search_finds_my_tickets_by_word_and_opens_one_by_number(client, requester, other_requester,
                                                                         incident_factory):
    mine = incident_factory(title="Scanner jams on every page")
    theirs = incident_factory(requester=other_requester, created_by=other_requester, title="Scanner smokes")
    client.force_login(requester)
    page = client.get("/search/", {"q": "scanner"}).content.decode()
    assert f'data-number="{mine.number}"' in page
    assert theirs.number not in page
    assert "All matches with filters" not in page  # the agents' incident search is not for requesters
    response = client.get("/search/", {"q": mine.number})
    assert response.status_code == 302 and response.url == reverse("portal:incident", args=[mine.number])
    # Another's number answers like a missing one: no redirect, no match.
    response = client.get("/search/", {"q": theirs.number})
    assert response.status_code == 200
    assert f'data-number="{theirs.number}"' not in response.content.decode()


def test_global_search_sends_agents_to_the_workspace(agent_client, incident_factory):
    incident = incident_factory(title="Badge reader offline")
    response = agent_client.get("/search/", {"q": incident.number.lower()})
    assert response.status_code == 302 and response.url == reverse("agent:incident", args=[incident.number])
    page = agent_client.get("/search/", {"q": "badge"}).content.decode()
    assert f'data-number="{incident.number}"' in page
    assert 'href="/agent/search/?q=badge"' in page
    # The way on to the incident search keeps the whole query, whatever characters it holds.
    page = agent_client.get("/search/", {"q": "badge & door #2"}).content.decode()
    assert 'href="/agent/search/?q=badge+%26+door+%232"' in page


@pytest.mark.django_db
def test_a_webhook_names_only_events_some_app_emits():
    from servicedesk.models import Webhook

    hook = Webhook(name="ops", url="https://ops.example.com/hook", secret="s" * 20,
                   events=["incident.created", "incident.*", "incident.craeted"])
    with pytest.raises(ValidationError) as error:
        hook.full_clean()
    assert "events" in error.value.message_dict
    assert "incident.craeted" in error.value.message_dict["events"][0]
    hook.events = ["incident.created", "incident.*"]
    hook.full_clean()


@pytest.mark.django_db
def test_seed_demo_files_generated_incidents_under_categories_of_their_service():
    from email_channel.demo import TITLES as EMAIL_DEMO
    from incidents.demo import SERVICE_CATEGORIES
    from incidents.models import Incident
    from problems.demo_detection import TITLES as DETECTION_DEMO

    call_command("seed_demo", "--tickets", "300", "--quiet-logins")
    # The generated ones (the problem-detection demo adds three look-alikes with no service of their own, the
    # monitoring demo's alerts open incidents with no category, the email channel's demo mail opens one).
    incidents = (Incident.objects.select_related("service", "category__parent")
                 .exclude(title__in=[*DETECTION_DEMO, *EMAIL_DEMO]).exclude(channel="monitoring"))
    assert incidents.count() == 300
    for incident in incidents:
        assert (incident.category.parent.name, incident.category.name) in SERVICE_CATEGORIES[incident.service.name], (
            incident.number, incident.service.name, str(incident.category))


def test_portal_search_providers_are_registered_once_per_key_in_order_and_say_what_they_search():
    from servicedesk.registry import PortalHit, PortalSearchProvider
    from servicedesk.workspace import portal_search_scope

    fresh = Registry()
    fresh.portal_search(PortalSearchProvider("b", "Catalog items", lambda user, q, limit: [], order=20))
    fresh.portal_search(PortalSearchProvider("a", "Articles", lambda user, q, limit: [PortalHit("x", q, "/")],
                                             order=10, answers=True))
    assert [p.key for p in fresh.portal_searches] == ["a", "b"]
    with pytest.raises(ValueError):
        fresh.portal_search(PortalSearchProvider("a", "Again", lambda user, q, limit: []))
    # The installed apps: the knowledge base (it may answer a problem) and the catalog.
    assert [(p.key, p.answers) for p in registry.portal_searches] == [("knowledge", True), ("catalog", False)]
    assert portal_search_scope() == "articles and catalog items"


def test_a_bulk_action_is_registered_once_and_offered_only_on_its_ticket_kinds():
    from servicedesk.registry import TicketBulkAction

    own = Registry()
    own.ticket_bulk_action(TicketBulkAction("x", "Do x", ticket_kinds=("incident",), url_name="agent:dashboard"))
    with pytest.raises(ValueError):
        own.ticket_bulk_action(TicketBulkAction("x", "Again", ticket_kinds=("request",), url_name="agent:dashboard"))
    assert [a.key for a in own.bulk_actions_for("incident")] == ["x"]
    assert own.bulk_actions_for("request") == []


def test_the_incident_queue_bulk_bar_draws_the_bulk_actions_other_apps_register(agent_client, monkeypatch):
    from servicedesk.registry import TicketBulkAction

    monkeypatch.setattr(registry, "bulk_actions", [
        TicketBulkAction("elsewhere", "Send elsewhere", ticket_kinds=("incident",), url_name="agent:dashboard")])
    page = agent_client.get(reverse("agent:queue", kwargs={"key": "all"})).content.decode()
    assert f'formaction="{reverse("agent:dashboard")}"' in page and "Send elsewhere" in page
