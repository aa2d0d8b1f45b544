"""Sign-in with OpenID Connect, in the browser, against a real OpenID provider run by the test.

The provider is tests/oidc_provider/ (django-oauth-toolkit) in its own process on 127.0.0.1; the service desk is
pytest-django's live server with the OIDC settings pointing at it. Everything between them is real: the
redirects, the provider's login form and consent page, the code exchange, the RS256-signed id token checked
against the provider's JWKS, the userinfo call.
"""

import re
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from servicedesk.models import ExternalIdentity, Team
from servicedesk.roles import Role, role_of
from tests.oidc_provider.peer import PASSWORD as IDP_PASSWORD
from tests.oidc_provider.peer import OidcProvider
from tests.peers import free_port

from .conftest import PASSWORD, login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLIENT_ID = "servicedesk"
CLIENT_SECRET = "servicedesk-test-secret-0123456789"
BUTTON = "Sign in with Contoso"


@pytest.fixture(scope="session")
def idp(live_server):
    with OidcProvider() as provider:
        provider.register_client(CLIENT_ID, CLIENT_SECRET, f"{live_server.url}/oidc/callback/",
                                 post_logout_redirect_uri=f"{live_server.url}/login/")
        yield provider


@pytest.fixture
def oidc_on(settings, idp):
    settings.OIDC_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "servicedesk.oidc.OIDCBackend"]
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_ISSUER = idp.issuer
    settings.OIDC_OP_DISCOVERY_URL = idp.discovery_url
    settings.OIDC_BUTTON_LABEL = BUTTON
    settings.OIDC_GROUP_ROLES = {"sd-agents": "agent", "sd-managers": "manager"}
    settings.OIDC_GROUP_TEAMS = {"net-team": "Network", "apps-team": "Applications"}
    Team.objects.create(name="Network")
    Team.objects.create(name="Applications")
    return settings


def provider_sign_in(page, live_server, username, *, shot=""):
    """From our login page through the provider's login form (when it asks) and consent, back to us."""
    page.goto(f"{live_server.url}/login/")
    if shot:
        screenshot(page, f"{shot}-1-login-page")
    page.get_by_role("link", name=BUTTON).click()
    if page.get_by_label("Contoso username").count():
        page.get_by_label("Contoso username").fill(username)
        page.get_by_label("Contoso password").fill(IDP_PASSWORD)
        if shot:
            screenshot(page, f"{shot}-2-provider-login")
        page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Let Servicedesk use your Contoso account?")).to_be_visible()
    if shot:
        screenshot(page, f"{shot}-3-provider-consent")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_load_state("domcontentloaded")
    return page


def session_of(page, live_server):
    host = urlparse(live_server.url).hostname
    cookie = next((c for c in page.context.cookies() if c["name"] == "sessionid" and c["domain"] == host), None)
    return SessionStore(session_key=cookie["value"]).load() if cookie else {}


def sign_out(page):
    page.get_by_role("button", name="Log out").first.click()
    page.wait_for_load_state("domcontentloaded")


def test_a_person_signs_in_with_the_company_provider_and_their_groups_set_role_and_team(
        oidc_on, idp, new_page, live_server):
    idp.user("alice", email="alice@contoso.test", name="Alice Martin", groups=["sd-agents", "net-team", "staff"])
    page = provider_sign_in(new_page(), live_server, "alice", shot="oidc-01")
    expect(page).to_have_url(re.compile(r"/agent/"))
    screenshot(page, "oidc-01-4-signed-in")

    alice = get_user_model().objects.get(email="alice@contoso.test")
    assert (alice.username, alice.first_name, alice.last_name) == ("alice", "Alice", "Martin")
    assert not alice.has_usable_password()
    assert role_of(alice) == Role.AGENT
    assert list(alice.memberships.values_list("team__name", flat=True)) == ["Network"]
    identity = ExternalIdentity.objects.get(user=alice)
    assert identity.issuer == idp.issuer and identity.subject
    assert session_of(page, live_server)["sd_signin_method"] == "oidc"

    # The directory moves her: manager of Applications, out of Network, at her next sign-in.
    idp.user("alice", email="alice@contoso.test", name="Alice Martin", groups=["sd-managers", "apps-team"])
    sign_out(page)
    expect(page).to_have_url(re.compile(r"/login/"))
    provider_sign_in(page, live_server, "alice")
    expect(page).to_have_url(re.compile(r"/agent/"))
    alice = get_user_model().objects.get(id=alice.id)
    assert role_of(alice) == Role.MANAGER and alice.is_staff
    assert list(alice.memberships.values_list("team__name", flat=True)) == ["Applications"]
    assert get_user_model().objects.filter(email="alice@contoso.test").count() == 1  # the same account


def test_a_provider_account_claiming_a_local_admins_email_is_not_joined_to_it(oidc_on, idp, new_page, live_server):
    admin = provision_user("root", "admin", email="boss@contoso.test", name="Real Boss")
    idp.user("mallory", email="boss@contoso.test", name="Mallory Boss", groups=["sd-agents"])
    page = provider_sign_in(new_page(), live_server, "mallory")
    expect(page.get_by_role("heading", name="Single sign-on did not work")).to_be_visible()
    expect(page.get_by_test_id("oidc-error-message")).to_contain_text(
        "An existing Servicedesk account already uses the email address boss@contoso.test")
    screenshot(page, "oidc-02-admin-email-refused")
    assert not ExternalIdentity.objects.exists()
    assert get_user_model().objects.filter(email__iexact="boss@contoso.test").count() == 1
    assert "_auth_user_id" not in session_of(page, live_server)
    admin.refresh_from_db()
    assert admin.first_name == "Real" and role_of(admin) == Role.ADMIN

    # The admin's own password still signs them in.
    page.get_by_role("link", name="Back to sign in").click()
    login(page, live_server, "root", PASSWORD)
    expect(page.get_by_role("button", name="Log out").first).to_be_visible()


def _with_query(url: str, **changes) -> str:
    parts = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunparse(parts._replace(query=urlencode(query)))


def test_a_tampered_state_is_refused_and_the_genuine_answer_still_works(oidc_on, idp, new_page, live_server):
    idp.user("bob", email="bob@contoso.test", name="Bob Stone")
    page = new_page()
    answers = []

    def hold_back(route):  # the consent is sent, but the provider's answer (code + state) is kept, not followed
        response = route.fetch(max_redirects=0)
        answers.append(response.headers["location"])
        route.fulfill(status=200, content_type="text/html", body="<!DOCTYPE html><title>held</title>")

    page.route(re.compile(rf"^{re.escape(idp.issuer)}/authorize/"),
               lambda route: hold_back(route) if route.request.method == "POST" else route.continue_())
    provider_sign_in(page, live_server, "bob")
    page.unroute(re.compile(rf"^{re.escape(idp.issuer)}/authorize/"))
    assert len(answers) == 1 and "/oidc/callback/?" in answers[0], answers

    page.goto(_with_query(answers[0], state="forged-state"))
    expect(page.get_by_test_id("oidc-error-message")).to_contain_text("its state does not match")
    screenshot(page, "oidc-03-state-refused")
    assert not get_user_model().objects.filter(email="bob@contoso.test").exists()

    page.goto(answers[0])
    expect(page).to_have_url(re.compile(r"/portal/"))
    assert get_user_model().objects.filter(email="bob@contoso.test").count() == 1
    # An answer is good once: replaying it finds no state.
    page.goto(answers[0])
    expect(page.get_by_test_id("oidc-error-message")).to_contain_text("its state does not match")


def test_an_id_token_for_another_nonce_is_refused(oidc_on, idp, new_page, live_server):
    idp.user("carol", email="carol@contoso.test", name="Carol King")
    page = new_page()

    def forge_nonce(route):  # someone in the middle makes the provider issue a token for their own nonce
        response = route.fetch(max_redirects=0)
        location = response.headers["location"]
        assert "nonce=" in location
        route.fulfill(status=302, headers={"Location": _with_query(location, nonce="attackers-nonce")})

    page.route(re.compile(r".*/oidc/authenticate/.*"), forge_nonce)
    provider_sign_in(page, live_server, "carol")
    expect(page.get_by_test_id("oidc-error-message")).to_contain_text("could not be verified")
    expect(page.get_by_test_id("oidc-error-message")).to_contain_text("Nonce")
    screenshot(page, "oidc-04-nonce-refused")
    assert not get_user_model().objects.filter(email="carol@contoso.test").exists()
    assert "_auth_user_id" not in session_of(page, live_server)


def test_when_the_provider_is_down_the_page_says_so_and_local_sign_in_works(oidc_on, new_page, live_server,
                                                                            console_problems):
    dead = f"http://127.0.0.1:{free_port()}/o"
    oidc_on.OIDC_OP_ISSUER = dead
    oidc_on.OIDC_OP_DISCOVERY_URL = f"{dead}/.well-known/openid-configuration"
    provision_user("dave", "agent", name="Dave Local")
    page = new_page()
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name=BUTTON).click()
    expect(page.get_by_test_id("oidc-error-message")).to_contain_text(
        "The single sign-on provider cannot be reached right now")
    screenshot(page, "oidc-05-provider-down")
    assert [line for line in console_problems if "status of 503" in line], console_problems
    console_problems.clear()  # our 503 page, on purpose

    page.get_by_role("link", name="Back to sign in").click()
    login(page, live_server, "dave")
    expect(page).to_have_url(re.compile(r"/agent/"))


def test_the_provider_going_away_mid_sign_in_gives_a_clear_page(oidc_on, idp, new_page, live_server,
                                                               console_problems):
    idp.user("erin", email="erin@contoso.test", name="Erin Fox")
    page = new_page()
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name=BUTTON).click()
    page.get_by_label("Contoso username").fill("erin")
    page.get_by_label("Contoso password").fill(IDP_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    # While the person reads the consent page, the token endpoint becomes unreachable.
    oidc_on.OIDC_OP_TOKEN_ENDPOINT = f"http://127.0.0.1:{free_port()}/o/token/"
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_test_id("oidc-error-message")).to_contain_text("the sign-in could not be completed")
    console_problems.clear()  # our 503 page, on purpose
    assert not get_user_model().objects.filter(email="erin@contoso.test").exists()


def test_with_oidc_off_there_is_no_button_and_its_pages_are_not_found(settings, page, live_server):
    settings.OIDC_ENABLED = False
    page.goto(f"{live_server.url}/login/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("oidc-signin")).to_have_count(0)
    screenshot(page, "oidc-06-off")
    for path in ("/oidc/authenticate/", "/oidc/callback/?code=x&state=y"):
        assert page.request.get(f"{live_server.url}{path}").status == 404


def test_signing_out_can_end_the_providers_session_too(oidc_on, idp, new_page, live_server):
    oidc_on.OIDC_LOGOUT_FROM_PROVIDER = True
    idp.user("fay", email="fay@contoso.test", name="Fay Wong")
    page = provider_sign_in(new_page(), live_server, "fay")
    expect(page).to_have_url(re.compile(r"/portal/"))
    sign_out(page)
    expect(page).to_have_url(re.compile(r"/login/"))
    assert "_auth_user_id" not in session_of(page, live_server)
    # The provider's session ended as well: signing in again asks for the provider's password.
    page.get_by_role("link", name=BUTTON).click()
    expect(page.get_by_label("Contoso username")).to_be_visible()
