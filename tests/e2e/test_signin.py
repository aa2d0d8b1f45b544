"""Sign-in protection and API tokens as a person sees them in the browser."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def issue_token(page, live_server, username) -> str:
    response = page.request.post(f"{live_server.url}/api/v1/auth/token/",
                                 data={"username": username, "password": PASSWORD})
    assert response.status == 200, response.text()
    return response.json()["token"]


def test_a_person_revokes_an_api_token_from_the_profile_page(new_page, live_server):
    provision_user("alice", "requester", name="Alice Martin")
    script = new_page()  # a script of Alice's, with no browser session
    laptop, ci = issue_token(script, live_server, "alice"), issue_token(script, live_server, "alice")

    page = login(new_page(), live_server, "alice")
    page.get_by_test_id("profile-link").click()
    expect(page).to_have_url(f"{live_server.url}/profile/")
    rows = page.get_by_test_id("token-row")
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("api-tokens")).to_contain_text(laptop[:15])
    assert laptop not in page.content()  # only the first characters are ever shown
    screenshot(page, "signin-01-profile-tokens")

    page.get_by_role("button", name=f"Revoke token {laptop[:15]}").click()
    expect(page.get_by_test_id("messages")).to_contain_text(f"Token {laptop[:15]}… revoked")
    expect(rows).to_have_count(1)
    expect(page.locator(f'[data-token="{ci[:15]}"]')).to_be_visible()
    screenshot(page, "signin-02-token-revoked")

    def status(token):
        return script.request.get(f"{live_server.url}/api/v1/me/",
                                  headers={"Authorization": f"Token {token}"}).status

    assert status(laptop) == 401
    assert status(ci) == 200


def test_a_person_who_guessed_wrong_too_often_is_told_when_to_retry(new_page, live_server):
    provision_user("alice", "requester", name="Alice Martin")
    page = new_page()
    for n in range(4):
        login(page, live_server, "alice", password=f"guess-{n}")
        expect(page.get_by_test_id("login-error")).to_contain_text("Please enter a correct username and password")
    login(page, live_server, "alice", password="guess-4")
    expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
    expect(page.get_by_test_id("lockout-message")).to_contain_text(
        # The time alone today; after midnight (the retry falls on another day) with its date first.
        re.compile(r"Too many failed sign-in attempts for this username\. Try again after "
                   r"(\d{1,2} \w{3} \d{4} )?\d\d:\d\d UTC \(in 15 minutes\)"))
    screenshot(page, "signin-03-locked-out")

    login(page, live_server, "alice")  # the right password, during the lockout
    expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
    page.get_by_role("link", name="Back to sign in").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
