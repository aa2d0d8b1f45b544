"""The local run's first impression: `python3 dev.py run`'s own set-up commands and its three processes
(gunicorn, Celery worker, beat) on SQLite and kombu's filesystem broker, started for real, print no ERROR,
no traceback and no kombu warning through a normal start, /healthz before the first heartbeat, a requester's
403 on an agent page and a created incident; and the mail the worker prints is readable."""

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import dev

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "Demo-2026!"  # the demo users' password (servicedesk/demo.py)
# Log levels in capitals only: the demo's SLA escalation mail names the policy "Incidents: critical and high".
NOISE = re.compile(r"(?-i:\bERROR\b|\bCRITICAL\b)|Traceback|No hostname was supplied|=\?utf-8\?", re.IGNORECASE)

pytestmark = pytest.mark.worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, outputs: dict):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    logs = "\n".join(f"--- {name}\n{path.read_text()[-3000:]}" for name, path in outputs.items())
    pytest.fail(f"{what} within {timeout:.0f}s\n{logs}")


def get(opener, url: str, data: dict | None = None, headers: dict | None = None):
    body = None if data is None else urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None, ""


def test_the_local_run_starts_quietly_and_prints_readable_mail(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "EMAIL_HOST", "EMAIL_BACKEND")}
    env.update(SERVICEDESK_VAR_DIR=str(tmp_path / "var"), SITE_URL=url, DEBUG="0", PYTHONUNBUFFERED="1",
               WORKER_HEARTBEAT_SECONDS="2")
    outputs = {}

    # dev.py run's set-up: migrate, collect static files, demo data.
    for name, args in (("migrate", ["migrate", "--no-input", "-v0"]),
                       ("collectstatic", ["collectstatic", "--no-input", "-v0"]),
                       ("seed_demo", ["seed_demo", "--tickets", "5", "--quiet-logins"])):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        outputs[name] = tmp_path / f"{name}.log"
        outputs[name].write_text(done.stdout + done.stderr)

    commands = dev.local_processes(BIN, "127.0.0.1", port, tmp_path / "var")
    procs = {}

    def start(name):
        outputs[name] = tmp_path / f"{name}.log"
        procs[name] = subprocess.Popen(commands[name], cwd=ROOT, env=env, stdout=outputs[name].open("w"),
                                       stderr=subprocess.STDOUT)

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    try:
        start("web")
        # Before any worker has beaten: 503 naming the worker, and nothing logged as an error.
        status, body = wait_for(lambda: (lambda r: r if r[0] else None)(get(opener, f"{url}/healthz")), 60,
                                "the web server did not answer", outputs)
        assert status == 503 and json.loads(body)["down"] == ["worker"], body

        # A requester on an agent page: an expected 403.
        status, page = get(opener, f"{url}/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        get(opener, f"{url}/login/", {"csrfmiddlewaretoken": token, "username": "requester", "password": PASSWORD},
            headers={"Referer": f"{url}/login/"})
        assert get(opener, f"{url}/agent/")[0] == 403

        start("worker")
        start("beat")
        wait_for(lambda: get(opener, f"{url}/healthz")[0] == 200, 120, "/healthz did not turn green", outputs)

        # An incident through the API: the worker prints the requester's mail.
        api = urllib.request.build_opener()
        _, answer = get(api, f"{url}/api/v1/auth/token/", {"username": "agent", "password": PASSWORD})
        request = urllib.request.Request(
            f"{url}/api/v1/incidents/", method="POST",
            data=json.dumps({"title": "VPN drops every few minutes — café wifi", "requester": "requester",
                             "impact": 3, "urgency": 3}).encode(),
            headers={"Authorization": f"Token {json.loads(answer)['token']}", "Content-Type": "application/json"})
        with api.open(request, timeout=10) as response:
            number = json.loads(response.read())["number"]
        subject = f"Subject: [{number}] VPN drops every few minutes — café wifi"
        wait_for(lambda: subject in outputs["worker"].read_text(), 60, "the worker printed no mail", outputs)
    finally:
        dev.stop_processes(procs, timeout=20)

    text = {name: path.read_text() for name, path in outputs.items()}
    noise = [f"{name}: {line}" for name, out in text.items() for line in out.splitlines() if NOISE.search(line)]
    assert noise == []
    # The 403 is still logged, as one line.
    assert "WARNING django.request Forbidden (Permission denied): /agent/" in text["web"]
    mail = text["worker"].split(subject, 1)[1].split("-" * 78, 1)[0]
    assert "Hello Rita Quester," in mail
    assert "<html" not in mail and "Content-Transfer-Encoding" not in mail
    assert "[text/html alternative," in mail
