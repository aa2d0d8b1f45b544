"""Self-service in a real browser: the home search finds an article and a catalog item as one types, an order
form refuses bad input next to the field and takes good input, the request is on My tickets, the requester
replies with a file and rates it once fulfilled; the report page suggests an article and "This solved it"
leaves without a ticket; every page fits a 390 px phone. Fails on any console message or CSP violation."""

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _article(author, title, body):
    from knowledge.services import article_create, article_publish

    article = article_create(title=title, body=body, author=author, audience="public")
    return article_publish(article_id=article.id, actor=author)


WIDEST = """Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 391)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def _fits_phone(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{page.url} is {width} px wide at a 390 px viewport: {page.evaluate(WIDEST)}"


def test_search_order_reply_and_rate_from_the_portal(page, live_server, tmp_path):
    from requests_app.models import ServiceRequest
    from requests_app.services import request_fulfil
    from tests.requests_app.factories import item

    rita = provision_user("rita", "requester", name="Rita Quester")
    agnes = provision_user("agnes", "agent", name="Agnes Agent")
    _article(agnes, "Connect to the VPN from home", "Open the VPN client and sign in.")
    token = item("VPN hardware token", description="A key for signing in to the VPN", delivery_amount=2,
                 delivery_unit="business_days", fields=[
                     {"name": "reason", "label": "Why do you need it", "type": "text", "required": True},
                     {"name": "count", "label": "How many", "type": "number", "required": True,
                      "min_value": 1, "max_value": 3},
                     {"name": "colour", "label": "Colour", "type": "choice", "choices": "Black\nWhite"},
                 ])

    login(page, live_server, "rita")
    page.goto(f"{live_server.url}/portal/")
    page.get_by_label("Search articles and catalog items").press_sequentially("vpn", delay=40)
    results = page.get_by_test_id("portal-search-results")
    expect(results.get_by_role("link", name="Connect to the VPN from home")).to_be_visible()
    expect(results.get_by_role("link", name="VPN hardware token")).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/portal/")  # found as typed, no page load
    expect(page.get_by_role("status")).to_have_text("2 results for “vpn”")  # what a screen reader hears
    screenshot(page, "portal-search")

    results.get_by_role("link", name="VPN hardware token").click()
    expect(page.get_by_test_id("expected-delivery")).to_have_text("Usually delivered in 2 business days")
    page.get_by_label("How many").fill("9")
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("error-reason")).to_have_text("This field is required.")
    expect(page.get_by_test_id("error-count")).to_have_text("At most 3.")
    assert not ServiceRequest.objects.exists()
    screenshot(page, "portal-order-errors")

    page.get_by_label("Why do you need it").fill("Travelling next week")
    page.get_by_label("How many").fill("1")
    page.get_by_label("Colour").select_option("White")
    page.get_by_test_id("order-submit").click()
    ordered = ServiceRequest.objects.get()
    assert ordered.requester == rita and ordered.answers["colour"] == "White"
    expect(page).to_have_url(f"{live_server.url}/portal/requests/{ordered.number}/")
    expect(page.get_by_test_id("request-answers")).to_contain_text("Travelling next week")

    page.goto(f"{live_server.url}/portal/")
    expect(page.get_by_test_id("ticket-list")).to_contain_text(ordered.number)
    expect(page.get_by_test_id("popular")).to_contain_text("VPN hardware token")
    page.get_by_role("link", name=ordered.number).first.click()

    note = tmp_path / "photo-of-error.txt"
    note.write_text("Token shows E42\n")
    page.get_by_label("Add a reply").fill("Can it be the USB-C one?")
    page.get_by_label("Attach a file").set_input_files(str(note))
    page.get_by_test_id("reply-submit").click()
    expect(page.get_by_test_id("request-timeline")).to_contain_text("Can it be the USB-C one?")
    expect(page.get_by_test_id("attachments")).to_contain_text("photo-of-error.txt")
    expect(page.get_by_test_id("rating")).to_have_count(0)

    request_fulfil(request_id=ordered.id, actor=agnes, note="Posted to you")
    page.reload()
    expect(page.get_by_test_id("request-status")).to_have_text("Fulfilled")
    page.get_by_test_id("rating-5").check()
    page.get_by_label("Comment").fill("Fast and friendly")
    page.get_by_test_id("rating-submit").click()
    expect(page.get_by_test_id("rating-given")).to_contain_text("5 out of 5: Fast and friendly")
    expect(page.get_by_test_id("request-timeline")).to_contain_text("Rated 5/5: Fast and friendly")
    screenshot(page, "portal-request-rated")

    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in [("/portal/", "phone-portal-home"), ("/portal/catalog/", "phone-portal-catalog"),
                       (f"/portal/catalog/{token.id}/", "phone-portal-order"),
                       (f"/portal/requests/{ordered.number}/", "phone-portal-request")]:
        page.goto(f"{live_server.url}{path}")
        _fits_phone(page)
        screenshot(page, name)
    page.goto(f"{live_server.url}/portal/")
    page.get_by_label("Search articles and catalog items").press_sequentially("token", delay=40)
    expect(page.get_by_test_id("portal-search-hit").first).to_be_visible()
    _fits_phone(page)
    screenshot(page, "phone-portal-search")


def test_the_report_page_suggests_an_article_and_this_solved_it_raises_no_ticket(page, live_server):
    from incidents.models import Incident
    from knowledge.models import Deflection

    provision_user("rita", "requester", name="Rita Quester")
    agnes = provision_user("agnes", "agent", name="Agnes Agent")
    _article(agnes, "Printer shows paper jam", "Open tray 2 and pull the sheet out gently.")

    login(page, live_server, "rita")
    page.goto(f"{live_server.url}/portal/report/")
    page.get_by_label("What is wrong?").press_sequentially("printer jam", delay=40)
    suggestions = page.get_by_test_id("suggestions")
    expect(suggestions).to_contain_text("Printer shows paper jam")
    page.set_viewport_size({"width": 390, "height": 844})
    _fits_phone(page)
    screenshot(page, "phone-portal-report-suggestions")
    page.get_by_test_id("suggestion-solved").click()
    expect(page.get_by_test_id("deflection-thanks")).to_be_visible()
    assert Deflection.objects.get().outcome == "solved"
    assert not Incident.objects.exists()


def test_the_search_box_works_without_javascript(new_page, live_server):
    from tests.requests_app.factories import item

    provision_user("rita", "requester", name="Rita Quester")
    item("Second monitor")
    page = new_page(javascript=False)
    login(page, live_server, "rita")
    page.goto(f"{live_server.url}/portal/")
    page.get_by_label("Search articles and catalog items").fill("monitor")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/portal/search/?q=monitor")
    expect(page.get_by_test_id("portal-search-results")).to_contain_text("Second monitor")
