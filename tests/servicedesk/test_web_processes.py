"""Several web processes, nothing one of them needs kept in another's memory: real `gunicorn` with two worker
processes (through PgBouncer in transaction mode, as the scaled deployment runs) against the test database and
Redis. With --max-requests 1 every request is served by a fresh process (the access log names each one's PID),
so a session, a sign-in lockout, an Idempotency-Key or an event source's rate limit that lived in process memory
would be forgotten by the next request. Then, with two long-lived processes, a calendar changed in the database
is used by both, though each keeps its own copy of the calendars it has built (sla.clocks.clock_calendar)."""

import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from incidents.models import Incident
from monitoring.sources import event_source_create
from servicedesk.models import IdempotencyKey
from sla.models import BusinessCalendar, SlaPolicy, SlaTarget, WorkingInterval
from tests.conftest import PASSWORD
from tests.peers import PgBouncer
from tests.workers import access_log_pids, gunicorn_server

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def through_pgbouncer():
    db = connection.settings_dict
    with PgBouncer(users=[db["USER"] or "postgres"], db_host=db["HOST"] or "127.0.0.1",
                   db_port=int(db["PORT"] or 5432), pool_size=4) as bouncer:
        yield {"DATABASE_URL": bouncer.url(db["USER"] or "postgres", db["NAME"]), "DATABASE_POOLER": "pgbouncer",
               "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}


def real_password(user) -> None:
    """The test run hashes with MD5 (conftest), which the server does not accept: store what it checks."""
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user.save(update_fields=["password"])


def token_for(base: str, username: str) -> str:
    response = requests.post(f"{base}/api/v1/auth/token/", json={"username": username, "password": PASSWORD},
                             timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_sessions_lockouts_idempotency_keys_and_rate_limits_hold_across_processes(
        make_user, tmp_path, through_pgbouncer):
    agent = make_user("agent", username="wendy", teams=["Service Desk"])
    victim = make_user("agent", username="victor", teams=["Service Desk"])
    for user in (agent, victim):
        real_password(user)
    source, source_token = event_source_create(name="rate-limited", kind="generic", rate_limit_per_minute=3)

    with gunicorn_server(tmp_path=tmp_path, workers=2, env=through_pgbouncer,
                         args=["--preload", "--max-requests", "1"]) as (base, log):
        # A session opened by one process is honoured by the next.
        browser = requests.Session()
        page = browser.get(f"{base}/login/", timeout=30)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        signed_in = browser.post(f"{base}/login/", data={"username": "wendy", "password": PASSWORD,
                                                         "csrfmiddlewaretoken": csrf},
                                 headers={"Referer": f"{base}/login/"}, allow_redirects=False, timeout=30)
        assert signed_in.status_code == 302, signed_in.text[:500]
        workspace = browser.get(f"{base}/agent/", allow_redirects=False, timeout=30)
        assert workspace.status_code == 200, workspace.status_code
        assert "wendy" in workspace.text.lower() or "Sign out" in workspace.text
        assert access_log_pids(log, "POST", "/login/", 1)[0] != access_log_pids(log, "GET", "/agent/", 1)[0]

        # Sign-in failures counted by several processes lock the username for all of them.
        for _ in range(settings.LOGIN_FAILURE_LIMIT):
            wrong = requests.post(f"{base}/api/v1/auth/token/", json={"username": "victor", "password": "nope"},
                                  timeout=30)
            assert wrong.status_code in (400, 401, 429), wrong.text
        locked = requests.post(f"{base}/api/v1/auth/token/", json={"username": "victor", "password": PASSWORD},
                               timeout=30)
        assert locked.status_code == 429, locked.text
        assert int(locked.headers["Retry-After"]) > 0
        token_pids = access_log_pids(log, "POST", "/api/v1/auth/token/", settings.LOGIN_FAILURE_LIMIT + 1)
        assert len(set(token_pids)) == len(token_pids) == settings.LOGIN_FAILURE_LIMIT + 1

        # An Idempotency-Key stored by one process answers the retry another process gets.
        token = token_for(base, "wendy")
        key = str(uuid.uuid4())
        headers = {"Authorization": f"Token {token}", "Idempotency-Key": key}
        body = {"title": "VPN drops every ten minutes", "impact": 2, "urgency": 2}
        first = requests.post(f"{base}/api/v1/incidents/", json=body, headers=headers, timeout=30)
        again = requests.post(f"{base}/api/v1/incidents/", json=body, headers=headers, timeout=30)
        assert first.status_code == 201, first.text
        assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true", again.text
        assert again.json()["number"] == first.json()["number"]
        assert Incident.objects.filter(title=body["title"]).count() == 1
        assert IdempotencyKey.objects.filter(key=key).count() == 1
        create_pids = access_log_pids(log, "POST", "/api/v1/incidents/", 2)
        assert len(set(create_pids)) == 2

        # An event source's per-minute budget is counted in the shared cache, not per process.
        if int(time.time()) % 60 > 45:  # not across a minute boundary, where the budget starts again
            time.sleep(61 - int(time.time()) % 60)
        answers = []
        for n in range(4):
            response = requests.post(
                f"{base}/api/v1/events/", headers={"Authorization": f"Token {source_token}"}, timeout=30,
                json={"events": [{"source_id": f"disk-{n}", "status": "firing", "severity": "warning",
                                  "summary": f"Disk almost full on host-{n}"}]})
            answers.append(response.status_code)
        assert answers == [202, 202, 202, 429]
        event_pids = access_log_pids(log, "POST", "/api/v1/events/", 4)
        assert len(set(event_pids)) == 4, event_pids  # four requests, four processes

    all_pids = {line.split(" ", 1)[0] for line in log.read_text().splitlines()}
    print(f"{len(log.read_text().splitlines())} requests served by {len(all_pids)} worker processes")


def _burst(base: str, token: str, count: int, title: str) -> list[dict]:
    """`count` incident creations at the same moment, so both worker processes take some."""
    results: list[dict] = []

    def one(n):
        response = requests.post(f"{base}/api/v1/incidents/", json={"title": f"{title} {n}", "impact": 2,
                                                                    "urgency": 2},
                                 headers={"Authorization": f"Token {token}"}, timeout=60)
        assert response.status_code == 201, response.text
        results.append(response.json())

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == count
    return results


def _first_response_due(incident: dict) -> datetime:
    (clock,) = [c for c in incident["sla"] if c["kind"] == "first_response"]
    return datetime.fromisoformat(clock["due_at"].replace("Z", "+00:00"))


def _served_by_both(log, since: int, base: str, token: str, title: str) -> list[dict]:
    made = []
    for _ in range(10):
        made += _burst(base, token, 4, title)
        pids = access_log_pids(log, "POST", "/api/v1/incidents/", since + len(made))[since:]
        if len(set(pids)) >= 2:
            return made
    pytest.fail(f"every creation went to one process: {pids}")


def test_a_calendar_changed_in_the_database_is_used_at_once_by_every_process(make_user, tmp_path,
                                                                           through_pgbouncer):
    agent = make_user("agent", username="wendy", teams=["Service Desk"])
    real_password(agent)
    calendar = BusinessCalendar.objects.create(name="Round the clock", timezone="UTC")
    for day in range(7):
        WorkingInterval.objects.create(calendar=calendar, weekday=day, start=clock_time(0), end=clock_time(23, 59))
    policy = SlaPolicy.objects.create(name="Everything", order=1, calendar=calendar)
    SlaTarget.objects.bulk_create([SlaTarget(policy=policy, priority=p, first_response_minutes=30,
                                             resolution_minutes=240) for p in range(1, 6)])

    with gunicorn_server(tmp_path=tmp_path, workers=2, env=through_pgbouncer) as (base, log):
        token = token_for(base, "wendy")
        # Both processes build and keep the round-the-clock calendar: due in 30 minutes.
        before = _served_by_both(log, 0, base, token, "Before")
        now = datetime.now(UTC)
        assert all(_first_response_due(i) - now < timedelta(hours=1) for i in before)
        served = len(access_log_pids(log, "POST", "/api/v1/incidents/", len(before)))

        # The desk now works one hour a day, starting about twelve hours from now.
        start = (now + timedelta(hours=12)).hour
        WorkingInterval.objects.filter(calendar=calendar).delete()
        for day in range(7):
            WorkingInterval.objects.create(calendar=calendar, weekday=day, start=clock_time(start),
                                           end=clock_time((start + 1) % 24))
        after = _served_by_both(log, served, base, token, "After")
        now = datetime.now(UTC)
        stale = [i["number"] for i in after if _first_response_due(i) - now < timedelta(hours=10)]
        assert not stale, f"{stale} were timed on a process's stale copy of the calendar"
        print(f"{len(before)} incidents before and {len(after)} after the change, served by "
              f"{len(set(access_log_pids(log, 'POST', '/api/v1/incidents/')))} processes")
