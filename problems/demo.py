"""Demo problems (problems.plugin registers this step after incidents and knowledge): incidents that keep
coming back (the demo's own incidents of the service, or a few raised through incidents' services
when there are none), and the problems that explain them, written through
problems.services: one under investigation with its analysis, one known error with a workaround (and the VPN
article), one resolved with its incidents resolved. Seeding twice adds nothing."""

from django.contrib.auth import get_user_model
from django.db import transaction

from incidents.models import Category, Incident
from problems import services
from problems.models import Problem
from servicedesk.models import ConfigurationItem, Service, Team

VPN = "VPN sessions drop after exactly 60 minutes"
SPOOLER = "Print spooler stalls on jobs over 50 MB"
MAIL = "Outlook search misses mail from the last two days"


def _incidents(requester, titles, *, service, category, words=()):
    """Demo incidents of this service not yet explained by a problem (open ones first, those whose title has
    one of `words` before the others), as many as `titles`; when the demo has fewer, the missing ones are
    raised through incidents' services with these titles."""
    from incidents.demo import SHOWCASE
    from incidents.services import incident_create
    from incidents.states import OPEN

    found = []
    if service is not None:
        # Not the showcase incidents: they demonstrate the SLA clocks' states and must keep them.
        candidates = list(Incident.objects.filter(service=service, problem_links__isnull=True)
                          .exclude(title__in=[showcase[0] for showcase in SHOWCASE])
                          .order_by("-created_at")[:200])
        candidates.sort(key=lambda incident: (incident.status not in OPEN,
                                              not any(word in incident.title.lower() for word in words)))
        found = candidates[:len(titles)]
    for title in titles[len(found):]:
        found.append(Incident.objects.filter(title=title).first() or incident_create(
            title=title, requester=requester, created_by=requester, service=service, category=category,
            description="It happened again this morning."))
    return found


@transaction.atomic
def seed_problems() -> str:
    users = get_user_model().objects.in_bulk(["agent", "requester", "nina", "omar", "manager"],
                                             field_name="username")
    agent = users.get("agent")
    if agent is None or "requester" not in users:
        return "skipped: the demo users are missing"
    for name in ("nina", "omar", "manager"):
        users.setdefault(name, users["requester"])
    existing = set(Problem.objects.filter(title__in=[VPN, SPOOLER, MAIL]).values_list("title", flat=True))
    services_ = {service.name: service for service in Service.objects.all()}
    categories = {(c.parent.name, c.name): c for c in Category.objects.filter(parent__isnull=False)
                  .select_related("parent")}
    teams = {team.name: team for team in Team.objects.all()}
    made = 0

    if VPN not in existing:
        incidents = _incidents(users["requester"], ["VPN disconnected during the sales call",
                                       "VPN drops every hour, have to log in again",
                                       "Lost VPN connection in the middle of an upload"],
                               service=services_.get("VPN"), category=categories.get(("Network", "VPN")), words=("disconnect", "drop"))
        problem = services.problem_create(
            title=VPN, created_by=agent, impact=2, urgency=2, description="Remote staff lose the VPN tunnel on the "
            "hour, every hour, since the gateway update.", category=categories.get(("Network", "VPN")),
            services=[s for s in [services_.get("VPN")] if s],
            configuration_items=list(ConfigurationItem.objects.filter(name__in=["vpn-gw-1", "vpn-gw-2"])),
            assignment_group=teams.get("Network"), assignee=users["nina"] if teams.get("Network") else None,
            incidents=incidents)
        from knowledge.models import Article

        services.problem_investigate(problem_id=problem.id, actor=agent)
        services.problem_update(
            problem_id=problem.id, actor=agent,
            root_cause="The gateway update set the IKE rekey lifetime to 3600 s without the client's matching "
                       "setting, so every rekey fails and the tunnel drops.",
            workaround="Reconnect the VPN client; to avoid the drop, start a new session before the hour is up.",
            permanent_fix="Align the rekey lifetime on the gateways with the client profile.",
            change_reference="CHG0001042",
            knowledge_article=Article.objects.filter(slug="connect-to-the-vpn").first(),
            analysis={"five_whys": ["The tunnel drops after 60 minutes", "The rekey fails",
                                    "Gateway and client disagree on the lifetime",
                                    "The gateway update changed the default",
                                    "Update notes were not checked against the client profile"],
                      "fishbone": {"Technology": ["Gateway default changed"],
                                   "Process": ["No test of long sessions after updates"]},
                      "timeline": [{"at": "Monday 09:00", "what": "Gateway firmware updated"},
                                   {"at": "Monday 10:00", "what": "First drops reported"}]})
        services.problem_known_error(problem_id=problem.id, actor=agent)
        made += 1

    if SPOOLER not in existing:
        incidents = _incidents(users["requester"], ["Big PDF never prints on floor 2", "Print queue stuck again after a poster"],
                               service=services_.get("Printing"), category=categories.get(("Hardware", "Printer")), words=("print",))
        problem = services.problem_create(
            title=SPOOLER, created_by=agent, impact=3, urgency=2, services=[s for s in [services_.get("Printing")] if s],
            category=categories.get(("Hardware", "Printer")), assignment_group=teams.get("Service Desk"),
            incidents=incidents)
        services.problem_update(problem_id=problem.id, actor=agent,
                                root_cause="The spooler's memory limit is below the size of large jobs.",
                                workaround="Restart the Print Spooler service on print-srv.")
        services.problem_known_error(problem_id=problem.id, actor=agent)
        services.problem_resolve(problem_id=problem.id, actor=agent,
                                 resolution_notes="Raised the spooler memory limit and patched the driver.")
        services.resolve_linked_incidents(problem_id=problem.id, actor=agent)
        made += 1

    if MAIL not in existing:
        incidents = _incidents(users["requester"], ["Search in Outlook does not find yesterday's mail"],
                               service=services_.get("E-mail"), category=categories.get(("Software", "Error")), words=("search", "mail"))
        problem = services.problem_create(
            title=MAIL, created_by=agent, services=[s for s in [services_.get("E-mail")] if s],
            assignment_group=teams.get("Applications"), incidents=incidents)
        services.problem_investigate(problem_id=problem.id, actor=agent)
        services.problem_update(problem_id=problem.id, actor=agent, analysis={
            "five_whys": ["Recent mail is missing from search results", "The search index is behind"],
            "fishbone": {}, "timeline": []})
        made += 1
    return f"{made} problem{'s' if made != 1 else ''} added, {len(existing)} already there"
