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
