"""LDAP / Active Directory sign-in against a real slapd started for these tests (tests.peers_ldap).

The login form, django-axes and the ModelBackend are the real ones; the directory is Debian's slapd on a
free 127.0.0.1 port with a throwaway database. If slapd is not installed these tests fail (.ci/run
installs it).
"""

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from itertools import count
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from servicedesk.ldap_env import GROUP_TYPE_NAMES, ldap_settings_check
from servicedesk.models import AuditLog, Profile, Team, TeamMembership
from servicedesk.roles import Role, role_of
from tests.conftest import PASSWORD
from tests.peers import free_port
from tests.peers_ldap import Slapd, configure_ldap

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
_uids = count(1)


@pytest.fixture(scope="session")
def directory():
    with Slapd(tls=True) as slapd:
        yield slapd


@pytest.fixture
def ldap_on(settings, directory):
    configure_ldap(settings, directory)
    for name in ("Network", "Service Desk", "Facilities"):
        Team.objects.get_or_create(name=name)
    return directory


@pytest.fixture
def person(directory):
    """A fresh directory user for each test, in no group yet."""
    n = next(_uids)
    uid = f"ldapuser{n}"
    directory.add_user(uid, "Dir-pass-1!", given="Dora", sn=f"Explorer{n}", mail=f"{uid}@example.org",
                       uid_number=20000 + n)
    return uid


def sign_in(username, password, client=None):
    client = client or Client()
    response = client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR="198.51.100.7")
    return client, response


def signed_in_user(client):
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(id=user_id) if user_id else None


def teams_of(user):
    return set(TeamMembership.objects.filter(user=user).values_list("team__name", flat=True))


# --- first sign-in, re-sync, refusals ------------------------------------------------------------


def test_a_first_sign_in_creates_the_account_with_names_email_role_and_teams(ldap_on, person):
    directory = ldap_on
    directory.set_members("sd-agents", [person])
    directory.set_members("network", [person])
    client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 302
    user = signed_in_user(client)
    assert user is not None and user.username == person
    assert (user.first_name, user.email) == ("Dora", f"{person}@example.org")
    assert user.last_name.startswith("Explorer")
    assert not user.has_usable_password()  # the directory checks the password, never a copy here
    assert role_of(user) == Role.AGENT
    assert teams_of(user) == {"Network"}
    assert Profile.objects.filter(user=user).exists()
    actions = list(AuditLog.objects.filter(object_id=str(user.id)).order_by("id").values_list("action", flat=True))
    assert actions == ["user.created", "user.directory_sync"]
    assert response["Location"] == "/"
    assert Client().get("/").status_code == 302  # (a stranger is sent to sign in)
    assert client.get("/", follow=True).redirect_chain[-1][0].startswith("/agent")


def test_the_next_sign_in_follows_a_group_change_in_the_directory(ldap_on, person):
    directory = ldap_on
    directory.set_members("sd-managers", [person])
    directory.set_members("desk", [person])
    client, _ = sign_in(person, "Dir-pass-1!")
    user = signed_in_user(client)
    assert role_of(user) == Role.MANAGER and user.is_staff
    assert teams_of(user) == {"Service Desk"}

    directory.set_members("sd-managers", [])
    directory.set_members("desk", [])
    directory.set_members("sd-agents", [person])
    directory.set_members("network", [person])
    client, _ = sign_in(person, "Dir-pass-1!")
    user = signed_in_user(client)
    assert role_of(user) == Role.AGENT and not user.is_staff
    assert teams_of(user) == {"Network"}
    change = AuditLog.objects.filter(action="user.directory_sync", object_id=str(user.id)).first()
    assert change.changes == {"source": "ldap", "role": {"old": "manager", "new": "agent"},
                              "teams": {"added": ["Network"], "removed": ["Service Desk"]}}

    directory.set_members("sd-agents", [])
    client, _ = sign_in(person, "Dir-pass-1!")
    user = signed_in_user(client)
    assert role_of(user) == Role.REQUESTER
    assert teams_of(user) == set()
    assert get_user_model().objects.filter(username=person).count() == 1


def test_group_names_as_well_as_dns_and_any_case_map(settings, ldap_on, person):
    directory = ldap_on
    settings.LDAP_GROUP_ROLES = {"CN=SD-Admins, OU=Groups, DC=Example, DC=Org": "admin"}
    settings.LDAP_GROUP_TEAMS = {"Facilities": "Facilities"}  # the group's cn, not its DN
    directory.set_members("sd-admins", [person])
    directory.set_members("facilities", [person])
    client, _ = sign_in(person, "Dir-pass-1!")
    user = signed_in_user(client)
    assert role_of(user) == Role.ADMIN and user.is_staff and not user.is_superuser
    assert teams_of(user) == {"Facilities"}


def test_a_wrong_password_is_refused_and_counted_and_a_locked_username_never_reaches_the_directory(
        ldap_on, person, caplog):
    with caplog.at_level(logging.DEBUG, logger="django_auth_ldap"):
        for n in range(5):
            client, response = sign_in(person, f"guess-{n}")
            assert response.status_code == (200 if n < 4 else 429)
            assert signed_in_user(client) is None
    # The wrong passwords were checked by the directory (a bind as the person's DN)...
    assert f"Binding as {ldap_on.user_dn(person)}" in caplog.text
    caplog.clear()
    assert AccessAttempt.objects.get(username=person).failures_since_start == 5
    assert not get_user_model().objects.filter(username=person).exists()
    with caplog.at_level(logging.DEBUG, logger="django_auth_ldap"):
        client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 429
    assert "Too many failed sign-in attempts for this username" in response.content.decode()
    assert signed_in_user(client) is None
    # ...the right one, once the username is locked, never reached it: no search, no bind.
    assert not [r for r in caplog.records if r.name == "django_auth_ldap"]


def test_a_directory_password_change_takes_effect_at_once(ldap_on, person):
    assert sign_in(person, "Dir-pass-1!")[1].status_code == 302
    ldap_on.set_password(person, "New-pass-2!")
    assert sign_in(person, "Dir-pass-1!")[1].status_code == 200
    assert sign_in(person, "New-pass-2!")[1].status_code == 302


def test_a_local_account_still_signs_in_with_ldap_on(ldap_on, make_user):
    local = make_user("agent", username="localagent")
    client, response = sign_in("localagent", PASSWORD)
    assert response.status_code == 302
    assert signed_in_user(client) == local
    assert role_of(local) == Role.AGENT


def test_a_user_outside_the_search_base_is_refused(settings, ldap_on, person):
    settings.LDAP_USER_SEARCH_BASE = f"ou=groups,{ldap_on.suffix}"
    client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert not get_user_model().objects.filter(username=person).exists()


def test_an_error_reading_the_groups_refuses_the_sign_in_and_writes_nothing(settings, ldap_on, person, caplog):
    settings.LDAP_GROUP_SEARCH_BASE = f"ou=missing,{ldap_on.suffix}"
    with caplog.at_level(logging.WARNING, logger="servicedesk.ldap_signin"):
        client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 200
    assert signed_in_user(client) is None
    assert not get_user_model().objects.filter(username=person).exists()  # the account creation rolled back
    assert f"ldap: sign-in of '{person}' through {ldap_on.url} failed: No such object" in caplog.text


# --- the directory down ----------------------------------------------------------------------------


def test_with_the_directory_down_local_accounts_sign_in_and_directory_users_are_refused(
        settings, ldap_on, person, make_user, caplog):
    down = f"ldap://127.0.0.1:{free_port()}"  # nothing listens there
    settings.LDAP_SERVER_URI = down
    make_user("agent", username="localagent")
    with caplog.at_level(logging.WARNING, logger="servicedesk.ldap_signin"):
        client, response = sign_in("localagent", PASSWORD)
        assert response.status_code == 302 and signed_in_user(client).username == "localagent"
        client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert signed_in_user(client) is None
    assert f"ldap: sign-in of 'localagent' through {down} failed: Can't contact LDAP server" in caplog.text
    assert "trying the next backend (local accounts)" in caplog.text


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers: a directory that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"ldap://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()
        for conn in self.held:
            conn.close()
        self.thread.join(timeout=5)


def test_a_directory_that_hangs_costs_a_local_sign_in_only_the_timeout(settings, ldap_on, make_user):
    make_user("agent", username="localagent")
    settings.LDAP_TIMEOUT = 1
    with SilentServer() as silent:
        settings.LDAP_SERVER_URI = silent.url
        started = time.monotonic()
        client, response = sign_in("localagent", PASSWORD)
        elapsed = time.monotonic() - started
    assert response.status_code == 302 and signed_in_user(client).username == "localagent"
    assert silent.held, "the backend never connected to the silent server"
    assert 0.9 < elapsed < 4


# --- StartTLS ----------------------------------------------------------------------------------------


def test_start_tls_with_the_directory_ca_signs_in(settings, ldap_on, person):
    settings.LDAP_START_TLS = True
    settings.LDAP_CA_FILE = ldap_on.ca_file
    ldap_on.set_members("sd-agents", [person])
    client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 302
    assert role_of(signed_in_user(client)) == Role.AGENT


def test_start_tls_refuses_a_server_whose_certificate_another_ca_signed(settings, ldap_on, person, tmp_path,
                                                                         caplog):
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=Someone else", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(other_ca)], check=True, capture_output=True)
    settings.LDAP_START_TLS = True
    settings.LDAP_CA_FILE = str(other_ca)
    with caplog.at_level(logging.WARNING, logger="servicedesk.ldap_signin"):
        client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 200 and signed_in_user(client) is None
    assert "ldap: sign-in of" in caplog.text and "Connect error" in caplog.text
    assert not get_user_model().objects.filter(username=person).exists()


# --- settings -------------------------------------------------------------------------------------


def settings_in_subprocess(env: dict, code: str = "") -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with these environment variables."""
    script = ("import os, sys\n" + code + "\nimport django\nfrom django.conf import settings\n"
              "print(json.dumps(settings.AUTHENTICATION_BACKENDS))\nprint('ldap' in sys.modules)\n")
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("LDAP_")},
                "DJANGO_SETTINGS_MODULE": "servicedesk.settings", **env}
    return subprocess.run([sys.executable, "-c", "import json\n" + script], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_without_ldap_server_uri_nothing_of_ldap_is_loaded():
    result = settings_in_subprocess({})
    assert result.returncode == 0, result.stderr
    backends, loaded = result.stdout.splitlines()[-2:]
    assert json.loads(backends) == ["servicedesk.signin.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
    assert loaded == "False"


def test_with_ldap_server_uri_the_backend_goes_between_axes_and_local_accounts():
    result = settings_in_subprocess({"LDAP_SERVER_URI": "ldap://127.0.0.1:389",
                                     "LDAP_USER_SEARCH_BASE": "ou=people,dc=example,dc=org"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-2]) == [
        "servicedesk.signin.LockoutBackend", "servicedesk.ldap_signin.DirectoryLDAPBackend",
        "django.contrib.auth.backends.ModelBackend"]


def test_a_bad_group_map_stops_the_start_naming_the_setting():
    result = settings_in_subprocess({"LDAP_GROUP_ROLES": '{"cn=x": "boss"}'})
    assert result.returncode != 0
    assert "ImproperlyConfigured: LDAP_GROUP_ROLES: 'boss' (for group 'cn=x') is not a role" in result.stderr


GOOD = {"server_uri": "ldap://127.0.0.1", "user_search_base": "dc=x", "user_filter": "(uid=%(user)s)",
        "group_search_base": "", "group_type": "groupOfNames", "group_roles": {}, "group_teams": {},
        "start_tls": False, "ca_file": "", "timeout": 5}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"user_search_base": " "}, "LDAP_USER_SEARCH_BASE must be set"),
        ({"server_uri": "127.0.0.1"}, "LDAP_SERVER_URI='127.0.0.1' must start with ldap://"),
        ({"user_filter": "(uid=x)"}, "LDAP_USER_FILTER='(uid=x)' must contain %(user)s"),
        ({"group_type": "ad"}, "LDAP_GROUP_TYPE='ad' is not one of"),
        ({"group_roles": {"cn=x": "agent"}}, "LDAP_GROUP_ROLES / LDAP_GROUP_TEAMS need LDAP_GROUP_SEARCH_BASE"),
        ({"ca_file": "/nowhere.pem"}, "LDAP_CA_FILE='/nowhere.pem' is not a file"),
        ({"server_uri": "ldaps://127.0.0.1", "start_tls": True}, "LDAP_START_TLS=1 with an ldaps:// LDAP_SERVER_URI"),
        ({"timeout": 0}, "LDAP_TIMEOUT must be 1 second or more"),
    ],
)
def test_ldap_settings_that_cannot_work_are_refused_naming_the_setting(change, message):
    ldap_settings_check(**GOOD)  # the baseline passes
    with pytest.raises(ImproperlyConfigured) as caught:
        ldap_settings_check(**{**GOOD, **change})
    assert message in str(caught.value)


def test_every_group_type_setting_has_a_django_auth_ldap_class():
    from servicedesk.ldap_signin import GROUP_TYPES

    assert set(GROUP_TYPES) == set(GROUP_TYPE_NAMES)


def test_ldap_on_without_the_ldap_packages_says_which_extra_to_install():
    # sys.modules[name] = None makes `import ldap` fail as it does where python-ldap is not installed.
    result = settings_in_subprocess({"LDAP_SERVER_URI": "ldap://127.0.0.1", "LDAP_USER_SEARCH_BASE": "dc=x"},
                                    code="sys.modules['ldap'] = None")
    assert result.returncode != 0
    assert "LDAP_SERVER_URI is set but the LDAP packages are missing" in result.stderr
    assert "pip install -e '.[ldap]'" in result.stderr


# --- every spelling of a directory username is one lockout counter ------------------------------------


def spellings(uid):
    """Ways to type one directory username, all of which the directory signs in to the same account."""
    return [uid, uid.upper(), uid.capitalize(), uid.swapcase().capitalize(), f" {uid.upper()} ", uid.title()]


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_guesses_in_other_spellings_of_a_directory_username_share_one_lockout(ldap_on, person, path):
    """Five wrong passwords, each in another spelling: the sixth spelling, with the right password, is refused.
    Each spelling used to have its own count, and a success cleared them: unlimited guesses."""
    names = spellings(person)
    for n, name in enumerate(names[:5]):
        response = Client().post(path, {"username": name, "password": f"guess-{n}"}, REMOTE_ADDR="198.51.100.7")
        assert response.status_code == (200 if n < 4 else 429), name
    client = Client()
    response = client.post(path, {"username": names[5], "password": "Dir-pass-1!"}, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 429
    assert signed_in_user(client) is None
    assert list(AccessAttempt.objects.values_list("username", "failures_since_start")) == [(person, 5)]


def test_guesses_in_other_spellings_share_one_lockout_at_the_api_token_endpoint(ldap_on, person):
    from rest_framework.test import APIClient

    names = spellings(person)
    for n, name in enumerate(names[:5]):
        response = APIClient().post("/api/v1/auth/token/", {"username": name, "password": f"guess-{n}"},
                                    format="json")
        assert response.status_code == (400 if n < 4 else 429), name
    response = APIClient().post("/api/v1/auth/token/", {"username": names[5], "password": "Dir-pass-1!"},
                                format="json")
    assert response.status_code == 429 and "token" not in response.json()


@pytest.mark.parametrize("normalised", [True, False])
def test_the_api_checks_the_accounts_own_lockout_before_a_two_factor_code(settings, ldap_on, person, normalised):
    """A directory user with an authenticator, the password known: wrong codes lock the account's name, and a
    right code sent under another spelling is then refused too (it used to be checked: unlimited guesses).
    `normalised=False` takes away the username normaliser, to show the API's own check holds without it."""
    from rest_framework.test import APIClient

    from tests.servicedesk.test_twofactor import code_at, enrol

    if not normalised:
        settings.AXES_USERNAME_CALLABLE = None
    sign_in(person, "Dir-pass-1!")
    user = get_user_model().objects.get(username=person)
    phone, _ = enrol(user)
    right = code_at(phone)
    wrong = "000000" if right != "000000" else "999999"
    names = spellings(person)

    def token(name, otp):
        return APIClient().post("/api/v1/auth/token/", {"username": name, "password": "Dir-pass-1!", "otp": otp},
                                format="json")

    answers = [token(name, wrong).status_code for name in names[:5]]
    assert answers == [400] * 4 + [429]
    refused = token(names[5], right)
    assert refused.status_code == 429 and "token" not in refused.json()
    assert int(refused["Retry-After"]) > 0
    assert AccessAttempt.objects.get(username=person).failures_since_start == 5


def test_a_group_whose_name_is_the_admin_groups_dn_gives_nothing(ldap_on, person):
    """Someone who may create groups makes one named "cn=sd-admins,ou=groups,dc=example,dc=org" (its cn, not
    its DN) and puts themselves in it: the role map's key is a DN, so only the real group's DN matches it."""
    import ldap.dn

    directory = ldap_on
    lookalike = directory.group_dn("sd-admins")
    rdn = f"cn={ldap.dn.escape_dn_chars(lookalike)}"
    directory._ldap("ldapadd", f"dn: {rdn},{directory.groups}\nobjectClass: groupOfNames\ncn: {lookalike}\n"
                               f"member: {directory.user_dn(person)}\n")
    try:
        client, response = sign_in(person, "Dir-pass-1!")
        assert response.status_code == 302
        user = signed_in_user(client)
        assert role_of(user) == Role.REQUESTER and not user.is_staff
    finally:
        directory._ldap("ldapdelete", f"{rdn},{directory.groups}\n")


# --- which account: bound to the directory entry, never taken over by its username --------------------


def entry_uuid(directory, uid):
    import ldap

    conn = ldap.initialize(directory.url)
    try:
        conn.simple_bind_s(directory.bind_dn, directory.bind_password)
        [(_, attrs)] = conn.search_s(directory.user_dn(uid), ldap.SCOPE_BASE, attrlist=["entryUUID"])
    finally:
        conn.unbind_s()
    return attrs["entryUUID"][0].decode()


def test_the_account_the_directory_creates_is_bound_to_the_entrys_uuid(ldap_on, person):
    from servicedesk.models import ExternalIdentity

    client, _ = sign_in(person, "Dir-pass-1!")
    user = signed_in_user(client)
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == ("ldap:directory", entry_uuid(ldap_on, person))
    assert identity.last_sign_in_at is not None
    created = AuditLog.objects.get(action="user.created", object_id=str(user.id))
    assert created.changes["subject"] == identity.subject and created.changes["issuer"] == "ldap:directory"


def test_a_renamed_entry_still_signs_in_to_its_account(ldap_on, person):
    """The binding is the entry's entryUUID, not its name: a uid changed in the directory keeps the account."""
    user = signed_in_user(sign_in(person, "Dir-pass-1!")[0])
    new_uid = f"{person}-renamed"
    ldap_on._ldap("ldapmodify", f"dn: {ldap_on.user_dn(person)}\nchangetype: modrdn\nnewrdn: uid={new_uid}\n"
                                "deleteoldrdn: 1\n")
    client, response = sign_in(new_uid, "Dir-pass-1!")
    assert response.status_code == 302
    assert signed_in_user(client) == user
    assert not get_user_model().objects.filter(username=new_uid).exists()


@pytest.mark.parametrize("superuser", [True, False])
def test_a_directory_user_named_like_a_local_account_does_not_take_it_over(ldap_on, person, make_user, caplog,
                                                                           superuser):
    """A local account (here a break-glass superuser, or an agent) whose username a directory entry also has:
    the directory's password used to sign in to it, overwriting its email. Now refused, on record, and the
    local account is untouched and still signs in with its own password."""
    from servicedesk.models import ExternalIdentity

    local = make_user("admin" if superuser else "agent", username=person, email="breakglass@desk.example")
    assert local.is_superuser is superuser
    with caplog.at_level(logging.WARNING, logger="servicedesk.ldap_signin"):
        client, response = sign_in(person.upper(), "Dir-pass-1!")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert signed_in_user(client) is None
    local.refresh_from_db()
    assert (local.email, local.is_superuser, local.has_usable_password()) == ("breakglass@desk.example", superuser,
                                                                              True)
    assert not ExternalIdentity.objects.exists()
    assert get_user_model().objects.filter(username__iexact=person).count() == 1
    assert f"directory user {person.upper()} (uid={person}," in caplog.text
    assert f"collides with local account {person}" in caplog.text
    row = AuditLog.objects.get(action="user.directory_collision")
    assert row.object_id == str(local.id) and row.changes["subject"] == entry_uuid(ldap_on, person)
    assert row.changes["superuser"] is superuser
    client, response = sign_in(person, PASSWORD)  # the local password still works
    assert response.status_code == 302 and signed_in_user(client) == local


def test_an_admin_binds_an_existing_account_and_the_directory_then_signs_in_to_it(ldap_on, person, make_user):
    from django.core.management import call_command

    local = make_user("agent", username=person, email="old@desk.example")
    assert sign_in(person, "Dir-pass-1!")[1].status_code == 200  # refused: not bound
    out = __import__("io").StringIO()
    call_command("directory_bind", person, stdout=out)
    assert f"Bound {person} to uid={person}," in out.getvalue()
    assert entry_uuid(ldap_on, person) in out.getvalue()
    row = AuditLog.objects.get(action="user.directory_bound")
    assert row.object_id == str(local.id) and row.changes["after"] == {"subjects": [entry_uuid(ldap_on, person)]}
    client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 302 and signed_in_user(client) == local
    local.refresh_from_db()
    assert local.email == f"{person}@example.org"  # from now on the directory's


def test_directory_bind_refuses_a_superuser_and_says_what_to_add_by_hand(ldap_on, person, make_user):
    from django.core.management import CommandError, call_command

    from servicedesk.models import ExternalIdentity

    assert make_user("admin", username=person).is_superuser
    out = __import__("io").StringIO()
    with pytest.raises(CommandError, match="A superuser is never bound by a command"):
        call_command("directory_bind", person, stdout=out)
    assert "issuer:  ldap:directory" in out.getvalue() and entry_uuid(ldap_on, person) in out.getvalue()
    assert not ExternalIdentity.objects.exists()
    make_user("agent", username="nobody-here")
    with pytest.raises(CommandError, match="The directory has no entry for 'nobody-here'"):
        call_command("directory_bind", "nobody-here", stdout=out)


@pytest.mark.django_db(transaction=True)
def test_the_directory_is_read_before_the_database_transaction(ldap_on, person, monkeypatch):
    """The groups (the last directory call) are read with no transaction open, so no connection or row lock is
    held while the directory answers; they used to be read inside it, after the account was written."""
    from django.db import connection
    from django_auth_ldap.config import GroupOfNamesType

    in_transaction = []
    real = GroupOfNamesType.user_groups

    def user_groups(self, ldap_user, group_search):
        in_transaction.append(connection.in_atomic_block)
        return real(self, ldap_user, group_search)

    monkeypatch.setattr(GroupOfNamesType, "user_groups", user_groups)
    ldap_on.set_members("sd-agents", [person])
    client, response = sign_in(person, "Dir-pass-1!")
    assert response.status_code == 302 and role_of(signed_in_user(client)) == Role.AGENT
    assert in_transaction == [False]
