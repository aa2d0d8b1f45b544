"""The catalog's models and admin: definitions are checked with messages naming the field at fault, and
admin's changes land in the audit trail."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from requests_app.models import CatalogCategory, CatalogField, CatalogItem
from servicedesk.models import AuditLog, Organisation, Team
from tests.requests_app.factories import category, item

pytestmark = pytest.mark.django_db


def clean_errors(obj) -> dict:
    with pytest.raises(ValidationError) as error:
        obj.full_clean()
    return error.value.message_dict


def test_a_field_definition_is_checked_naming_the_field():
    laptop = item("New laptop")
    assert set(clean_errors(CatalogField(item=laptop, name="model", label="Model", type="choice"))) == {"choices"}
    assert set(clean_errors(CatalogField(item=laptop, name="code", label="Code", type="text", regex="(a"))) == {
        "regex"}
    assert set(clean_errors(CatalogField(item=laptop, name="Needed by", label="Needed", type="date"))) == {"name"}
    errors = clean_errors(CatalogField(item=laptop, name="n", label="N", type="number", min_value=5, max_value=2))
    assert errors == {"max_value": ["The maximum must not be below the minimum."]}
    CatalogField(item=laptop, name="model", label="Model", type="choice", choices="A\nB").full_clean()


def test_field_names_are_unique_per_item_in_the_database():
    laptop = item("New laptop", fields=[{"name": "model", "label": "Model", "type": "text"}])
    item("Monitor", fields=[{"name": "model", "label": "Model", "type": "text"}])  # another item: allowed
    with pytest.raises(IntegrityError), transaction.atomic():
        CatalogField.objects.create(item=laptop, name="model", label="Again", type="text")
    assert clean_errors(CatalogField(item=laptop, name="model", label="Again", type="text"))


def test_an_item_is_checked_naming_the_field():
    sd = Team.objects.create(name="Service Desk")
    base = {"name": "Laptop", "category": category(), "fulfilment_team": sd}
    assert clean_errors(CatalogItem(**base, delivery_amount=3)) == {
        "delivery_unit": ["Give both the expected delivery and its unit, or neither."]}
    assert "delivery_amount" in clean_errors(CatalogItem(**base, delivery_unit="days"))
    assert set(clean_errors(CatalogItem(**base, icon="i-no-such-icon"))) == {"icon"}
    assert set(clean_errors(CatalogItem(**base, icon="Lock"))) == {"icon"}
    assert set(clean_errors(CatalogItem(**base, handler="Password Reset"))) == {"handler"}
    assert set(clean_errors(CatalogItem(**base, handler="group_access", handler_settings=["x"]))) == {
        "handler_settings"}
    assert set(clean_errors(CatalogItem(**base, handler_settings={"group": "x"}))) == {"handler_settings"}
    assert set(clean_errors(CatalogItem(name="Laptop", category=category()))) == {"fulfilment_team"}
    from sla.models import SlaPolicy

    incidents_policy = SlaPolicy.objects.filter(ticket_type="incident").first()
    assert clean_errors(CatalogItem(**base, sla_policy=incidents_policy))["sla_policy"] == [
        f"{incidents_policy.name} is a policy for incident tickets: choose one for service requests."]
    Group.objects.create(name="VPN users")  # group_access checks that its groups exist
    CatalogItem(**base, icon="i-lock", handler="group_access", handler_settings={"groups": ["VPN users"]},
                delivery_amount=2, delivery_unit="business_days").full_clean()


def test_the_database_refuses_a_delivery_without_its_unit():
    with pytest.raises(IntegrityError), transaction.atomic():
        item(delivery_amount=3, delivery_unit="")


@pytest.mark.parametrize("amount, unit, text", [
    (1, "hours", "1 hour"), (4, "business_hours", "4 business hours"), (3, "business_days", "3 business days"),
    (1, "business_days", "1 business day"), (15, "minutes", "15 minutes"), (None, "", ""),
])
def test_the_expected_delivery_reads_as_people_say_it(amount, unit, text):
    assert CatalogItem(delivery_amount=amount, delivery_unit=unit).expected_delivery == text


def test_a_category_icon_must_exist():
    assert set(clean_errors(CatalogCategory(name="Access", icon="i-nope"))) == {"icon"}
    CatalogCategory(name="Access", icon="i-lock").full_clean()


# --- admin -------------------------------------------------------------------------------------------------

def _item_post(**overrides) -> dict:
    data = {
        "name": "New laptop", "category": category().id, "order": 100, "icon": "", "description": "",
        "active": "on", "audience": "everyone", "fulfilment_team": Team.objects.get_or_create(name="Desk")[0].id,
        "handler": "", "handler_settings": "{}", "sla_policy": "", "delivery_amount": "10",
        "delivery_unit": "business_days",
        "fields-TOTAL_FORMS": "0", "fields-INITIAL_FORMS": "0", "fields-MIN_NUM_FORMS": "0",
        "fields-MAX_NUM_FORMS": "1000",
        "approval_levels-TOTAL_FORMS": "0", "approval_levels-INITIAL_FORMS": "0",
        "approval_levels-MIN_NUM_FORMS": "0", "approval_levels-MAX_NUM_FORMS": "1000",
    }
    rows = overrides.pop("rows", [])
    for index, row in enumerate(rows):
        base = {"order": index, "name": "", "label": "", "type": "text", "help_text": "", "choices": "",
                "min_value": "", "max_value": "", "max_length": "", "regex": ""}
        for key, value in {**base, **row}.items():
            data[f"fields-{index}-{key}"] = value
    data["fields-TOTAL_FORMS"] = str(len(rows))
    data.update(overrides)
    return data


def _errors(response) -> tuple[dict, list[dict]]:
    assert response.status_code == 200, "the form was accepted"
    form = response.context["adminform"].form
    inline = response.context["inline_admin_formsets"][0].formset
    return form.errors, [f.errors for f in inline.forms]


def test_admin_adds_an_item_with_its_form_and_audits_it(admin_client):
    response = admin_client.post("/admin/requests_app/catalogitem/add/", _item_post(rows=[
        {"name": "model", "label": "Model", "type": "choice", "required": "on", "choices": "Standard\nPerformance"},
        {"name": "needed_by", "label": "Needed by", "type": "date"},
    ]))
    assert response.status_code == 302, response.context and _errors(response)
    laptop = CatalogItem.objects.get(name="New laptop")
    assert [(f.name, f.type, f.choice_list) for f in laptop.fields.all()] == [
        ("model", "choice", ["Standard", "Performance"]), ("needed_by", "date", [])]
    audit = AuditLog.objects.get(action="catalogitem.added")
    assert audit.changes["after"]["name"] == "New laptop"
    assert sorted(audit.changes["after"]["form fields"]) == ["model (Choice)", "needed_by (Date)"]


def test_admin_names_each_bad_form_field(admin_client):
    response = admin_client.post("/admin/requests_app/catalogitem/add/", _item_post(rows=[
        {"name": "model", "label": "Model", "type": "choice"},
        {"name": "code", "label": "Code", "type": "text", "regex": "[a-"},
        {"name": "model", "label": "Model again", "type": "text"},
        {"name": "qty", "label": "Quantity", "type": "number", "min_value": "5", "max_value": "1"},
    ]))
    _, rows = _errors(response)
    assert "choices" in rows[0] and "choice" in rows[0]["choices"][0]
    assert "regex" in rows[1] and "regular expression" in rows[1]["regex"][0]
    assert rows[2]["name"] == ["The name 'model' is used by another field of this item."]
    assert "max_value" in rows[3]
    assert not CatalogItem.objects.filter(name="New laptop").exists()


def test_admin_needs_the_organisations_or_groups_an_item_is_for(admin_client):
    form_errors, _ = _errors(admin_client.post("/admin/requests_app/catalogitem/add/",
                                               _item_post(audience="organisations")))
    assert "organisations" in form_errors
    form_errors, _ = _errors(admin_client.post("/admin/requests_app/catalogitem/add/", _item_post(audience="groups")))
    assert "groups" in form_errors
    form_errors, _ = _errors(admin_client.post("/admin/requests_app/catalogitem/add/",
                                               _item_post(delivery_unit="")))
    assert "delivery_unit" in form_errors
    org = Organisation.objects.create(name="Contoso")
    group = Group.objects.create(name="Finance")
    response = admin_client.post("/admin/requests_app/catalogitem/add/",
                                 _item_post(audience="groups", groups=[group.id], organisations=[org.id]))
    assert response.status_code == 302
    assert list(CatalogItem.objects.get(name="New laptop").groups.all()) == [group]


def test_admin_pages_of_the_catalog_render(admin_client):
    laptop = item("New laptop", fields=[{"name": "model", "label": "Model", "type": "choice", "choices": "A"}])
    assert admin_client.get("/admin/requests_app/catalogitem/").status_code == 200
    page = admin_client.get(f"/admin/requests_app/catalogitem/{laptop.id}/change/")
    assert page.status_code == 200 and 'name="fields-0-choices"' in page.content.decode()
    assert admin_client.get("/admin/requests_app/catalogcategory/").status_code == 200
