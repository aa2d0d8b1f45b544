"""OpenID Connect sign-in: which account a provider's claims get, the id token checks, the switch.

The whole browser flow against a real provider is in tests/e2e/test_oidc.py; here the rules are taken one by one.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.test import Client

from servicedesk.models import AuditLog, ExternalIdentity, Team
from servicedesk.oidc import OIDCBackend, Provider, SignInRefused, oidc_user_sign_in, username_candidates
from servicedesk.roles import Role, role_of
from tests.conftest import PASSWORD
from tests.peers import free_port

ISSUER = "https://id.contoso.test"
ROOT = Path(__file__).resolve().parents[2]


def claims(**extra):
    return {"email": "ann@contoso.test", "email_verified": True, "given_name": "Ann", "family_name": "Lee",
            "preferred_username": "ann", **extra}


@pytest.fixture
def oidc(settings):
    settings.OIDC_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "servicedesk.oidc.OIDCBackend"]
    settings.OIDC_RP_CLIENT_ID = "servicedesk"
    settings.OIDC_GROUP_ROLES = {"sd-agents": "agent", "sd-admins": "admin"}
    settings.OIDC_GROUP_TEAMS = {"net": "Network"}
    settings.OIDC_ASSUME_EMAIL_VERIFIED = False
    settings.OIDC_CREATE_USER = True
    settings.OIDC_ALLOWED_EMAIL_DOMAINS = []
    return settings


def fresh(user):
    return get_user_model().objects.get(id=user.id)


@pytest.mark.django_db
class TestWhichAccount:
    def test_it_creates_a_requester_on_first_sign_in_and_binds_the_subject(self, oidc):
        user = oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())
        assert (user.username, user.email, user.first_name, user.last_name) == ("ann", "ann@contoso.test", "Ann", "Lee")
        assert not user.has_usable_password()
        assert role_of(fresh(user)) == Role.REQUESTER
        assert ExternalIdentity.objects.get(issuer=ISSUER, subject="s-1").user == user
        assert AuditLog.objects.filter(action="user.created", object_id=str(user.id)).exists()

    def test_it_never_takes_over_an_account_whose_username_the_claims_name(self, oidc, make_user):
        admin = make_user("admin", username="ann", email="root@contoso.test")
        user = oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())
        assert user.id != admin.id and user.username == "ann-2"
        assert role_of(fresh(admin)) == Role.ADMIN and fresh(admin).email == "root@contoso.test"

    def test_it_cleans_the_username_from_the_claims(self):
        assert next(username_candidates({"preferred_username": "Ann Lee/../x"})) == "AnnLee..x"
        assert next(username_candidates({"email": "o'brien@contoso.test"})) == "obrien"
        assert next(username_candidates({})) == "user"

    def test_the_same_subject_signs_in_to_the_same_account_even_with_a_new_email(self, oidc):
        first = oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())
        again = oidc_user_sign_in(issuer=ISSUER, subject="s-1",
                                  claims=claims(email="ann.lee@contoso.test", family_name="Lee-Park"))
        assert again.id == first.id
        assert (fresh(first).email, fresh(first).last_name) == ("ann.lee@contoso.test", "Lee-Park")
        assert get_user_model().objects.count() == 1

    def test_an_unverified_new_email_is_not_copied_onto_a_bound_account(self, oidc):
        user = oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())
        oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(email="evil@x.test", email_verified=False))
        assert fresh(user).email == "ann@contoso.test"

    def test_it_joins_a_requesters_local_account_by_verified_email(self, oidc, make_user):
        local = make_user("requester", username="annlocal", email="ANN@contoso.test")
        user = oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())
        assert user.id == local.id
        assert ExternalIdentity.objects.get(subject="s-1").user_id == local.id
        assert AuditLog.objects.filter(action="user.sso_bound", object_id=str(local.id)).exists()

    @pytest.mark.parametrize("role", ["agent", "manager", "admin"])
    def test_it_refuses_to_join_an_agents_or_admins_account_by_email(self, oidc, make_user, role):
        make_user(role, username="boss", email="ann@contoso.test")
        with pytest.raises(SignInRefused, match="not joined to your single sign-on account automatically"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(groups=["sd-admins"]))
        assert not ExternalIdentity.objects.exists()
        assert get_user_model().objects.count() == 1

    def test_an_admin_bound_identity_signs_in_to_the_staff_account(self, oidc, make_user):
        boss = make_user("agent", username="boss", email="ann@contoso.test")
        ExternalIdentity.objects.create(user=boss, issuer=ISSUER, subject="s-1")
        assert oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(groups=["sd-agents"])).id == boss.id

    def test_it_refuses_an_unverified_email_unless_told_to_assume_it(self, oidc):
        with pytest.raises(SignInRefused, match="has not verified your email address"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(email_verified=False))
        with pytest.raises(SignInRefused, match="has not verified"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims={"email": "ann@contoso.test"})
        assert not get_user_model().objects.exists()
        oidc.OIDC_ASSUME_EMAIL_VERIFIED = True
        # Absent is assumed verified; an explicit false is still believed.
        assert oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims={"email": "ann@contoso.test"})
        with pytest.raises(SignInRefused):
            oidc_user_sign_in(issuer=ISSUER, subject="s-2", claims=claims(email="b@contoso.test",
                                                                          email_verified=False))

    def test_entra_ids_verified_domain_claim_counts_when_email_verified_is_absent(self, oidc):
        assert oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims={"email": "ann@contoso.test", "xms_edov": True})
        with pytest.raises(SignInRefused, match="has not verified"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-2", claims={"email": "b@contoso.test", "xms_edov": False})

    def test_only_allowed_email_domains_sign_in_when_set(self, oidc):
        oidc.OIDC_ALLOWED_EMAIL_DOMAINS = ["contoso.test"]
        with pytest.raises(SignInRefused, match="only addresses at contoso.test"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(email="ann@gmail.test"))
        assert oidc_user_sign_in(issuer=ISSUER, subject="s-2", claims=claims(email="Ann@Contoso.test"))

    def test_a_string_true_email_verified_counts(self, oidc):
        assert oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(email_verified="true"))

    def test_an_account_bound_to_someone_else_of_the_same_provider_is_not_joined(self, oidc, make_user):
        local = make_user("requester", username="annlocal", email="ann@contoso.test")
        ExternalIdentity.objects.create(user=local, issuer=ISSUER, subject="s-other")
        with pytest.raises(SignInRefused, match="belongs to another person"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())

    def test_a_disabled_account_is_refused(self, oidc):
        user = oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())
        user.is_active = False
        user.save()
        with pytest.raises(SignInRefused, match="disabled"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())

    def test_without_account_creation_only_existing_accounts_sign_in(self, oidc):
        oidc.OIDC_CREATE_USER = False
        with pytest.raises(SignInRefused, match="no Servicedesk account for ann@contoso.test"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims())

    def test_groups_set_role_and_teams_and_follow_the_directory(self, oidc):
        Team.objects.create(name="Network")
        user = oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(groups=["sd-agents", "net"]))
        assert role_of(fresh(user)) == Role.AGENT
        assert list(user.memberships.values_list("team__name", flat=True)) == ["Network"]
        oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(groups=[]))
        assert role_of(fresh(user)) == Role.REQUESTER
        assert not user.memberships.exists()

    def test_too_many_groups_to_send_leaves_role_and_teams_alone(self, oidc):
        user = oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(groups=["sd-agents"]))
        oidc_user_sign_in(issuer=ISSUER, subject="s-1",
                          claims=claims(_claim_names={"groups": "src1"}, _claim_sources={"src1": {}}))
        assert role_of(fresh(user)) == Role.AGENT

    def test_a_groups_claim_that_is_not_a_list_is_refused(self, oidc):
        with pytest.raises(SignInRefused, match="not a list of groups"):
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(groups={"a": 1}))


class TestIdTokenChecks:
    """The id token checks on top of mozilla-django-oidc's (signature, algorithm, expiry, nonce), with real
    RS256 signatures made here."""

    @pytest.fixture
    def backend(self, settings):
        settings.OIDC_RP_CLIENT_ID = "servicedesk"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        backend = OIDCBackend()
        backend.OIDC_RP_IDP_SIGN_KEY = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        backend.provider = Provider(issuer=ISSUER, authorization_endpoint="", token_endpoint="",
                                    userinfo_endpoint="", jwks_uri="", end_session_endpoint="")

        def sign(**fields):
            payload = {"iss": ISSUER, "aud": "servicedesk", "sub": "s-1", "nonce": "n-1",
                       "exp": int(time.time()) + 300, "iat": int(time.time()), **fields}
            return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm="RS256")

        backend.sign = sign
        return backend

    def test_a_good_id_token_passes(self, backend):
        assert backend.verify_token(backend.sign(), nonce="n-1")["sub"] == "s-1"

    @pytest.mark.parametrize("fields, reason", [
        ({"aud": "another-app"}, "another client"),
        ({"aud": ["servicedesk", "another-app"]}, "another party"),
        ({"iss": "https://evil.test"}, "another issuer"),
        ({"nonce": "n-2"}, "Nonce"),
        ({"exp": None}, "lacks sub or exp"),
    ])
    def test_it_refuses_a_token_meant_for_someone_else(self, backend, fields, reason):
        with pytest.raises(SuspiciousOperation, match=reason):
            backend.verify_token(backend.sign(**fields), nonce="n-1")

    def test_an_expired_token_is_refused(self, backend):
        with pytest.raises(jwt.ExpiredSignatureError):
            backend.verify_token(backend.sign(exp=int(time.time()) - 60), nonce="n-1")

    def test_azp_naming_us_makes_several_audiences_acceptable(self, backend):
        token = backend.sign(aud=["servicedesk", "api"], azp="servicedesk")
        assert backend.verify_token(token, nonce="n-1")["azp"] == "servicedesk"


@pytest.mark.django_db
class TestSwitch:
    def test_with_oidc_off_its_urls_are_not_found(self, settings, client):
        settings.OIDC_ENABLED = False
        assert client.get("/oidc/authenticate/").status_code == 404
        assert client.get("/oidc/callback/?code=a&state=b").status_code == 404
        assert b"data-testid=\"oidc-signin\"" not in client.get("/login/").content

    def test_a_password_sign_in_never_calls_the_provider(self, oidc, make_user):
        # The provider is unreachable: a password sign-in does not notice.
        dead = f"http://127.0.0.1:{free_port()}"
        oidc.OIDC_OP_DISCOVERY_URL = f"{dead}/.well-known/openid-configuration"
        make_user("agent", username="dave")
        client = Client()
        page = client.get("/login/")
        assert oidc.OIDC_BUTTON_LABEL.encode() in page.content
        response = client.post("/login/", {"username": "dave", "password": PASSWORD})
        assert response.status_code == 302 and response["Location"] == "/"
        assert client.session.get("sd_signin_method") is None

    def test_a_callback_without_a_started_sign_in_is_refused(self, oidc, client):
        response = client.get("/oidc/callback/?code=abc&state=made-up")
        assert response.status_code == 400
        assert b"its state does not match" in response.content

    def test_an_error_from_the_provider_is_shown(self, oidc, client):
        response = client.get("/oidc/callback/?error=access_denied&error_description=The+user+said+no")
        assert response.status_code == 403
        assert b"did not sign you in: The user said no" in response.content

    def test_switching_oidc_off_ends_the_sessions_it_opened(self, oidc, make_user):
        user = make_user("requester", username="ann")
        client = Client()
        client.force_login(user, backend="servicedesk.oidc.OIDCBackend")
        assert client.get("/portal/").status_code == 200
        oidc.OIDC_ENABLED = False
        assert client.get("/portal/").status_code == 302


def _django_check(**env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}
    environment.update(env)
    code = "import django; django.setup(); from django.conf import settings; print(settings.AUTHENTICATION_BACKENDS)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                          env={**environment, "DJANGO_SETTINGS_MODULE": "servicedesk.settings"},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, message", [
    ({"OIDC_ENABLED": "1"}, "OIDC_ENABLED=1 needs OIDC_RP_CLIENT_ID"),
    ({"OIDC_RP_CLIENT_ID": "sd"}, "needs OIDC_OP_ISSUER or OIDC_OP_DISCOVERY_URL, or else OIDC_OP_AUTHORIZATION_ENDPOINT"),
    ({"OIDC_RP_CLIENT_ID": "sd", "OIDC_OP_ISSUER": ISSUER, "OIDC_GROUP_ROLES": '{"g": "boss"}'},
     "OIDC_GROUP_ROLES: 'boss'"),
    ({"OIDC_RP_CLIENT_ID": "sd", "OIDC_OP_ISSUER": ISSUER, "OIDC_RP_SIGN_ALGO": "HS256"},
     "OIDC_RP_SIGN_ALGO=HS256 needs OIDC_RP_CLIENT_SECRET"),
])
def test_settings_that_make_no_sense_stop_the_start(env, message):
    result = _django_check(**env)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def test_sensible_settings_start_without_reaching_the_provider():
    # The issuer does not exist: nothing is fetched at start.
    on = _django_check(OIDC_RP_CLIENT_ID="sd", OIDC_OP_ISSUER="http://127.0.0.1:9/nowhere")
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip().endswith("'django.contrib.auth.backends.ModelBackend', 'servicedesk.oidc.OIDCBackend']")
    off = _django_check()
    assert off.returncode == 0 and "OIDCBackend" not in off.stdout


@pytest.mark.django_db
def test_an_admin_binds_an_agents_account_to_a_provider_identity_in_the_user_admin(make_user):
    admin, agent = make_user("admin", username="root"), make_user("agent", username="boss")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/auth/user/{agent.id}/change/")
    assert page.status_code == 200 and b"Single sign-on identities" in page.content
    assert b'name="external_identities-TOTAL_FORMS"' in page.content
    ExternalIdentity.objects.create(user=agent, issuer=ISSUER, subject="s-boss")
    page = client.get(f"/admin/auth/user/{agent.id}/change/")
    assert b"s-boss" in page.content


@pytest.mark.django_db
def test_a_returning_sign_in_costs_the_same_queries_whatever_the_number_of_groups(oidc):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Team.objects.create(name="Network")
    oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(groups=["sd-agents", "net"]))
    counts = []
    for groups in (["sd-agents", "net"], ["sd-agents", "net"] + [f"g{n}" for n in range(200)]):
        with CaptureQueriesContext(connection) as queries:
            oidc_user_sign_in(issuer=ISSUER, subject="s-1", claims=claims(groups=groups))
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 10, counts  # 10 on PostgreSQL, savepoints included
