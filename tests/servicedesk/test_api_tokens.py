"""API tokens: hashed at rest, expiring, listed and revoked by their owner, all revoked with the password."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from servicedesk.models import AuditLog
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def issue(user, password=PASSWORD) -> str:
    response = APIClient().post("/api/v1/auth/token/", {"username": user.username, "password": password},
                                format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def api(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def works(token) -> bool:
    return api(token).get("/api/v1/me/").status_code == 200


def test_it_stores_only_a_digest_of_the_token(requester):
    token = issue(requester)
    row = AuthToken.objects.get(user=requester)
    assert row.digest == hashlib.sha512(token.encode()).hexdigest()
    assert row.token_key == token[:15]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knox_authtoken WHERE digest = %s OR token_key = %s", [token, token])
        assert cursor.fetchone()[0] == 0
    assert works(token)


def test_it_answers_the_token_with_its_expiry_and_the_token_expires(requester, settings):
    before = timezone.now()
    response = APIClient().post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json")
    body = response.json()
    assert set(body) == {"token", "expiry"}
    row = AuthToken.objects.get(user=requester)
    assert timedelta(hours=settings.API_TOKEN_TTL_HOURS) <= row.expiry - before < timedelta(
        hours=settings.API_TOKEN_TTL_HOURS, minutes=1)
    assert works(body["token"])
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    response = api(body["token"]).get("/api/v1/me/")
    assert response.status_code == 401
    assert not AuthToken.objects.filter(pk=row.pk).exists()


def test_the_default_lifetime_is_ten_hours(settings):
    assert settings.API_TOKEN_TTL_HOURS == 10
    assert settings.REST_KNOX["TOKEN_TTL"] == timedelta(hours=10)


def test_it_lists_only_the_callers_working_tokens(requester, other_requester):
    first, second = issue(requester), issue(requester)
    issue(other_requester)
    expired = issue(requester)
    AuthToken.objects.filter(token_key=expired[:15]).update(expiry=timezone.now() - timedelta(minutes=1))
    response = api(second).get("/api/v1/auth/tokens/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [second[:15], first[:15]]
    assert [row["current"] for row in rows] == [True, False]
    assert set(rows[0]) == {"id", "created", "expiry", "current"}
    assert first not in response.content.decode() and second not in response.content.decode()


def test_the_owner_revokes_a_token_and_it_stops_working(requester):
    keep, drop = issue(requester), issue(requester)
    response = api(keep).delete(f"/api/v1/auth/tokens/{drop[:15]}/")
    assert response.status_code == 204
    assert not works(drop)
    assert works(keep)
    assert AuditLog.objects.filter(action="api_token.revoked", object_id=str(requester.id)).exists()


def test_nobody_else_can_revoke_a_token(requester, other_requester, agent):
    token = issue(requester)
    for intruder in (other_requester, agent):
        response = api(issue(intruder)).delete(f"/api/v1/auth/tokens/{token[:15]}/")
        assert response.status_code == 404
    assert works(token)


def test_logout_revokes_the_current_token_only(requester):
    current, other = issue(requester), issue(requester)
    assert api(current).post("/api/v1/auth/logout/").status_code == 204
    assert not works(current)
    assert works(other)


def test_logout_all_revokes_every_token_of_the_caller(requester, other_requester):
    mine = [issue(requester) for _ in range(3)]
    theirs = issue(other_requester)
    response = api(mine[0]).post("/api/v1/auth/logout-all/")
    assert response.json() == {"revoked": 3}
    assert not any(works(token) for token in mine)
    assert works(theirs)


def test_token_management_needs_a_signed_in_caller():
    client = APIClient()
    assert client.get("/api/v1/auth/tokens/").status_code == 401
    assert client.post("/api/v1/auth/logout-all/").status_code == 401


# --- a changed password revokes every token, whichever way it changes ------------------------------------


def test_set_password_and_save_revokes_every_token(requester, other_requester):
    tokens = [issue(requester), issue(requester)]
    theirs = issue(other_requester)
    requester.set_password("A-new-pass-2026!")
    requester.save()
    assert not any(works(token) for token in tokens)
    assert works(theirs)
    assert AuditLog.objects.filter(action="api_token.revoked_all", changes__reason="password changed").exists()


def test_saving_the_user_without_a_new_password_keeps_the_tokens(requester):
    token = issue(requester)
    requester.first_name = "Alicia"
    requester.save()
    requester.refresh_from_db()
    requester.save(update_fields=["last_login"])
    assert works(token)


def test_the_password_change_form_revokes_every_token(requester):
    token = issue(requester)
    browser = Client()
    browser.force_login(requester)
    response = browser.post("/profile/password/", {
        "old_password": PASSWORD, "new_password1": "A-new-pass-2026!", "new_password2": "A-new-pass-2026!"})
    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    assert not works(token)
    assert browser.get("/profile/").status_code == 200  # still signed in in this browser


def test_a_password_set_in_admin_revokes_every_token(make_user, requester):
    token = issue(requester)
    admin = Client()
    admin.force_login(make_user("admin", username="root"))
    response = admin.post(f"/admin/auth/user/{requester.id}/password/", {
        "password1": "A-new-pass-2026!", "password2": "A-new-pass-2026!", "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert not works(token)


def test_create_user_with_a_new_password_revokes_every_token(requester):
    from django.core.management import call_command

    token = issue(requester)
    call_command("create_user", "alice", "--role", "requester", "--password", "A-new-pass-2026!")
    assert not works(token)


def test_a_stronger_hash_at_sign_in_is_not_a_password_change(requester, settings):
    """Django re-hashes a password at sign-in when the hasher's settings grow; the tokens stay."""
    token = issue(requester)
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS  # the suite's fast hasher would re-hash for another reason
    type(requester).objects.filter(pk=requester.pk).update(password=_pbkdf2(PASSWORD, iterations=1000))
    second = issue(requester)  # signing in re-hashes the stored password with today's iterations
    requester.refresh_from_db()
    assert requester.password.startswith("pbkdf2_sha256$") and not requester.password.startswith("pbkdf2_sha256$1000$")
    assert works(token) and works(second)


def _pbkdf2(password, *, iterations):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    return PBKDF2PasswordHasher().encode(password, "fixedsaltfixedsalt", iterations=iterations)


PRODUCTION_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
