import pytest
from django.conf import settings

from servicedesk.services import user_provision

PASSWORD = "Test-pass-2026!"


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.exit(
            "\n" + "!" * 78 + "\nThe test suite runs on PostgreSQL, not on "
            f"{engine.rsplit('.', 1)[-1]}. Use `python3 dev.py test`, or set\n"
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/servicedesk and "
            "CELERY_BROKER_URL=redis://127.0.0.1:6379/15\n" + "!" * 78,
            returncode=3,
        )
    # Every test user gets a password; PBKDF2's million iterations cost a third of a second each on this
    # machine, several times per test. The tests that are about hashing set their own hashers.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests make data with service calls between two page loads and read the sidebar's counts at once; the
    # counts' short cache (servicedesk/sidebar.py) has tests of its own that switch it on.
    settings.SIDEBAR_COUNTS_SECONDS = 0
    settings.PORTAL_POPULAR_SECONDS = 0  # the same for the portal's popular requests (tests/requests_app/test_portal_catalog.py)
    settings.TICKET_PANELS_SECONDS = 0  # and a ticket page's shared cards (tests/knowledge/test_ticket_panels.py)
    _flush_by_delete()
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.exit("The test suite needs Redis as the broker: set CELERY_BROKER_URL=redis://127.0.0.1:6379/15",
                    returncode=3)


SNAPSHOT_SCHEMA = "test_flush_snapshot"


def _flush_by_delete():
    """Empty the tables after a transactional test with DELETE instead of TRUNCATE, and put back what migrate left.

    Django's flush truncates all ~100 tables at once: PostgreSQL gives each a new file and takes an exclusive
    lock on each, about 1 s per test here, for tables that hold a few rows. DELETE in one transaction with the
    foreign keys deferred (Django makes them DEFERRABLE INITIALLY DEFERRED) empties them in ~0.1 s. Then the rows
    that migrations and post_migrate wrote (resolution codes, calendars, beat entries, roles...: see
    `django_db_setup` below) are copied back, so a test that runs after a transactional one, in any order (the
    suite runs a file at a time in two processes), finds the database as migrate left it. A flush that must reset
    sequences still truncates."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        restore = [f"INSERT INTO {self.quote_name(table)} ({columns}) SELECT {columns} FROM "
                   f"{SNAPSHOT_SCHEMA}.{self.quote_name(table)}"
                   for table, columns in _snapshot.get(self.connection.settings_dict["NAME"], {}).items()
                   if table in tables]
        return ["SET CONSTRAINTS ALL DEFERRED", *(f"DELETE FROM {self.quote_name(table)}" for table in tables),
                *restore]

    DatabaseOperations.sql_flush = sql_flush


_snapshot: dict[str, dict[str, str]] = {}  # test database name -> {table: its insertable columns}


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database as migrate left it, copied once into a schema of its own for the flush to restore."""
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
        cursor.execute(f"DROP SCHEMA IF EXISTS {SNAPSHOT_SCHEMA} CASCADE; CREATE SCHEMA {SNAPSHOT_SCHEMA}")
        kept = {}
        for table in tables:
            name = connection.ops.quote_name(table)
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name})")
            if not cursor.fetchone()[0]:
                continue
            cursor.execute("""SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                              WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
                                AND attgenerated = ''""", [name])
            kept[table] = cursor.fetchone()[0]
            cursor.execute(f"CREATE TABLE {SNAPSHOT_SCHEMA}.{name} AS SELECT * FROM {name}")
        _snapshot[connection.settings_dict["NAME"]] = kept
    yield


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def make_user(db):
    counter = {"n": 0}

    def make(role="requester", username=None, **kwargs):
        counter["n"] += 1
        username = username or f"{role}{counter['n']}"
        kwargs.setdefault("email", f"{username}@example.com")
        user, _ = user_provision(username=username, role=role, password=PASSWORD, **kwargs)
        return user

    return make


@pytest.fixture
def requester(make_user):
    return make_user("requester", username="alice", first_name="Alice", last_name="Able")


@pytest.fixture
def other_requester(make_user):
    return make_user("requester", username="bob", first_name="Bob", last_name="Other")


@pytest.fixture
def agent(make_user):
    return make_user("agent", username="agnes", first_name="Agnes", last_name="Agent", teams=["Service Desk"])


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", username="root")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def agent_client(client, agent):
    """Django's test client signed in as the agent (session, as the workspace is used)."""
    client.force_login(agent)
    return client


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for(api_client):
    """An API client authenticated with the user's real token (POST /api/v1/auth/token/)."""
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        response = client.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")
        assert response.status_code == 200, response.content
        client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
        return client

    return make


@pytest.fixture
def incident_factory(requester):
    from incidents.services import incident_create

    def make(requester=requester, **kwargs):
        kwargs.setdefault("title", "Printer on floor 3 is jammed")
        kwargs.setdefault("created_by", requester)
        return incident_create(requester=requester, **kwargs)

    return make


@pytest.fixture
def smtp():
    """A local SMTP sink (tests/peers.py) receiving what a real worker sends."""
    from tests.peers import SmtpSink

    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def worker(smtp, tmp_path):
    """Start `celery -A servicedesk worker` against the test database and the test broker, mailing to `smtp`.
    Tests using it need `django_db(transaction=True)`: the worker reads what they commit."""
    from servicedesk.celery import app as celery_app
    from tests.workers import celery_worker

    celery_app.control.purge()  # nothing left over from other tests reaches this worker
    with celery_worker(broker_url=settings.CELERY_BROKER_URL, smtp_port=smtp.port, tmp_path=tmp_path) as proc:
        yield proc
