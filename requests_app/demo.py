"""The service catalog's demo data: three categories and four items every requester may order, two of them
fulfilled by automated handlers. Registered as this app's `seed_demo` step in requests_app.plugin.

Idempotent: categories, items and form fields are found by name and left alone once they exist, so an admin's
edits survive a re-seed; only what is missing is added."""

from django.contrib.auth.models import Group
from django.db import transaction

from requests_app.models import Audience, CatalogCategory, CatalogField, CatalogItem, DeliveryUnit
from servicedesk.models import Team

# name, order, icon, description
CATEGORIES = [
    ("Access", 10, "i-lock", "Passwords, accounts and access to shared resources."),
    ("Software", 20, "i-code", "Licences and installation of software."),
    ("Hardware", 30, "i-settings", "Laptops, screens and accessories."),
]

# The groups the "Join a group" item offers (its handler may add people to these and no others).
JOINABLE_GROUPS = ["VPN users", "Finance share", "Project Aurora"]

# Each item: its attributes, then its form fields as (name, label, type, required, help text, choices, extra).
ITEMS = [
    {
        "name": "Reset my password", "category": "Access", "order": 10, "icon": "i-lock",
        "description": "Get an e-mail with a link to choose a new password for your account.",
        "team": "Service Desk", "handler": "password_reset", "handler_settings": {},
        "delivery": (15, DeliveryUnit.MINUTES),
        "fields": [],
    },
    {
        "name": "Join a group", "category": "Access", "order": 20, "icon": "i-users",
        "description": "Become a member of a group that opens a shared resource to you (VPN, shares, projects).",
        "team": "Service Desk", "handler": "group_access", "handler_settings": {"groups": JOINABLE_GROUPS},
        "delivery": (15, DeliveryUnit.MINUTES),
        "fields": [
            ("group", "Group", "choice", True, "The group you need to join.", JOINABLE_GROUPS, {}),
        ],
    },
    {
        "name": "Software licence", "category": "Software", "order": 10, "icon": "i-code",
        "description": "A licence for a product we do not install for everyone. Your manager approves it.",
        "team": "Applications", "handler": "", "handler_settings": {},
        "delivery": (3, DeliveryUnit.BUSINESS_DAYS),
        "fields": [
            ("product", "Product", "choice", True, "",
             ["Adobe Acrobat Pro", "Microsoft Visio", "Tableau Desktop", "JetBrains IntelliJ IDEA"], {}),
            ("justification", "Why do you need it?", "long_text", True,
             "What you will use it for; it helps the approver decide.", [], {"max_length": 2000}),
        ],
    },
    {
        "name": "New laptop", "category": "Hardware", "order": 10, "icon": "i-settings",
        "description": "A new or replacement laptop, set up and ready to sign in to.",
        "team": "Service Desk", "handler": "", "handler_settings": {},
        "delivery": (10, DeliveryUnit.BUSINESS_DAYS),
        "fields": [
            ("model", "Model", "choice", True, "Standard suits most people; Performance is for heavy workloads.",
             ["Standard 14-inch", "Performance 16-inch", "Ultralight 13-inch"], {}),
            ("needed_by", "Needed by", "date", True, "The day you need it at the latest.", [], {}),
            ("accessories", "Accessories", "multi_choice", False, "Anything else you need with it.",
             ["Docking station", "Second monitor", "Headset", "Backpack"], {}),
        ],
    },
]


@transaction.atomic
def seed_catalog() -> str:
    for name in JOINABLE_GROUPS:
        Group.objects.get_or_create(name=name)
    categories = {}
    for name, order, icon, description in CATEGORIES:
        categories[name], _ = CatalogCategory.objects.get_or_create(
            name=name, defaults={"order": order, "icon": icon, "description": description})
    made_items = made_fields = 0
    for spec in ITEMS:
        team, _ = Team.objects.get_or_create(name=spec["team"])
        amount, unit = spec["delivery"]
        item, created = CatalogItem.objects.get_or_create(name=spec["name"], defaults={
            "category": categories[spec["category"]], "order": spec["order"], "icon": spec["icon"],
            "description": spec["description"], "audience": Audience.EVERYONE, "fulfilment_team": team,
            "handler": spec["handler"], "handler_settings": spec["handler_settings"],
            "delivery_amount": amount, "delivery_unit": unit,
        })
        made_items += created
        for order, (name, label, kind, required, help_text, choices, extra) in enumerate(spec["fields"], 1):
            _, created = CatalogField.objects.get_or_create(item=item, name=name, defaults={
                "order": order * 10, "label": label, "type": kind, "required": required, "help_text": help_text,
                "choices": "\n".join(choices), **extra,
            })
            made_fields += created
    return f"{made_items} catalog items and {made_fields} form fields added"


# The approval policies of the demo catalog (added only to items that have none, so an admin's edits survive).
APPROVAL_FALLBACK_GROUP = "Approval desk"  # decides when a level names nobody, e.g. a requester with no manager
APPROVAL_FALLBACK_MEMBERS = ["manager"]
APPROVER_GROUP = "IT approvers"
APPROVER_MEMBERS = ["nina", "omar"]
POLICIES = {
    "Software licence": [("manager", None, "any")],
    "New laptop": [("manager", None, "any"), ("group", APPROVER_GROUP, "any")],
}
DEMO_MANAGERS = {"requester": "manager"}  # Rita's manager is Maya


@transaction.atomic
def seed_approvals() -> str:
    """Managers for the demo people, the approval policies above, and one request of Rita's waiting for
    Maya's approval so that the inboxes show something."""
    from django.contrib.auth import get_user_model

    from requests_app.models import ApprovalLevel, ServiceRequest
    from requests_app.services import request_submit
    from servicedesk.models import Profile

    User = get_user_model()
    people = {u.username: u for u in User.objects.filter(
        username__in=[*APPROVAL_FALLBACK_MEMBERS, *APPROVER_MEMBERS, *DEMO_MANAGERS, *DEMO_MANAGERS.values()])}
    fallback, _ = Group.objects.get_or_create(name=APPROVAL_FALLBACK_GROUP)
    fallback.user_set.add(*[people[n] for n in APPROVAL_FALLBACK_MEMBERS if n in people])
    approvers, _ = Group.objects.get_or_create(name=APPROVER_GROUP)
    approvers.user_set.add(*[people[n] for n in APPROVER_MEMBERS if n in people])
    for person, manager in DEMO_MANAGERS.items():
        if person in people and manager in people:
            Profile.objects.filter(user=people[person], manager__isnull=True).update(manager=people[manager])
    policies = 0
    for name, levels in POLICIES.items():
        item = CatalogItem.objects.filter(name=name).first()
        if item is None or item.approval_levels.exists():
            continue
        for order, (kind, group, mode) in enumerate(levels, 1):
            ApprovalLevel.objects.create(item=item, order=order * 10, kind=kind, mode=mode,
                                         group=approvers if group == APPROVER_GROUP else None)
        if item.approval_fallback_group_id is None:
            item.approval_fallback_group = fallback
            item.save(update_fields=["approval_fallback_group"])
        policies += 1
    seeded = 0
    licence = CatalogItem.objects.filter(name="Software licence").first()
    rita = people.get("requester")
    if licence is not None and rita is not None and not ServiceRequest.objects.filter(item=licence,
                                                                                      requester=rita).exists():
        request_submit(item=licence, requester=rita, created_by=rita, answers={
            "product": "Microsoft Visio", "justification": "Drawing the new office floor plans for the move."})
        seeded = 1
    return f"{policies} approval policies and {seeded} request waiting for approval added"


def seed_requests() -> str:
    """A few orders by the demo requesters so the workspace's request queues and the portal's popular items
    are not empty: a laptop approved through both levels and now with the Service Desk, another waiting at
    the first level (user003 has no manager: it falls to the fallback group), and a group joined by the
    automated handler (done by the worker once the local run starts). Only when none of them exist yet."""
    from datetime import timedelta

    from django.utils import timezone

    from requests_app.approvals import approval_decide
    from requests_app.models import Approval, ServiceRequest
    from requests_app.services import request_submit
    from servicedesk.demo import demo_requesters

    people = {u.username: u for u in demo_requesters() if u.username in ("user001", "user002", "user003")}
    items = {i.name: i for i in CatalogItem.objects.filter(name__in=["New laptop", "Join a group"])}
    if len(people) < 3 or len(items) < 2 or ServiceRequest.objects.filter(requester__in=people.values()).exists():
        return "no demo orders added"
    needed_by = (timezone.localdate() + timedelta(days=21)).isoformat()
    laptop = {"model": "Performance 16-inch", "needed_by": needed_by, "accessories": ["Docking station"]}
    approved = request_submit(item=items["New laptop"], answers=laptop, requester=people["user001"],
                              created_by=people["user001"])
    for _ in range(2):  # both levels: the fallback group (no manager), then IT approvers
        pending = Approval.objects.filter(request=approved, state=Approval.State.PENDING).select_related("approver")
        first = pending.first()
        if first is None:
            break
        approval_decide(approval_id=first.id, actor=first.approver, approve=True, comment="Approved for the demo")
    request_submit(item=items["New laptop"], requester=people["user003"], created_by=people["user003"],
                   answers={**laptop, "model": "Ultralight 13-inch", "accessories": []})
    request_submit(item=items["Join a group"], answers={"group": "Project Aurora"}, requester=people["user002"],
                   created_by=people["user002"])
    return "3 demo orders added"


REQUEST_POLICY = "Service requests: office hours"
# priority: (first response = fulfilment starts, resolution = fulfilled), in business minutes
REQUEST_TARGETS = {1: (60, 8 * 60), 2: (2 * 60, 16 * 60), 3: (4 * 60, 24 * 60), 4: (8 * 60, 40 * 60),
                   5: (16 * 60, 80 * 60)}


def seed_request_policy() -> str:
    """An SLA policy for service requests on the office-hours calendar (P4, the default priority: fulfilled
    within 5 business days), paused while a request waits for approval, so demo requests have clocks."""
    from sla.defaults import OFFICE
    from sla.models import BusinessCalendar, EscalationStep, SlaPolicy, SlaTarget

    calendar = BusinessCalendar.objects.filter(name=OFFICE).first()
    if calendar is None or SlaPolicy.objects.filter(name=REQUEST_POLICY).exists():
        return "no request SLA policy added"
    policy = SlaPolicy.objects.create(name=REQUEST_POLICY, order=30, ticket_type="request", calendar=calendar,
                                      warning_percent=75, pause_statuses=["pending_approval"])
    SlaTarget.objects.bulk_create([SlaTarget(policy=policy, priority=p, first_response_minutes=r, resolution_minutes=s)
                                   for p, (r, s) in REQUEST_TARGETS.items()])
    EscalationStep.objects.bulk_create([EscalationStep(policy=policy, when="warning", action="notify_assignee"),
                                        EscalationStep(policy=policy, when="breach", action="notify_team_lead")])
    return f"SLA policy {REQUEST_POLICY!r} added"
