"""Sign-in that cannot be guessed at: django-axes counting failures in PostgreSQL, on every sign-in path."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from servicedesk.signin import client_address
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

OFFICE = "198.51.100.10"  # one NAT address for a whole office
ELSEWHERE = "192.0.2.77"
ATTACKER = "203.0.113.66"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    # These tests count failures, not hashing: a fast hasher keeps the dozens of attempts quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def colleague(make_user):
    return make_user("requester", username="bob")


def token_attempt(username, password, address=OFFICE, **headers):
    return APIClient().post("/api/v1/auth/token/", {"username": username, "password": password}, format="json",
                            REMOTE_ADDR=address, **headers)


def form_attempt(username, password, address=OFFICE, path="/login/", client=None, **headers):
    return (client or Client()).post(path, {"username": username, "password": password}, REMOTE_ADDR=address,
                                     **headers)


def assert_locked_page(response, whom="this username"):
    assert response.status_code == 429
    text = response.content.decode()
    assert f"Too many failed sign-in attempts for {whom}" in text
    assert "Try again after" in text
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60


# --- a username is locked after the limit, on every path ---------------------------------------------


def test_it_refuses_the_login_form_after_five_wrong_passwords_even_with_the_right_one(requester):
    codes = [form_attempt("alice", f"guess{n}").status_code for n in range(40)]
    assert codes[:4] == [200] * 4  # the form again, with its error
    assert codes[4:] == [429] * 36
    client = Client()
    response = form_attempt("alice", PASSWORD, client=client)
    assert_locked_page(response)
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 5  # refusals are not counted


def test_it_shows_the_form_error_before_the_limit_and_lets_the_right_password_in(requester):
    response = form_attempt("alice", "wrong")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    client = Client()
    assert form_attempt("alice", PASSWORD, client=client).status_code == 302
    assert client.session["_auth_user_id"] == str(requester.id)
    assert not AccessAttempt.objects.filter(username="alice").exists()  # success clears the count


def test_it_refuses_the_admin_login_after_the_limit(make_user):
    make_user("admin", username="root")
    codes = [form_attempt("root", f"guess{n}", path="/admin/login/").status_code for n in range(8)]
    assert codes == [200] * 4 + [429] * 4
    client = Client()
    assert_locked_page(form_attempt("root", PASSWORD, path="/admin/login/", client=client))
    assert "_auth_user_id" not in client.session


def test_it_answers_429_with_when_to_retry_on_the_token_endpoint(requester):
    codes = [token_attempt("alice", f"guess{n}").status_code for n in range(10)]
    assert codes == [400] * 4 + [429] * 6
    response = token_attempt("alice", PASSWORD)
    assert response.status_code == 429
    assert "token" not in response.json()
    assert response.json()["detail"].startswith("Too many failed sign-in attempts for this username. Try again after ")
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60


def test_the_paths_share_one_count(requester):
    form_attempt("alice", "one")
    form_attempt("alice", "two", path="/admin/login/")
    token_attempt("alice", "three")
    token_attempt("alice", "four", address=ELSEWHERE)
    assert form_attempt("alice", "five", address="192.0.2.1").status_code == 429
    assert token_attempt("alice", PASSWORD).status_code == 429


def test_a_locked_username_stays_locked_from_any_other_address(requester):
    for n in range(5):
        token_attempt("alice", f"guess{n}", address=ATTACKER)
    assert token_attempt("alice", PASSWORD, address=ELSEWHERE).status_code == 429
    assert form_attempt("alice", PASSWORD, address=OFFICE).status_code == 429


def test_the_test_clients_login_without_a_request_is_refused_too(requester, client):
    for n in range(5):
        token_attempt("alice", f"guess{n}")
    assert client.login(username="alice", password=PASSWORD) is False


def test_the_lock_lapses_after_the_cool_off(requester):
    for n in range(5):
        token_attempt("alice", f"guess{n}")
    assert token_attempt("alice", PASSWORD).status_code == 429
    last = AccessAttempt.objects.get(username="alice").attempt_time
    AccessAttempt.objects.filter(username="alice").update(attempt_time=last - timedelta(minutes=15, seconds=1))
    assert token_attempt("alice", PASSWORD).status_code == 200


def test_the_limit_and_cool_off_are_settings(settings, requester):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=3)
    assert token_attempt("alice", "one").status_code == 400
    response = token_attempt("alice", "two")
    assert response.status_code == 429
    assert 2 * 60 < int(response["Retry-After"]) <= 3 * 60


# --- the client address: REMOTE_ADDR unless trusted proxies are declared ------------------------------


def test_a_spoofed_x_forwarded_for_neither_escapes_the_lockout_nor_locks_another_address(requester, colleague):
    for n in range(25):  # stuffing from one address, claiming to be the office each time
        token_attempt(f"user{n:03}", "guess", address=ATTACKER, HTTP_X_FORWARDED_FOR=OFFICE)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}
    # The attacker stays locked whatever it claims to be...
    assert token_attempt("bob", PASSWORD, address=ATTACKER, HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429
    # ...and the office it pretended to be signs in as usual.
    assert token_attempt("bob", PASSWORD, address=OFFICE).status_code == 200
    assert form_attempt("alice", PASSWORD, address=OFFICE).status_code == 302


def test_the_client_address_is_remote_addr_unless_proxies_are_trusted(rf, settings):
    spoofed = rf.get("/", REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert client_address(spoofed) == "10.0.0.7"
    settings.TRUSTED_PROXY_COUNT = 1  # one reverse proxy appends the address it saw
    assert client_address(spoofed) == "203.0.113.9"
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_address(spoofed) == "6.6.6.6"
    settings.TRUSTED_PROXY_COUNT = 3  # fewer hops than proxies: the request did not come through them
    assert client_address(spoofed) == "10.0.0.7"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_FOR="6.6.6.6, junk")) == "10.0.0.7"


def test_behind_a_trusted_proxy_failures_count_against_the_forwarded_address(settings, requester):
    settings.TRUSTED_PROXY_COUNT = 1
    token_attempt("alice", "guess", address="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.55")
    assert AccessAttempt.objects.get(username="alice").ip_address == "192.0.2.55"


# --- an office behind one address keeps working; credential stuffing locks the address ---------------


def test_a_locked_username_does_not_stop_a_colleague_behind_the_same_address(requester, colleague):
    for n in range(40):
        token_attempt("alice", f"guess{n}")
    assert token_attempt("alice", PASSWORD).status_code == 429
    assert token_attempt("bob", PASSWORD).status_code == 200
    assert form_attempt("bob", PASSWORD).status_code == 302


def test_many_usernames_failing_from_one_address_lock_that_address(requester, colleague):
    for n in range(19):
        assert token_attempt(f"user{n:03}", "guess").status_code == 400
    # 19 different names: still an office having a bad morning, the address works.
    assert token_attempt("bob", PASSWORD).status_code == 200
    assert token_attempt("user019", "guess").status_code == 429  # the 20th name: credential stuffing
    response = token_attempt("bob", PASSWORD)
    assert response.status_code == 429
    assert "for your network address" in response.json()["detail"]
    assert_locked_page(form_attempt("alice", PASSWORD), whom="your network address")
    assert token_attempt("bob", PASSWORD, address=ELSEWHERE).status_code == 200


def test_the_address_limit_is_a_setting(settings, colleague):
    settings.LOGIN_ADDRESS_USERNAME_LIMIT = 6
    for n in range(5):
        token_attempt(f"user{n:03}", "guess")
    assert token_attempt("bob", PASSWORD).status_code == 200
    token_attempt("user005", "guess")
    assert token_attempt("bob", PASSWORD).status_code == 429


# --- admins unlock -------------------------------------------------------------------------------------


def test_an_admin_unlocks_a_username_in_admin(make_user, requester):
    root = make_user("admin", username="root")
    for n in range(5):
        form_attempt("alice", f"guess{n}")
    assert form_attempt("alice", PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(root)
    listing = admin.get("/admin/axes/accessattempt/?q=alice")
    assert listing.status_code == 200
    assert "alice" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="alice")
    response = admin.post("/admin/axes/accessattempt/", {
        "action": "delete_selected", "_selected_action": [attempt.id], "post": "yes"})
    assert response.status_code == 302
    assert form_attempt("alice", PASSWORD).status_code == 302


def test_an_admin_unlocks_a_username_from_the_command_line(requester):
    for n in range(5):
        token_attempt("alice", f"guess{n}")
    call_command("axes_reset_username", "alice")
    assert token_attempt("alice", PASSWORD).status_code == 200


def test_the_defaults_are_five_failures_fifteen_minutes_twenty_names(settings):
    assert (settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME) == (5, timedelta(minutes=15))
    assert settings.LOGIN_ADDRESS_USERNAME_LIMIT == 20
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"


# --- one counter per username, whatever its spelling ---------------------------------------------------


def test_local_usernames_differing_only_by_case_are_two_accounts_with_one_lockout_counter(make_user):
    """Django allows "Sam" and "sam" as two accounts. Each signs in with its own password to itself; failures
    are counted by the case-folded name, so guesses at either lock both (the safe side)."""
    upper, lower = make_user("requester", username="Sam"), make_user("requester", username="sam")
    for name, user in (("Sam", upper), ("sam", lower)):
        client = Client()
        assert form_attempt(name, PASSWORD, client=client).status_code == 302
        assert client.session["_auth_user_id"] == str(user.id)
    codes = [form_attempt(name, "wrong").status_code for name in ("SAM", "Sam", "sam", "sAm", " sam")]
    assert codes == [200] * 4 + [429]
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["sam"]
    assert_locked_page(form_attempt("Sam", PASSWORD))
    assert_locked_page(form_attempt("sam", PASSWORD))
    assert token_attempt("sam", PASSWORD).status_code == 429


def test_a_success_in_one_spelling_clears_the_count_of_every_spelling(requester):
    """alice's failures typed as "ALICE" are hers: her sign-in clears them (it used to leave them, and a lock
    on "ALICE" never locked "alice")."""
    assert [form_attempt(name, "wrong").status_code for name in ("ALICE", "Alice")] == [200, 200]
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 2
    assert form_attempt("alice", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()
