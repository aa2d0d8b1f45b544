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
    _flush_by_delete()
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.exit("The test suite needs Redis as the broker: set CELERY_BROKER_URL=redis://127.0.0.1:6379/15",
                    returncode=3)


def _flush_by_delete():
    """Empty the tables after a transactional test with DELETE instead of TRUNCATE.

    Django's flush truncates all ~100 tables at once: PostgreSQL gives each a new file and takes an exclusive
    lock on each, about 1 s per test here, for tables that hold a few rows. DELETE in one transaction with the
    foreign keys deferred (Django makes them DEFERRABLE INITIALLY DEFERRED) leaves the same empty tables in
    ~0.1 s. A flush that must reset sequences still truncates."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED", *(f"DELETE FROM {self.quote_name(table)}" for table in tables)]

    DatabaseOperations.sql_flush = sql_flush


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
