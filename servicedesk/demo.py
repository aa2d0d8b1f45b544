"""The kernel's demo data: an organisation, teams, one user per role, services and CIs, and a pool of requesters.
`seed_demo` runs this first, then each installed app's own demo step (servicedesk.registry.DemoStep) in
dependency order. Everything here is idempotent."""


from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from servicedesk.models import ConfigurationItem, Organisation, Profile, Service, Team
from servicedesk.roles import ensure_roles
from servicedesk.services import priority_matrix_ensure_default, user_provision

ORGANISATION = "Northwind Traders"
DEMO_PASSWORD = "Demo-2026!"  # noqa: S105 - documented demo password, printed on purpose

# username, role, first, last, teams
DEMO_USERS = [
    ("requester", "requester", "Rita", "Quester", []),
    ("agent", "agent", "Aaron", "Agent", ["Service Desk"]),
    ("manager", "manager", "Maya", "Manager", ["Service Desk"]),
    ("admin", "admin", "Adam", "Admin", []),
    ("nina", "agent", "Nina", "Netwright", ["Network"]),
    ("omar", "agent", "Omar", "Appsworth", ["Applications"]),
    ("dora", "agent", "Dora", "Baseman", ["Database"]),
]

TEAMS = {
    "Service Desk": "First line: every incident lands here unless a rule routes it.",
    "Network": "LAN, WAN, VPN, Wi-Fi, firewalls.",
    "Applications": "Business applications: ERP, CRM, e-mail, collaboration.",
    "Database": "PostgreSQL and the data platform.",
}

# service, owner team, criticality, [(ci, kind)]
SERVICES = [
    ("E-mail", "Applications", 2, [("mail-01", "server"), ("exchange-online", "cloud")]),
    ("VPN", "Network", 2, [("vpn-gw-1", "network"), ("vpn-gw-2", "network")]),
    ("Wi-Fi", "Network", 3, [("wlc-hq", "network")]),
    ("ERP", "Applications", 1, [("erp-app-1", "application"), ("erp-db", "database")]),
    ("CRM", "Applications", 2, [("crm-saas", "cloud")]),
    ("Checkout", "Applications", 1, [("web-1", "server"), ("web-2", "server"), ("checkout-db", "database")]),
    ("Printing", "Service Desk", 4, [("print-srv", "server")]),
    ("Laptops", "Service Desk", 3, [("laptop-fleet", "workstation")]),
    ("Data warehouse", "Database", 3, [("dwh-pg", "database")]),
]


@transaction.atomic
def seed_base(stdout=None) -> dict:
    """Organisation, teams, users, services, CIs and the priority matrix. Idempotent."""
    ensure_roles()
    priority_matrix_ensure_default()
    organisation, _ = Organisation.objects.get_or_create(name=ORGANISATION, defaults={"email_domain": "example.com"})
    teams = {}
    for name, description in TEAMS.items():
        teams[name], _ = Team.objects.get_or_create(name=name, defaults={"description": description})
    users = {}
    for username, role, first, last, team_names in DEMO_USERS:
        users[username], _ = user_provision(
            username=username, role=role, password=DEMO_PASSWORD, email=f"{username}@example.com",
            first_name=first, last_name=last, teams=team_names,
            organisation=ORGANISATION,
        )
    for name, lead in (("Service Desk", "manager"),):
        Team.objects.filter(name=name, lead__isnull=True).update(lead=users[lead])
    for service_name, owner, criticality, cis in SERVICES:
        service, _ = Service.objects.get_or_create(
            name=service_name, defaults={"owner_team": teams[owner], "criticality": criticality}
        )
        for ci_name, kind in cis:
            ci, _ = ConfigurationItem.objects.get_or_create(
                name=ci_name, defaults={"kind": kind, "owner_team": teams[owner], "criticality": criticality}
            )
            ci.services.add(service)
    return {"organisation": organisation, "teams": teams, "users": users}


def demo_requesters(count: int = 40) -> list:
    """A pool of requesters for generated tickets, created in bulk once."""
    User = get_user_model()
    names = [f"user{n:03d}" for n in range(1, count + 1)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    password = make_password(DEMO_PASSWORD)
    first = ["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo"]
    last = ["Lopez", "Meyer", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Singh", "Tanaka", "Ueda"]
    new = [
        User(username=n, password=password, email=f"{n}@example.com", first_name=first[i % 10],
             last_name=last[(i // 10) % 10])
        for i, n in enumerate(names)
        if n not in existing
    ]
    if new:
        User.objects.bulk_create(new)
        group = ensure_roles()["requester"]
        created = list(User.objects.filter(username__in=[u.username for u in new]))
        group.user_set.add(*created)
        organisation = Organisation.objects.get(name=ORGANISATION)
        Profile.objects.bulk_create([Profile(user=u, organisation=organisation) for u in created],
                                    ignore_conflicts=True)
    return list(User.objects.filter(username__in=names + ["requester"]))


