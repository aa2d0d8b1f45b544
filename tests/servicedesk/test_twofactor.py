"""Two-factor sign-in (TOTP with django-otp, backup codes), on the login form, admin's login, the API token and
the sign-in policy. Codes are computed with pyotp from the secret the set-up page shows, as a phone would."""

import base64
import re
import time

import pyotp
import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from servicedesk import twofactor
from servicedesk.models import AuditLog, SignInPolicy
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

STEP = 30


def phone_for(user) -> pyotp.TOTP:
    device = TOTPDevice.objects.filter(user=user).order_by("-id").first()
    return pyotp.TOTP(base64.b32encode(device.bin_key).decode())


def code_at(phone: pyotp.TOTP, steps: int = 0) -> str:
    """The phone's code `steps` 30-second steps from now. Waits out the last two seconds of a step, so the code
    computed here is still judged in the same step by the server a moment later."""
    if STEP - time.time() % STEP < 2:
        time.sleep(STEP - time.time() % STEP + 0.05)
    return phone.at(time.time() + steps * STEP)


def enrol(user) -> tuple[pyotp.TOTP, list[str]]:
    """Set up an authenticator as the profile page does, confirmed with the previous step's code (so the
    current and the next codes are still unused for the tests)."""
    device = twofactor.totp_enrol_start(user=user)
    phone = phone_for(user)
    codes = twofactor.totp_enrol_confirm(user=user, device_id=device.id, code=code_at(phone, -1))
    return phone, codes


def password_step(client, username, next_url=""):
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post("/login/", data)


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def require(**roles):
    SignInPolicy.objects.update_or_create(id=1, defaults={f"require_{role}": on for role, on in roles.items()})
    twofactor.policy_forget()


def assert_nothing_reachable(client):
    """A session that has only passed the password reaches no page, API or admin."""
    assert not signed_in(client)
    response = client.get("/agent/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    response = client.get("/portal/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/api/v1/me/").status_code in (401, 403)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.get("/profile/two-factor/").status_code == 302


# --- set-up -----------------------------------------------------------------------------------------


def test_it_sets_up_an_authenticator_only_with_a_right_code_and_shows_the_backup_codes_once(agent_client, agent):
    page = agent_client.get("/profile/two-factor/enrol/")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+"', html)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    phone = pyotp.TOTP(secret)
    assert phone_for(agent).secret == secret  # the key shown is the key stored

    wrong = agent_client.post("/profile/two-factor/enrol/", {"code": "000000" if phone.now() != "000000" else "111111"})
    assert wrong.status_code == 200
    assert "That code is not the one the app shows now" in wrong.content.decode()
    assert not twofactor.has_second_factor(agent)
    missing = agent_client.post("/profile/two-factor/enrol/", {"code": ""})
    assert "Enter the 6-digit code" in missing.content.decode()

    done = agent_client.post("/profile/two-factor/enrol/", {"code": code_at(phone, -1)})
    assert done.status_code == 302 and done["Location"] == "/profile/two-factor/codes/"
    assert twofactor.has_second_factor(agent)
    codes_page = agent_client.get("/profile/two-factor/codes/").content.decode()
    codes = re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>", codes_page)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert StaticToken.objects.filter(device__user=agent).count() == 10
    assert agent_client.get("/profile/two-factor/codes/").status_code == 302  # shown once
    assert AuditLog.objects.filter(action="twofactor.enabled", object_id=str(agent.id)).count() == 1
    # The session that set it up stays signed in: it has just proved the second factor.
    assert agent_client.get("/agent/").status_code == 200


def test_reloading_the_set_up_page_keeps_the_secret_already_scanned(agent_client, agent):
    first = agent_client.get("/profile/two-factor/enrol/").content.decode()
    second = agent_client.get("/profile/two-factor/enrol/").content.decode()
    pattern = r'data-testid="totp-secret">([A-Z2-7 ]+)<'
    assert re.search(pattern, first).group(1) == re.search(pattern, second).group(1)
    assert TOTPDevice.objects.filter(user=agent).count() == 1


def secret_on(page) -> str:
    return re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page.content.decode()).group(1).replace(" ", "")


def test_each_set_up_shows_its_own_secret_and_confirms_only_that_one(agent):
    """Someone else with the password starts a set-up too (a pending sign-in): they get their own key, which
    ends up confirming nothing; the user confirms theirs. The same unconfirmed key used to be shown to every
    session until confirmed, so the other session learnt the key the user then confirmed."""
    require(agents=True)
    intruder, owner = Client(), Client()
    assert password_step(intruder, "agnes")["Location"] == "/login/enrol/"
    intruder_secret = secret_on(intruder.get("/login/enrol/"))
    assert password_step(owner, "agnes")["Location"] == "/login/enrol/"
    owner_secret = secret_on(owner.get("/login/enrol/"))
    assert owner_secret != intruder_secret
    assert owner.post("/login/enrol/", {"code": code_at(pyotp.TOTP(owner_secret))})["Location"] == \
        "/profile/two-factor/codes/"
    assert list(TOTPDevice.objects.filter(user=agent).values_list("confirmed", flat=True)) == [True]
    assert phone_for(agent).secret == owner_secret
    # The intruder's key confirms nothing and signs in nothing: they are asked for the owner's code now.
    response = intruder.post("/login/enrol/", {"code": code_at(pyotp.TOTP(intruder_secret))})
    assert response["Location"] == "/login/code/"
    response = intruder.post("/login/code/", {"code": code_at(pyotp.TOTP(intruder_secret))})
    assert response.status_code == 200 and "That code is not right" in response.content.decode()
    assert not signed_in(intruder)


def test_a_set_up_started_in_another_session_ends_the_one_on_the_profile_page(agent_client, agent):
    first = secret_on(agent_client.get("/profile/two-factor/enrol/"))
    other = Client()
    other.force_login(agent)
    second = secret_on(other.get("/profile/two-factor/enrol/"))
    assert first != second
    refused = agent_client.post("/profile/two-factor/enrol/", {"code": code_at(pyotp.TOTP(first))})
    assert "This set-up was ended" in refused.content.decode()
    third = secret_on(refused)  # a new key, for this session
    assert third not in (first, second)
    assert agent_client.post("/profile/two-factor/enrol/", {"code": code_at(pyotp.TOTP(third))})["Location"] == \
        "/profile/two-factor/codes/"
    assert phone_for(agent).secret == third and TOTPDevice.objects.filter(user=agent).count() == 1


# --- the sign-in ------------------------------------------------------------------------------------


def test_the_password_alone_does_not_sign_in_a_user_with_an_authenticator(agent):
    phone, _ = enrol(agent)
    client = Client()
    response = password_step(client, "agnes", next_url="/agent/queue/mine/")
    assert response.status_code == 302 and response["Location"] == "/login/code/"
    assert_nothing_reachable(client)

    page = client.get("/login/code/")
    assert page.status_code == 200 and "Two-factor sign-in" in page.content.decode()
    response = client.post("/login/code/", {"code": code_at(phone)})
    assert response.status_code == 302 and response["Location"] == "/agent/queue/mine/"
    assert client.session[SESSION_KEY] == str(agent.id)
    assert client.get("/agent/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 200


def test_a_code_one_step_off_is_accepted_and_two_steps_off_is_not(agent):
    phone, _ = enrol(agent)
    client = Client()
    password_step(client, "agnes")
    assert client.post("/login/code/", {"code": code_at(phone, 2)}).status_code == 200
    assert client.post("/login/code/", {"code": code_at(phone, 1)}).status_code == 302
    assert signed_in(client)


def test_a_wrong_code_is_refused_and_counted_as_a_failed_sign_in(agent):
    phone, _ = enrol(agent)
    client = Client()
    password_step(client, "agnes")
    right = code_at(phone)
    response = client.post("/login/code/", {"code": "123456" if right != "123456" else "654321"})
    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert not signed_in(client)
    assert AccessAttempt.objects.get(username="agnes").failures_since_start == 1
    assert client.post("/login/code/", {"code": right}).status_code == 302
    assert not AccessAttempt.objects.filter(username="agnes").exists()  # a success clears the count, as always


def test_a_code_cannot_be_used_twice(agent):
    phone, _ = enrol(agent)
    code = code_at(phone)
    first, second = Client(), Client()
    password_step(first, "agnes")
    assert first.post("/login/code/", {"code": code}).status_code == 302
    password_step(second, "agnes")
    response = second.post("/login/code/", {"code": code})
    assert response.status_code == 200 and "used already" in response.content.decode()
    assert not signed_in(second)
    # Nor an earlier code still within the drift allowance.
    assert second.post("/login/code/", {"code": code_at(phone, -1)}).status_code == 200
    assert not signed_in(second)


def test_a_backup_code_signs_in_once(agent):
    _, codes = enrol(agent)
    first, second = Client(), Client()
    password_step(first, "agnes")
    response = first.post("/login/code/", {"code": codes[3].upper().replace("-", " ")}, follow=True)
    assert response.redirect_chain[0][0] == "/"
    assert "You signed in with a backup code; 9 left" in response.content.decode()
    assert signed_in(first)
    password_step(second, "agnes")
    assert second.post("/login/code/", {"code": codes[3]}).status_code == 200
    assert not signed_in(second)
    assert twofactor.backup_codes_left(agent) == 9


def test_wrong_codes_lock_the_username_like_wrong_passwords(agent):
    phone, _ = enrol(agent)
    client = Client()
    password_step(client, "agnes")
    right = code_at(phone)
    wrong = "000000" if right != "000000" else "999999"
    assert [client.post("/login/code/", {"code": wrong}).status_code for _ in range(4)] == [200] * 4
    locked = client.post("/login/code/", {"code": wrong})
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts for this username" in locked.content.decode()
    # The right code is refused now, and so is a fresh start with the right password.
    assert client.post("/login/code/", {"code": right}).status_code == 429
    assert not signed_in(client)
    again = Client()
    assert password_step(again, "agnes").status_code == 429
    assert not signed_in(again)
    assert AccessAttempt.objects.get(username="agnes").failures_since_start == 5


def test_the_half_signed_in_state_expires_and_ends_with_a_new_password(agent, settings):
    phone, _ = enrol(agent)
    client = Client()
    password_step(client, "agnes")
    session = client.session
    session[twofactor.PENDING]["at"] -= settings.TWO_FACTOR_STEP_MINUTES * 60 + 1
    session.save()
    response = client.post("/login/code/", {"code": code_at(phone)})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not signed_in(client)

    password_step(client, "agnes")
    agent.set_password("Another-pass-2026!")
    agent.save()
    assert client.post("/login/code/", {"code": code_at(phone)})["Location"] == "/login/"
    assert not signed_in(client)


def test_a_session_signed_in_by_another_path_still_owes_the_code(agent):
    """Whatever calls login() without the second step (here the test client's force_login), the session is
    taken back before any view runs: anonymous for the API, sent to the code page otherwise."""
    phone, _ = enrol(agent)
    client = Client()
    client.force_login(agent)
    response = client.get("/agent/queue/mine/")
    assert response.status_code == 302 and response["Location"] == "/login/code/?next=%2Fagent%2Fqueue%2Fmine%2F"
    assert_nothing_reachable(client)
    response = client.post("/login/code/", {"code": code_at(phone)})
    assert response["Location"] == "/agent/queue/mine/"
    assert client.get("/agent/").status_code == 200

    api = APIClient()
    api.force_login(agent)
    assert api.get("/api/v1/me/").status_code in (401, 403)


def test_admins_own_login_form_is_the_same_two_steps(admin_user):
    phone, _ = enrol(admin_user)
    client = Client()
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/login/code/"
    assert_nothing_reachable(client)
    assert client.post("/login/code/", {"code": code_at(phone)})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/login/")["Location"] == "/admin/"


def test_a_non_staff_user_signed_in_gets_the_form_at_admins_login_not_a_loop(requester):
    client = Client()
    client.force_login(requester)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 200 and "Sign in to Servicedesk" in response.content.decode()


# --- OpenID Connect ---------------------------------------------------------------------------------


@pytest.fixture
def oidc_backend(settings):
    settings.OIDC_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, twofactor.OIDC_BACKEND]


def test_an_openid_connect_sign_in_counts_as_two_factor_when_the_provider_is_trusted(agent, settings, oidc_backend):
    enrol(agent)
    settings.OIDC_TRUSTS_IDP_MFA = True
    client = Client()
    client.force_login(agent, backend=twofactor.OIDC_BACKEND)
    assert client.get("/agent/").status_code == 200
    assert client.session[twofactor.STATE] == twofactor.TRUSTED_IDP


def test_an_openid_connect_sign_in_owes_the_code_when_the_provider_is_not_trusted(agent, settings, oidc_backend):
    enrol(agent)
    settings.OIDC_TRUSTS_IDP_MFA = False
    client = Client()
    client.force_login(agent, backend=twofactor.OIDC_BACKEND)
    assert client.get("/agent/")["Location"].startswith("/login/code/")
    assert not signed_in(client)


def test_the_provider_is_not_trusted_unless_the_setting_says_so(settings):
    assert "OIDC_TRUSTS_IDP_MFA" not in __import__("os").environ  # the default, as a deployment gets it
    assert settings.OIDC_TRUSTS_IDP_MFA is False


def test_a_session_marked_oidc_but_signed_in_by_password_is_not_trusted(agent, settings, oidc_backend):
    """The OIDC marker in the session survives a later login() of the same user by another path; trust now
    comes only from the backend that login() recorded."""
    enrol(agent)
    settings.OIDC_TRUSTS_IDP_MFA = True
    client = Client()
    session = client.session
    session["sd_signin_method"] = "oidc"
    session.save()
    client.force_login(agent)  # ModelBackend: a password-path sign-in
    assert client.session["sd_signin_method"] == "oidc"
    assert client.get("/agent/")["Location"].startswith("/login/code/")
    assert not signed_in(client)


# --- the policy -------------------------------------------------------------------------------------


def test_a_required_role_without_an_authenticator_sets_one_up_before_anything_else(agent, requester):
    require(agents=True)
    client = Client()
    response = password_step(client, "agnes", next_url="/agent/queue/mine/")
    assert response["Location"] == "/login/enrol/"
    assert_nothing_reachable(client)
    assert client.get("/login/code/")["Location"] == "/login/enrol/"
    token = APIClient().post("/api/v1/auth/token/", {"username": "agnes", "password": PASSWORD}, format="json")
    assert token.status_code == 400 and "set it up in the browser" in token.json()["otp"][0]

    html = client.get("/login/enrol/").content.decode()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    phone = pyotp.TOTP(secret)
    assert client.post("/login/enrol/", {"code": "12"}).status_code == 200
    assert not signed_in(client)
    response = client.post("/login/enrol/", {"code": code_at(phone)})
    assert response["Location"] == "/profile/two-factor/codes/"
    assert signed_in(client)
    codes_page = client.get("/profile/two-factor/codes/").content.decode()
    assert len(re.findall(r"<code>[a-z2-7]{4}-[a-z2-7]{4}</code>", codes_page)) == 10
    assert 'href="/agent/queue/mine/"' in codes_page  # then on to where the sign-in was going
    assert client.get("/agent/").status_code == 200

    # A requester's role is not covered: the password alone still signs them in.
    other = Client()
    assert password_step(other, "alice")["Location"] == "/"
    assert signed_in(other)


def test_a_tightened_policy_reaches_sessions_already_signed_in(agent, make_user):
    make_user("manager", username="mona", teams=["Service Desk"])
    agents, managers = Client(), Client()
    assert password_step(agents, "agnes")["Location"] == "/" and password_step(managers, "mona")["Location"] == "/"
    assert agents.get("/agent/").status_code == 200
    require(agents=True)
    response = agents.get("/agent/")
    assert response.status_code == 302 and response["Location"] == "/login/enrol/?next=%2Fagent%2F"
    assert not signed_in(agents)
    assert agents.get("/api/v1/me/").status_code in (401, 403)
    assert managers.get("/agent/").status_code == 200  # managers are not required
    assert signed_in(managers)


def test_a_user_promoted_into_a_required_role_is_taken_back_at_the_next_request(requester):
    """alice's session was judged "no second factor needed" as a requester; an admin makes her an agent, whom
    the policy requires to have one. Her session used to keep its verdict until the policy itself changed."""
    from django.contrib.auth.models import Group

    require(agents=True)
    alice = Client()
    assert password_step(alice, "alice")["Location"] == "/"
    assert alice.get("/portal/").status_code == 200
    requester.groups.remove(Group.objects.get(name="requester"))
    requester.groups.add(Group.objects.get(name="agent"))
    response = alice.get("/portal/")
    assert response.status_code == 302 and response["Location"] == "/login/enrol/?next=%2Fportal%2F"
    assert not signed_in(alice)


def test_a_user_made_superuser_is_taken_back_when_admins_are_required(requester):
    require(admins=True)
    alice = Client()
    assert password_step(alice, "alice")["Location"] == "/"
    requester.is_superuser = True
    requester.save()
    assert alice.get("/portal/")["Location"].startswith("/login/enrol/")
    assert not signed_in(alice)


def test_turning_two_factor_on_takes_back_the_users_other_password_only_sessions(agent):
    """Set up in one browser; the other browser, signed in with the password alone before, is asked for the
    code at its next request (it used to stay signed in). The browser that set it up stays signed in."""
    laptop, phone_browser = Client(), Client()
    assert password_step(laptop, "agnes")["Location"] == "/"
    assert password_step(phone_browser, "agnes")["Location"] == "/"
    assert phone_browser.get("/agent/").status_code == 200
    secret = secret_on(laptop.get("/profile/two-factor/enrol/"))
    phone = pyotp.TOTP(secret)
    assert laptop.post("/profile/two-factor/enrol/", {"code": code_at(phone, -1)})["Location"] == \
        "/profile/two-factor/codes/"
    assert laptop.get("/agent/").status_code == 200
    response = phone_browser.get("/agent/")
    assert response.status_code == 302 and response["Location"] == "/login/code/?next=%2Fagent%2F"
    assert not signed_in(phone_browser)
    assert phone_browser.get("/api/v1/me/").status_code in (401, 403)
    assert phone_browser.post("/login/code/", {"code": code_at(phone)})["Location"] == "/agent/"
    assert phone_browser.get("/agent/").status_code == 200


def test_a_signed_in_request_costs_no_query_for_two_factor(agent, django_assert_num_queries):
    client = Client()
    password_step(client, "agnes")
    session_key = client.cookies["sessionid"].value
    request = RequestFactory().get("/agent/")
    request.COOKIES["sessionid"] = session_key
    from django.contrib.sessions.middleware import SessionMiddleware

    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    assert request.session[SESSION_KEY] == str(agent.id)  # loaded before counting
    middleware = twofactor.SecondFactorMiddleware(lambda r: HttpResponse("page"))
    twofactor.policy_current()  # as the sign-in left it in the cache
    with django_assert_num_queries(0):
        assert middleware(request).content == b"page"


# --- the API token -----------------------------------------------------------------------------------


def token(otp=None, username="agnes"):
    data = {"username": username, "password": PASSWORD}
    if otp is not None:
        data["otp"] = otp
    return APIClient().post("/api/v1/auth/token/", data, format="json")


def test_the_api_token_of_a_user_with_two_factor_needs_the_code(agent):
    phone, codes = enrol(agent)
    missing = token()
    assert missing.status_code == 400 and "send the code" in missing.json()["otp"][0]
    assert not AccessAttempt.objects.filter(username="agnes").exists()  # forgetting it is not a guess
    right = code_at(phone)
    wrong = token("000000" if right != "000000" else "999999")
    assert wrong.status_code == 400 and "Wrong two-factor code" in wrong.json()["otp"][0]
    assert AccessAttempt.objects.get(username="agnes").failures_since_start == 1
    issued = token(right)
    assert issued.status_code == 200 and issued.json()["token"]
    assert token(right).status_code == 400  # replayed
    assert token(codes[0]).status_code == 200
    assert token(codes[0]).status_code == 400  # a backup code works once
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Token {issued.json()['token']}")
    assert me.get("/api/v1/me/").status_code == 200


def test_asking_for_a_token_from_a_signed_in_browser_keeps_its_session(agent):
    phone, _ = enrol(agent)
    client = Client()
    password_step(client, "agnes")
    client.post("/login/code/", {"code": code_at(phone)})
    response = client.post("/api/v1/auth/token/", {"username": "agnes", "password": PASSWORD, "otp": code_at(phone, 1)},
                           content_type="application/json")
    assert response.status_code == 200
    assert client.get("/agent/").status_code == 200


def test_wrong_api_codes_lock_the_username(agent):
    phone, _ = enrol(agent)
    right = code_at(phone)
    wrong = "000000" if right != "000000" else "999999"
    assert [token(wrong).status_code for _ in range(4)] == [400] * 4
    locked = token(wrong)
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert token(right).status_code == 429


def test_a_user_without_two_factor_gets_a_token_as_before(agent):
    assert token().status_code == 200
    assert token("").status_code == 200


# --- managing it ---------------------------------------------------------------------------------------


def test_new_backup_codes_need_a_current_code_and_cancel_the_old_ones(agent):
    phone, old = enrol(agent)
    client = Client()
    password_step(client, "agnes")
    client.post("/login/code/", {"code": code_at(phone)})
    refused = client.post("/profile/two-factor/codes/new/", {"code": "12345x"})
    assert refused.status_code == 400 and "not right" in refused.content.decode()
    response = client.post("/profile/two-factor/codes/new/", {"code": code_at(phone, 1)})
    assert response["Location"] == "/profile/two-factor/codes/"
    new = re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>", client.get("/profile/two-factor/codes/").content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert twofactor.second_factor_verify(user=agent, code=old[0]) is None
    assert twofactor.second_factor_verify(user=agent, code=new[0]) == "backup"


def test_turning_it_off_needs_a_code_and_is_refused_while_the_role_requires_it(agent):
    phone, codes = enrol(agent)
    client = Client()
    password_step(client, "agnes")
    client.post("/login/code/", {"code": code_at(phone)})
    assert client.post("/profile/two-factor/disable/", {"code": "000000"}).status_code == 400
    assert twofactor.has_second_factor(agent)

    require(agents=True)
    refused = client.post("/profile/two-factor/disable/", {"code": codes[0]})
    assert refused.status_code == 400 and "required for your role" in refused.content.decode()
    assert twofactor.has_second_factor(agent) and twofactor.backup_codes_left(agent) == 10

    require(agents=False)
    response = client.post("/profile/two-factor/disable/", {"code": codes[0]})
    assert response["Location"] == "/profile/two-factor/"
    assert not twofactor.has_second_factor(agent)
    assert AuditLog.objects.filter(action="twofactor.disabled", object_id=str(agent.id)).exists()
    assert client.get("/agent/").status_code == 200  # still signed in
    other = Client()
    assert password_step(other, "agnes")["Location"] == "/"


def test_an_admin_resets_a_lost_phone_in_admin_and_it_is_audited(agent, admin_user):
    enrol(agent)
    admin = Client()
    admin.force_login(admin_user)  # the admin has no authenticator: signed in by the password
    listing = admin.get("/admin/auth/user/")
    assert listing.status_code == 200
    response = admin.post("/admin/auth/user/", {"action": "twofactor_reset", "_selected_action": [agent.id]},
                          follow=True)
    assert "Two-factor sign-in reset for 1 user: agnes" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=agent).exists()
    assert twofactor.backup_codes_left(agent) == 0
    row = AuditLog.objects.get(action="twofactor.reset", object_id=str(agent.id))
    assert row.actor == admin_user and row.changes["before"]["devices"] == 2
    client = Client()
    assert password_step(client, "agnes")["Location"] == "/"  # the password alone again


def test_admins_never_see_the_secrets_in_admin(admin_client):
    assert admin_client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert admin_client.get("/admin/otp_static/staticdevice/").status_code == 404
    assert admin_client.get("/admin/servicedesk/signinpolicy/").status_code == 200


def test_the_policy_is_changed_in_admin_and_applies_at_once(admin_client, agent,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/servicedesk/signinpolicy/add/",
                                     {"require_agents": "on", "require_managers": "", "require_admins": ""})
    assert response.status_code == 302
    assert twofactor.policy_current().agents is True
    assert AuditLog.objects.filter(action="signinpolicy.added").exists()
    assert password_step(Client(), "agnes")["Location"] == "/login/enrol/"


# --- codes sent at once ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["form", "api"])
def test_wrong_codes_sent_at_once_are_judged_one_by_one_and_none_past_the_limit_is_checked(
        agent, monkeypatch, settings, where):
    """Eight guesses at once by someone who has the password: each used to pass the lockout check before any
    was counted, so all eight were checked. Now the lockout is read, the code checked and counted while the
    authenticator's row is locked: exactly LOGIN_FAILURE_LIMIT codes are checked, the rest are refused."""
    import threading

    from django.db import connection

    phone, _ = enrol(agent)
    right = code_at(phone)
    wrong = "000000" if right != "000000" else "999999"
    checked = []
    real_verify = TOTPDevice.verify_token

    def slow_verify(self, token):  # the real check, slowed so that the requests overlap
        checked.append(token)
        time.sleep(0.2)
        return real_verify(self, token)

    monkeypatch.setattr(TOTPDevice, "verify_token", slow_verify)
    clients = [Client() for _ in range(8)]
    if where == "form":
        for client in clients:
            assert password_step(client, "agnes")["Location"] == "/login/code/"
    start, answers = threading.Barrier(len(clients)), []

    def guess(client):
        try:
            start.wait()
            if where == "form":
                answers.append(client.post("/login/code/", {"code": wrong}).status_code)
            else:
                answers.append(token(wrong).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    limit = settings.LOGIN_FAILURE_LIMIT
    assert len(checked) == limit
    assert sorted(answers) == sorted([200 if where == "form" else 400] * (limit - 1) + [429] * (8 - limit + 1))
    assert AccessAttempt.objects.get(username="agnes").failures_since_start == limit


# --- the profile's set-up asks for the password again after a while -----------------------------------


def test_setting_up_from_the_profile_long_after_signing_in_asks_for_the_password_first(agent, settings):
    """A browser left signed in: whoever sits at it could set up their own authenticator on the account. After
    TWO_FACTOR_STEP_MINUTES the set-up asks for the password first, counted like a sign-in."""
    client = Client()
    assert password_step(client, "agnes")["Location"] == "/"
    session = client.session
    session[twofactor.PROVED_AT] -= settings.TWO_FACTOR_STEP_MINUTES * 60 + 1
    session.save()
    page = client.get("/profile/two-factor/enrol/")
    assert page.status_code == 200 and 'data-testid="password-step"' in page.content.decode()
    assert 'data-testid="totp-secret"' not in page.content.decode()
    assert not TOTPDevice.objects.filter(user=agent).exists()
    # A code without the password is not taken either.
    assert 'data-testid="password-step"' in client.post("/profile/two-factor/enrol/", {"code": "123456"}).content.decode()
    wrong = client.post("/profile/two-factor/enrol/", {"password": "not-it"})
    assert wrong.status_code == 400 and "That is not your password." in wrong.content.decode()
    assert AccessAttempt.objects.get(username="agnes").failures_since_start == 1
    right = client.post("/profile/two-factor/enrol/", {"password": PASSWORD})
    assert right["Location"] == "/profile/two-factor/enrol/"
    secret = secret_on(client.get("/profile/two-factor/enrol/"))
    assert client.post("/profile/two-factor/enrol/", {"code": code_at(pyotp.TOTP(secret))})["Location"] == \
        "/profile/two-factor/codes/"
    assert twofactor.has_second_factor(agent)


def test_a_fresh_sign_in_sets_up_without_the_password_again(agent):
    client = Client()
    password_step(client, "agnes")
    assert 'data-testid="totp-secret"' in client.get("/profile/two-factor/enrol/").content.decode()
