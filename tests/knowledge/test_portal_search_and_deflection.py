"""The portal's search box (the kernel's PortalSearchProvider registry: articles and catalog items), and
deflection on the report page: matching articles suggested as the title is typed, "This solved it" leaves
without a ticket, and a ticket raised after opening a suggestion is recorded as such."""

import pytest

from incidents.models import Incident
from knowledge.models import Deflection
from knowledge.services import deflection_open
from servicedesk.registry import registry
from servicedesk.workspace import portal_search
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db


@pytest.fixture
def vpn(article_factory):
    return article_factory("Connect to the VPN from home", "Open the VPN client and sign in with your account.")


def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_registry_searches_articles_and_catalog_items_the_person_may_use(vpn, article_factory, requester):
    article_factory("VPN for agents only", "Internal VPN runbook", audience="agents")
    article_factory("VPN draft", "Not yet", status="draft")
    item("VPN access token", description="A hardware key")
    groups = {g.provider.key: g.hits for g in portal_search(requester, "vpn")}
    assert [h.title for h in groups["knowledge"]] == ["Connect to the VPN from home"]
    assert [h.title for h in groups["catalog"]] == ["VPN access token"]
    assert groups["knowledge"][0].solved_url == f"/portal/kb/{vpn.slug}/solved/"
    assert [p.key for p in registry.portal_searches if p.answers] == ["knowledge"]
    assert portal_search(requester, "   ") == []


def test_the_search_box_answers_htmx_with_the_results_alone_and_plain_get_with_a_page(client, vpn, requester):
    item("VPN access token")
    client = signed_in(client, requester)
    response = client.get("/portal/search/", {"q": "vpn"}, HTTP_HX_REQUEST="true")
    assert "HX-Request" in response["Vary"]
    partial = response.content.decode()
    assert partial.lstrip().startswith('<p id="portal-search-status" class="sr-only" role="status" '
                                       'hx-swap-oob="true">2 results for “vpn”</p>')
    assert "Connect to the VPN from home" in partial and "VPN access token" in partial
    page = client.get("/portal/search/", {"q": "vpn"}).content.decode()
    assert "<!doctype html>" in page and 'data-found="2"' in page and 'value="vpn"' in page


def test_the_home_page_search_box_says_what_it_searches_and_is_wired_to_htmx(client, requester):
    html = signed_in(client, requester).get("/portal/").content.decode()
    assert '<label for="portal-q" class="portal-search-label">Search articles and catalog items</label>' in html
    assert 'hx-get="/portal/search/"' in html and 'delay:250ms' in html and 'action="/portal/search/"' in html


def test_global_search_no_longer_claims_to_search_only_my_tickets(client, requester):
    html = signed_in(client, requester).get("/search/", {"q": "printer"}).content.decode()
    assert "Search my tickets" not in html and "Search incidents, requests and knowledge base" in html


def test_the_report_page_suggests_articles_as_the_title_is_typed(client, vpn, requester):
    client = signed_in(client, requester)
    form = client.get("/portal/report/").content.decode()
    assert 'hx-get="/portal/suggest/"' in form and 'id="suggestions"' in form
    html = client.get("/portal/suggest/", {"title": "vpn does not connect"}).content.decode()
    assert "Connect to the VPN from home" in html
    assert f'href="/portal/kb/{vpn.slug}/?suggested=vpn%20does%20not%20connect"' in html
    assert f'formaction="/portal/kb/{vpn.slug}/solved/"' in html
    assert client.get("/portal/suggest/", {"title": "vp"}).content.decode().strip() == ""


def test_this_solved_it_records_a_deflection_and_leaves_without_a_ticket(client, vpn, requester):
    client = signed_in(client, requester)
    client.get(f"/portal/kb/{vpn.slug}/", {"suggested": "vpn broken"})
    response = client.post(f"/portal/kb/{vpn.slug}/solved/", {"q": "vpn broken", "title": "vpn broken"})
    assert response.status_code == 302 and response.url == f"/portal/kb/{vpn.slug}/thanks/"
    assert 'data-testid="deflection-thanks"' in client.get(response.url).content.decode()
    deflection = Deflection.objects.get()
    assert (deflection.user, deflection.article, deflection.query, deflection.outcome) == (
        requester, vpn, "vpn broken", "solved")
    assert not Incident.objects.exists()


def test_solved_without_opening_the_article_still_counts(client, vpn, requester):
    signed_in(client, requester).post(f"/portal/kb/{vpn.slug}/solved/", {"q": "vpn"})
    assert Deflection.objects.get().outcome == "solved"


def test_a_ticket_raised_after_opening_a_suggestion_is_recorded_as_raised_anyway(client, vpn, requester,
                                                                                 other_requester):
    client = signed_in(client, requester)
    page = client.get(f"/portal/kb/{vpn.slug}/", {"suggested": "vpn"}).content.decode()
    assert 'data-testid="kb-solved"' in page
    deflection_open(user=other_requester, article_id=vpn.id, query="vpn")
    response = client.post("/portal/report/", {"title": "VPN still broken", "description": "Tried it",
                                                "urgency": "2"})
    incident = Incident.objects.get()
    assert response.status_code == 302
    mine = Deflection.objects.get(user=requester)
    assert (mine.outcome, mine.ticket_number) == ("submitted", incident.number)
    assert Deflection.objects.get(user=other_requester).outcome == "opened"


def test_an_article_opened_without_a_suggestion_records_nothing(client, vpn, requester):
    html = signed_in(client, requester).get(f"/portal/kb/{vpn.slug}/").content.decode()
    assert 'data-testid="kb-solved"' not in html and not Deflection.objects.exists()


def test_the_deflection_rate_is_solved_over_solved_and_raised_anyway(vpn, requester, other_requester,
                                                                      django_assert_num_queries):
    from knowledge.selectors import deflection_figures
    from knowledge.services import deflection_solve, deflections_submitted

    assert deflection_figures()["rate"] is None
    deflection_solve(user=requester, article_id=vpn.id, query="vpn")
    deflection_open(user=other_requester, article_id=vpn.id, query="vpn")
    deflections_submitted(user=other_requester, number="INC0001234")
    deflection_open(user=requester, article_id=vpn.id, query="vpn again")
    with django_assert_num_queries(1):
        figures = deflection_figures()
    assert figures == {"opened": 1, "solved": 1, "submitted": 1, "rate": 0.5}


def test_the_search_answer_costs_the_same_queries_for_one_hit_or_many(client, article_factory, requester):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(client, requester)
    article_factory("Printer jam", "Open the tray")
    item("Printer toner")
    client.get("/portal/search/", {"q": "printer"}, HTTP_HX_REQUEST="true")
    with CaptureQueriesContext(connection) as few:
        client.get("/portal/search/", {"q": "printer"}, HTTP_HX_REQUEST="true")
    for n in range(8):
        article_factory(f"Printer setup {n}", "Add the printer")
        item(f"Printer model {n}")
    with CaptureQueriesContext(connection) as many:
        html = client.get("/portal/search/", {"q": "printer"}, HTTP_HX_REQUEST="true").content.decode()
    assert html.count('data-testid="portal-search-hit"') == 12
    assert len(many) == len(few)
