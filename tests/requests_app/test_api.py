"""GET /api/v1/catalog/items/: only the items the caller may order (everyone, their organisation, their
groups; active ones), in the contract's shape, in a constant number of queries, documented in the schema."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from servicedesk.models import Organisation, Profile
from tests.requests_app.factories import category, item

pytestmark = pytest.mark.django_db

URL = "/api/v1/catalog/items/"


def names(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["name"] for row in response.json()["results"]}


@pytest.fixture
def catalog():
    contoso = Organisation.objects.create(name="Contoso")
    fabrikam = Organisation.objects.create(name="Fabrikam")
    finance = Group.objects.create(name="Finance")
    return {
        "everyone": item("Reset my password"),
        "contoso": item("Contoso VPN token", audience="organisations", organisations=[contoso]),
        "fabrikam": item("Fabrikam badge", audience="organisations", organisations=[fabrikam]),
        "finance": item("Payroll access", audience="groups", groups=[finance]),
        "retired": item("Fax machine", active=False),
        "contoso_org": contoso, "finance_group": finance,
    }


def test_it_needs_a_signed_in_caller(api_client, catalog):
    assert api_client.get(URL).status_code == 401
    assert api_client.get(f"{URL}{catalog['everyone'].id}/").status_code == 401


def test_a_requester_sees_only_items_for_everyone(client_for, requester, catalog):
    assert names(client_for(requester).get(URL)) == {"Reset my password"}


def test_people_of_an_organisation_see_its_items(client_for, requester, catalog):
    Profile.objects.filter(user=requester).update(organisation=catalog["contoso_org"])
    assert names(client_for(requester).get(URL)) == {"Reset my password", "Contoso VPN token"}


def test_members_of_a_group_see_its_items_once(client_for, requester, catalog):
    requester.groups.add(catalog["finance_group"])
    other = Group.objects.create(name="Payroll team")
    catalog["finance"].groups.add(other)
    requester.groups.add(other)  # two of the item's groups: still listed once
    response = client_for(requester).get(URL)
    assert sorted(row["name"] for row in response.json()["results"]) == ["Payroll access", "Reset my password"]
    assert response.json()["count"] == 2


def test_an_item_for_organisations_is_not_for_people_of_none(client_for, requester, catalog):
    """A person with no organisation must not match an item whose organisations list is empty or not."""
    item("Orphan", audience="organisations")
    assert names(client_for(requester).get(URL)) == {"Reset my password"}


def test_admins_and_agents_follow_the_same_rule(client_for, agent, admin_user, catalog):
    assert names(client_for(agent).get(URL)) == {"Reset my password"}
    assert names(client_for(admin_user).get(URL)) == {"Reset my password"}


def test_one_item_answers_404_when_the_caller_may_not_order_it(client_for, requester, catalog):
    api = client_for(requester)
    assert api.get(f"{URL}{catalog['everyone'].id}/").status_code == 200
    for key in ("contoso", "fabrikam", "finance", "retired"):
        assert api.get(f"{URL}{catalog[key].id}/").status_code == 404, key
    assert api.get(f"{URL}999999/").status_code == 404
    assert api.get(f"{URL}abc/").status_code == 404


def test_it_answers_the_contracts_fields(client_for, requester):
    laptop = item(
        "New laptop", description="Set up and ready.", handler="", delivery_amount=10, delivery_unit="business_days",
        category=category("Hardware"),
        fields=[
            {"name": "model", "label": "Model", "type": "choice", "required": True, "choices": "Standard\nPerformance",
             "help_text": "Pick one."},
            {"name": "needed_by", "label": "Needed by", "type": "date"},
        ])
    item("Reset my password", handler="password_reset", delivery_amount=15, delivery_unit="minutes")
    rows = client_for(requester).get(URL).json()["results"]
    assert [r["name"] for r in rows] == ["Reset my password", "New laptop"]  # Access (first made) then Hardware
    hardware = category("Hardware")
    assert rows[1] == {
        "id": laptop.id, "name": "New laptop", "description": "Set up and ready.",
        "category": {"id": hardware.id, "name": "Hardware"},
        "fields": [
            {"name": "model", "label": "Model", "type": "choice", "required": True,
             "choices": ["Standard", "Performance"], "help_text": "Pick one."},
            {"name": "needed_by", "label": "Needed by", "type": "date", "required": False, "choices": [],
             "help_text": ""},
        ],
        "requires_approval": False, "automated": False, "expected_delivery": "10 business days",
    }
    assert rows[0]["automated"] is True and rows[0]["expected_delivery"] == "15 minutes"
    assert rows[0]["fields"] == []


def test_it_filters_by_category(client_for, requester):
    item("Reset my password")
    laptop = item("New laptop", category=category("Hardware"))
    response = client_for(requester).get(URL, {"category": laptop.category_id})
    assert names(response) == {"New laptop"}


def _count_list_queries(api) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(URL, {"page_size": 200})
    assert response.status_code == 200
    return len(queries), response.json()["count"]


def _make_items(start, count, org, group):
    fields = [{"name": "what", "label": "What", "type": "choice", "choices": "A\nB"},
              {"name": "why", "label": "Why", "type": "long_text"}]
    for n in range(start, start + count):
        kind = n % 3
        item(f"Item {n:03}", category=category(f"Category {n % 4}"), fields=fields,
             audience=["everyone", "organisations", "groups"][kind],
             organisations=[org] if kind == 1 else [], groups=[group] if kind == 2 else [])


def test_the_list_costs_the_same_queries_for_3_items_and_for_60(client_for, requester):
    org = Organisation.objects.create(name="Contoso")
    group = Group.objects.create(name="Finance")
    Profile.objects.filter(user=requester).update(organisation=org)
    requester.groups.add(group)
    api = client_for(requester)
    _make_items(0, 3, org, group)
    small, small_count = _count_list_queries(api)
    _make_items(3, 57, org, group)
    large, large_count = _count_list_queries(api)
    assert (small_count, large_count) == (3, 60)
    assert small == large
    assert large <= 5, large  # token auth (2), the count, the items, their fields


def test_the_schema_documents_the_catalog(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/api/v1/catalog/items/", "/api/v1/catalog/items/{id}/"} <= set(schema["paths"])
    operation = schema["paths"]["/api/v1/catalog/items/"]["get"]
    assert operation["tags"] == ["catalog"]
    assert not [m for m in schema["paths"]["/api/v1/catalog/items/"] if m not in ("get", "parameters")]
    components = schema["components"]["schemas"]
    assert set(components["CatalogItem"]["properties"]) == {
        "id", "name", "description", "category", "fields", "requires_approval", "automated", "expected_delivery"}
    field = components["FormField"]["properties"]
    assert set(field) == {"name", "label", "type", "required", "choices", "help_text"}
    assert field["choices"]["type"] == "array"
    assert "catalog" in [tag["name"] for tag in schema["tags"]]
