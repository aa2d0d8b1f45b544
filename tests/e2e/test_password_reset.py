"""A requester orders "Reset my password" and uses the mailed link in the browser, at phone width."""

import re

import pytest
from django.core import mail
from django.db import transaction
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_requester_resets_their_password_from_the_mailed_link(new_page, live_server, settings):
    from requests_app.models import ServiceRequest
    from requests_app.services import request_submit
    from tests.requests_app.factories import item

    settings.SITE_URL = live_server.url
    rita = provision_user("rita", "requester", name="Rita Quester")
    reset = item("Reset my password", handler="password_reset")
    with transaction.atomic():  # committed: the outbox runs the handler and the mail (eager tasks)
        made = request_submit(item=reset, answers={}, requester=rita, created_by=rita)
    assert ServiceRequest.objects.get(id=made.id).status == "fulfilled"
    [link_mail] = [m for m in mail.outbox if m.subject.endswith("Choose a new password")]
    link = re.search(r"http://\S+/reset/\S+/", link_mail.body).group(0)

    page = new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    screenshot(page, "password-reset-01-form-390")
    page.get_by_label("New password", exact=True).fill("Rita-fresh-2026!")
    page.get_by_label("New password confirmation").fill("Rita-fresh-2026!")
    page.get_by_role("button", name="Set my new password").click()
    expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
    screenshot(page, "password-reset-02-done-390")

    again = new_page()
    again.goto(link)
    expect(again.get_by_role("heading", name="This link no longer works")).to_be_visible()

    signed_in = login(new_page(), live_server, "rita", "Rita-fresh-2026!")
    expect(signed_in).not_to_have_url(re.compile(r"/login/"))
