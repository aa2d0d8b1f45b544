"""seed_demo's catalog: every requester sees it, its forms are sound and take real answers, and seeding again
adds nothing (nor undoes an admin's edit)."""

import pytest
from django.core.management import call_command

from requests_app.demo import seed_catalog
from requests_app.forms_engine import AnswersInvalid, validate_answers
from requests_app.models import CatalogCategory, CatalogField, CatalogItem
from servicedesk.registry import registry

pytestmark = pytest.mark.django_db


def counts():
    return CatalogCategory.objects.count(), CatalogItem.objects.count(), CatalogField.objects.count()


def test_the_demo_catalog_is_seeded_once(admin_user):
    assert seed_catalog() == "4 catalog items and 6 form fields added"
    first = counts()
    assert first == (3, 4, 6)
    laptop = CatalogItem.objects.get(name="New laptop")
    laptop.description = "Edited by an admin"
    laptop.save()
    CatalogField.objects.filter(item=laptop, name="accessories").delete()
    assert seed_catalog() == "0 catalog items and 1 form fields added"
    assert counts() == first
    laptop.refresh_from_db()
    assert laptop.description == "Edited by an admin"


def test_every_demo_definition_passes_admins_checks():
    seed_catalog()
    for obj in [*CatalogCategory.objects.all(), *CatalogItem.objects.all(), *CatalogField.objects.all()]:
        obj.full_clean()


def test_every_requester_sees_the_demo_catalog_as_the_issue_asks(client_for, requester):
    seed_catalog()
    rows = {r["name"]: r for r in client_for(requester).get("/api/v1/catalog/items/").json()["results"]}
    assert list(rows) == ["Reset my password", "Join a group", "Software licence", "New laptop"]
    assert rows["Reset my password"]["automated"] and not rows["Reset my password"]["requires_approval"]
    assert rows["Join a group"]["automated"]
    assert [f["name"] for f in rows["Join a group"]["fields"]] == ["group"]
    assert rows["Join a group"]["fields"][0]["choices"] == ["VPN users", "Finance share", "Project Aurora"]
    assert [(f["name"], f["type"]) for f in rows["Software licence"]["fields"]] == [
        ("product", "choice"), ("justification", "long_text")]
    assert [(f["name"], f["type"]) for f in rows["New laptop"]["fields"]] == [
        ("model", "choice"), ("needed_by", "date"), ("accessories", "multi_choice")]
    assert not rows["New laptop"]["automated"] and rows["New laptop"]["expected_delivery"] == "10 business days"
    assert {r["category"]["name"] for r in rows.values()} == {"Access", "Software", "Hardware"}


def test_the_join_a_group_handler_is_told_the_groups_its_form_offers():
    from django.contrib.auth.models import Group

    seed_catalog()
    join = CatalogItem.objects.get(name="Join a group")
    offered = join.fields.get(name="group").choice_list
    assert join.handler == "group_access" and join.handler_settings == {"groups": offered}
    assert set(Group.objects.filter(name__in=offered).values_list("name", flat=True)) == set(offered)


def test_the_demo_forms_take_real_answers_and_name_bad_ones():
    seed_catalog()
    laptop = CatalogItem.objects.get(name="New laptop")
    cleaned = validate_answers(laptop.fields.all(), {"model": "Standard 14-inch", "needed_by": "2026-03-02",
                                                     "accessories": ["Headset"]})
    assert cleaned == {"model": "Standard 14-inch", "needed_by": "2026-03-02", "accessories": ["Headset"]}
    licence = CatalogItem.objects.get(name="Software licence")
    with pytest.raises(AnswersInvalid) as error:
        validate_answers(licence.fields.all(), {"product": "Photoshop"})
    assert set(error.value.errors) == {"product", "justification"}


def test_seed_demo_runs_the_catalog_step(capsys):
    assert "requests_app" in [s.app for s in registry.demo_steps()]
    call_command("seed_demo", "--quiet-logins")
    call_command("seed_demo", "--quiet-logins")
    assert counts() == (3, 4, 6)
    assert "requests_app: 0 catalog items and 0 form fields added" in capsys.readouterr().out
