"""The profile page: your API tokens with revoke buttons, and the password change."""

import pytest
from django.test import Client
from knox.models import AuthToken

from servicedesk.tokens import api_token_issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(requester):
    client = Client()
    client.force_login(requester)
    return client


def test_it_lists_your_working_tokens_and_not_others(browser, requester, other_requester):
    mine, _ = api_token_issue(user=requester)
    theirs, _ = api_token_issue(user=other_requester)
    page = browser.get("/profile/").content.decode()
    assert f'data-token="{mine.token_key}"' in page
    assert theirs.token_key not in page
    assert 'href="/profile/password/"' in page


def test_it_revokes_your_token_from_the_page(browser, requester):
    token, _ = api_token_issue(user=requester)
    response = browser.post(f"/profile/tokens/{token.token_key}/revoke/", follow=True)
    assert response.redirect_chain == [("/profile/", 302)]
    assert f"Token {token.token_key}… revoked" in response.content.decode()
    assert not AuthToken.objects.filter(user=requester).exists()


def test_it_refuses_to_revoke_someone_elses_token(browser, other_requester):
    theirs, _ = api_token_issue(user=other_requester)
    assert browser.post(f"/profile/tokens/{theirs.token_key}/revoke/").status_code == 404
    assert AuthToken.objects.filter(user=other_requester).count() == 1


def test_revoke_all_revokes_only_yours(browser, requester, other_requester):
    for _ in range(2):
        api_token_issue(user=requester)
    api_token_issue(user=other_requester)
    response = browser.post("/profile/tokens/revoke-all/", follow=True)
    assert "2 tokens revoked." in response.content.decode()
    assert not AuthToken.objects.filter(user=requester).exists()
    assert AuthToken.objects.filter(user=other_requester).count() == 1


def test_revoking_needs_a_post(browser, requester):
    token, _ = api_token_issue(user=requester)
    assert browser.get(f"/profile/tokens/{token.token_key}/revoke/").status_code == 405
    assert AuthToken.objects.filter(user=requester).exists()


def test_the_profile_needs_a_signed_in_person():
    response = Client().get("/profile/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_both_layouts_link_to_the_profile(make_user, requester):
    agent = Client()
    agent.force_login(make_user("agent", username="agnes", teams=["Service Desk"]))
    assert 'href="/profile/"' in agent.get("/agent/").content.decode()
    portal = Client()
    portal.force_login(requester)
    assert 'href="/profile/"' in portal.get("/portal/").content.decode()


def test_the_password_form_names_a_wrong_old_password(browser, requester):
    response = browser.post("/profile/password/", {
        "old_password": "nope", "new_password1": "A-new-pass-2026!", "new_password2": "A-new-pass-2026!"})
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
