"""Ordering in the portal: /portal/catalog/ (what the person may order, by category, in constant queries),
an item's order form drawn from its fields and checked on the server, the "Request something" tile, the
popular requests card and the catalog's part of the portal search box."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from requests_app.models import ServiceRequest
from requests_app.selectors import catalog_popular, catalog_search
from requests_app.services import request_submit
from servicedesk.registry import registry
from tests.requests_app.factories import category, item

pytestmark = pytest.mark.django_db

EVERY_TYPE = [
    {"name": "reason", "label": "Why do you need it", "type": "text", "required": True, "help_text": "One line"},
    {"name": "details", "label": "Details", "type": "long_text"},
    {"name": "seats", "label": "Seats", "type": "number", "required": True, "min_value": 1, "max_value": 10},
    {"name": "edition", "label": "Edition", "type": "choice", "required": True, "choices": "Standard\nPro"},
    {"name": "addons", "label": "Add-ons", "type": "multi_choice", "choices": "Fonts\nPlugins"},
    {"name": "needed_by", "label": "Needed by", "type": "date"},
    {"name": "manager", "label": "Your manager", "type": "user"},
    {"name": "licence_ok", "label": "I accept the licence", "type": "boolean", "required": True},
    {"name": "training", "label": "Book a training", "type": "boolean"},
]


def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_catalog_lists_by_category_only_what_the_person_may_order(client, requester):
    item("VPN access", category=category("Access", order=1), description="Work from home")
    item("Laptop", category=category("Hardware", order=2), delivery_amount=3, delivery_unit="business_days")
    item("Admin rights", audience="groups", groups=[Group.objects.create(name="Admins")])
    item("Retired thing", active=False)
    html = signed_in(client, requester).get("/portal/catalog/").content.decode()
    assert html.index("Access") < html.index("VPN access") < html.index("Hardware") < html.index("Laptop")
    assert "Usually delivered in 3 business days" in html
    assert "Admin rights" not in html and "Retired thing" not in html


def test_the_catalog_page_costs_the_same_queries_for_3_or_30_items(client, requester):
    client = signed_in(client, requester)
    for n in range(3):
        item(f"Thing {n}", category=category(f"Cat {n % 2}"))
    client.get("/portal/catalog/")
    with CaptureQueriesContext(connection) as few:
        client.get("/portal/catalog/")
    for n in range(3, 30):
        item(f"Thing {n}", category=category(f"Cat {n % 4}"))
    with CaptureQueriesContext(connection) as many:
        assert client.get("/portal/catalog/").content.decode().count('data-testid="catalog-item"') == 30
    assert len(many) == len(few)


def test_the_order_form_draws_every_field_type_with_labels_tied_to_inputs(client, requester):
    licence = item("Design software", fields=EVERY_TYPE, delivery_amount=2, delivery_unit="days")
    html = signed_in(client, requester).get(f"/portal/catalog/{licence.id}/").content.decode()
    assert "Usually delivered in 2 days" in html
    for field_id in ("f_reason", "f_details", "f_seats", "f_edition", "f_needed_by", "f_manager", "f_training"):
        assert f'for="{field_id}"' in html and f'id="{field_id}"' in html
    assert '<textarea id="f_details"' in html and '<select id="f_edition"' in html
    assert 'type="date"' in html and 'name="f_addons" value="Plugins"' in html
    assert 'name="f_licence_ok" value="no"' in html  # a required yes/no is a pair of radios
    assert html.count('aria-required="true"') == 3 and 'id="f_reason-help"' in html


def test_bad_answers_are_named_next_to_each_field_and_nothing_is_stored(client, requester):
    licence = item("Design software", fields=EVERY_TYPE)
    response = signed_in(client, requester).post(f"/portal/catalog/{licence.id}/", {
        "f_reason": "", "f_seats": "40", "f_edition": "Ultimate", "f_needed_by": "2026-02-30",
        "f_manager": "nobody-here", "f_details": "kept as typed",
    })
    assert response.status_code == 400
    html = response.content.decode()
    for name in ("reason", "seats", "edition", "needed_by", "manager", "licence_ok"):
        assert f'data-testid="error-{name}"' in html
    assert "At most 10." in html and "kept as typed" in html and 'aria-invalid="true"' in html
    assert not ServiceRequest.objects.exists()


def test_good_answers_order_the_item_and_lead_to_the_request_page(client, requester, make_user):
    make_user("manager", username="mona")
    licence = item("Design software", fields=EVERY_TYPE)
    response = signed_in(client, requester).post(f"/portal/catalog/{licence.id}/", {
        "f_reason": "New designer", "f_seats": "2", "f_edition": "Pro", "f_addons": ["Plugins", "Fonts"],
        "f_needed_by": "2027-01-15", "f_manager": "mona", "f_licence_ok": "yes",
    })
    made = ServiceRequest.objects.get()
    assert response.status_code == 302 and response.url == f"/portal/requests/{made.number}/"
    assert made.requester == requester and made.answers == {
        "reason": "New designer", "details": "", "seats": 2, "edition": "Pro", "addons": ["Fonts", "Plugins"],
        "needed_by": "2027-01-15", "manager": "mona", "licence_ok": True, "training": False,
    }


def test_an_item_the_person_may_not_order_is_404(client, requester):
    hidden = item("Admin rights", audience="groups", groups=[Group.objects.create(name="Admins")])
    client = signed_in(client, requester)
    assert client.get(f"/portal/catalog/{hidden.id}/").status_code == 404
    assert client.post(f"/portal/catalog/{hidden.id}/", {}).status_code == 404
    assert not ServiceRequest.objects.exists()


def test_the_request_something_tile_leads_to_the_catalog(client, requester):
    tile = next(t for t in registry.tiles if t.key == "catalog")
    assert tile.title == "Request something"
    html = signed_in(client, requester).get("/portal/").content.decode()
    assert 'data-testid="catalog-button"' in html and 'href="/portal/catalog/"' in html


def test_popular_items_are_the_most_ordered_of_the_last_90_days_that_the_person_may_order(
        requester, other_requester, django_assert_num_queries):
    mouse, dock, old = item("Mouse"), item("Dock"), item("Fax machine")
    admins = Group.objects.create(name="Admins")
    secret = item("Admin rights", audience="groups", groups=[admins])
    other_requester.groups.add(admins)
    long_ago = timezone.now() - timedelta(days=120)
    for who, what, when in [(requester, mouse, None), (other_requester, mouse, None), (requester, dock, None),
                            (requester, old, long_ago), (requester, old, long_ago), (requester, old, long_ago),
                            (other_requester, secret, None), (other_requester, secret, None),
                            (other_requester, secret, None)]:
        request_submit(item=what, answers={}, requester=who, created_by=who, now=when)
    with django_assert_num_queries(2):  # everyone's orders per item, then the items this person may order
        popular = catalog_popular(requester)
        assert [(i.name, i.orders, i.category.name) for i in popular] == [("Mouse", 2, "Access"),
                                                                          ("Dock", 1, "Access")]


def test_the_home_page_shows_popular_requests_only_when_something_was_ordered(client, requester):
    client = signed_in(client, requester)
    mouse = item("Mouse")
    assert 'data-testid="popular"' not in client.get("/portal/").content.decode()
    request_submit(item=mouse, answers={}, requester=requester, created_by=requester)
    html = client.get("/portal/").content.decode()
    assert 'data-testid="popular-item"' in html and f'href="/portal/catalog/{mouse.id}/"' in html


def test_catalog_search_matches_every_word_in_name_or_description_name_first(requester, django_assert_num_queries):
    item("VPN access", description="Reach the office network from home")
    item("Home office chair", description="Ergonomic")
    item("Network printer", description="Print from home, 100% ready")
    item("Admin rights", audience="groups", groups=[Group.objects.create(name="Admins")],
         description="home network")
    with django_assert_num_queries(1):
        assert [i.name for i in catalog_search(requester, "home")] == [
            "Home office chair", "Network printer", "VPN access"]
    assert [i.name for i in catalog_search(requester, "NETWORK home")] == ["Network printer", "VPN access"]
    assert [i.name for i in catalog_search(requester, "100%")] == ["Network printer"]
    assert [i.name for i in catalog_search(requester, "50%")] == []
    assert list(catalog_search(requester, "  ")) == []


def test_catalog_search_uses_the_trigram_index_on_postgresql(requester):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'catalog_item_search_trgm'")
        assert "gin_trgm_ops" in cursor.fetchone()[0]


def test_the_popular_counts_are_kept_for_everyone_for_a_while(settings, requester, other_requester,
                                                               django_assert_num_queries):
    """PORTAL_POPULAR_SECONDS (on outside the suite): everyone's orders per item are counted once, in Redis for
    every web process, then each person's page reads only the items they may order."""
    from django.core.cache import cache

    settings.PORTAL_POPULAR_SECONDS = 600
    cache.delete("catalog-order-counts:90")
    mouse, dock = item("Mouse"), item("Dock")
    request_submit(item=mouse, answers={}, requester=requester, created_by=requester)
    try:
        with django_assert_num_queries(2):
            assert [(i.name, i.orders) for i in catalog_popular(requester)] == [("Mouse", 1)]
        request_submit(item=dock, answers={}, requester=requester, created_by=requester)
        request_submit(item=dock, answers={}, requester=other_requester, created_by=other_requester)
        with django_assert_num_queries(1):  # the counts come from the cache: the new orders are not in them yet
            assert [(i.name, i.orders) for i in catalog_popular(other_requester)] == [("Mouse", 1)]
        cache.delete("catalog-order-counts:90")  # as the timeout would
        assert [(i.name, i.orders) for i in catalog_popular(other_requester)] == [("Dock", 2), ("Mouse", 1)]
    finally:
        cache.delete("catalog-order-counts:90")
