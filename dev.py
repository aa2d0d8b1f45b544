#!/usr/bin/env python3
"""The project's single entry point. Needs nothing but Python 3.11+.

    python3 dev.py run      set up a virtualenv, migrate, load demo data, start web + worker + beat
    python3 dev.py test     run the whole test suite against PostgreSQL and Redis
    python3 dev.py bench    run the benchmarks in bench/ (prints figures)
    python3 dev.py setup    only create/refresh the virtualenv (add --test for the test tools)
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SERVICEDESK_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"

TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/servicedesk"
TEST_BROKER_URL = "redis://127.0.0.1:6379/15"
# What `setup --test`, `test` and `bench` install: the test tools and the optional LDAP sign-in (its tests run
# against a real slapd; python-ldap builds against Debian's libldap2-dev and libsasl2-dev). `run` needs neither.
TEST_EXTRAS = "test,ldap"


def say(message: str) -> None:
    print(f"\033[1;34m==>\033[0m {message}", flush=True)


def die(message: str, code: int = 2) -> None:
    bar = "!" * 78
    print(f"\n\033[1;31m{bar}\n{message}\n{bar}\033[0m\n", file=sys.stderr, flush=True)
    sys.exit(code)


def setup(extras: str = "") -> None:
    """Create the virtualenv and install the project; skipped when pyproject.toml has not changed."""
    if not PY.exists():
        say(f"creating virtualenv {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    spec = f".[{extras}]" if extras else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    stamp = VENV / ".servicedesk-installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    say(f"installing servicedesk{spec[1:]} and its dependencies (first run takes a minute)")
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "-e", spec], check=True, cwd=ROOT)
    stamp.write_text(digest)


def manage(*args: str, env=None) -> None:
    subprocess.run([PY, "manage.py", *args], check=True, cwd=ROOT, env=env)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- run ------------------------------------------------------------------------------------------


def run(argv: list[str]) -> None:
    started = time.monotonic()
    setup()
    env = dict(os.environ)
    env.setdefault("DEBUG", "0")
    env.setdefault("PYTHONUNBUFFERED", "1")
    host, port = env.get("SD_HOST", "127.0.0.1"), int(env.get("SD_PORT", "8000"))
    env.setdefault("SITE_URL", f"http://{host}:{port}")
    if port_open(host, port):
        die(f"Port {port} on {host} is already in use. Stop what runs there or set SD_PORT=8001.")
    db = env.get("DATABASE_URL", "SQLite file var/servicedesk.sqlite3")
    broker = env.get("CELERY_BROKER_URL") or env.get("REDIS_URL") or "kombu filesystem transport in var/broker/"
    say(f"database: {db}")
    say(f"broker:   {broker}")
    say("migrating")
    manage("migrate", "--no-input", "-v0", env=env)
    say("collecting static files")
    manage("collectstatic", "--no-input", "-v0", env=env)
    say("loading demo data")
    manage("seed_demo", "--tickets", env.get("SD_DEMO_TICKETS", "300"), "--quiet-logins", env=env)

    var_dir = Path(env.get("SERVICEDESK_VAR_DIR", ROOT / "var"))
    procs = {name: subprocess.Popen(argv, cwd=ROOT, env=env)
             for name, argv in local_processes(BIN, host, port, var_dir).items()}

    def stop(*_):
        stop_processes(procs)

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
    url = f"http://{host}:{port}"
    try:
        health = wait_healthy(url, procs, timeout=float(env.get("SD_START_TIMEOUT", "120")))
        print(
            f"\n\033[1;32mServicedesk is up\033[0m at {url}/  (took {time.monotonic() - started:.0f}s)\n"
            f"  health: {health}\n\n"
            "  Demo logins (password for every one: Demo-2026!)\n"
            "    requester   portal for end users      -> /portal/\n"
            "    agent       agent workspace           -> /agent/\n"
            "    manager     team lead, workspace      -> /agent/\n"
            "    admin       configuration             -> /admin/\n\n"
            f"  API docs: {url}/api/docs/   health: {url}/healthz\n"
            "  Ctrl-C stops web, worker and beat.\n",
            flush=True,
        )
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        dead = [name for name, p in procs.items() if p.poll() is not None]
        die(f"{', '.join(dead)} stopped unexpectedly; see the output above.", code=1)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        stop()


def local_processes(bin_dir: Path, host: str, port: int, var_dir: Path) -> dict[str, list[str]]:
    """The command lines of the local run's web server, worker and beat (tests/servicedesk/test_local_run.py
    starts these same three and reads their output)."""
    celery = str(bin_dir / "celery")
    return {
        "web": [str(bin_dir / "gunicorn"), "servicedesk.wsgi", "--bind", f"{host}:{port}", "--workers", "2",
                "--threads", "4", "--access-logfile", "-", "--log-level", "warning"],
        "worker": [celery, "-A", "servicedesk", "worker", "--loglevel", "warning", "--concurrency", "2",
                   "--without-gossip", "--without-mingle", "--hostname", "worker@%h"],
        "beat": [celery, "-A", "servicedesk", "beat", "--loglevel", "warning",
                 "--pidfile", str(var_dir / "celerybeat.pid")],
    }


def stop_processes(procs: dict, timeout: float = 15) -> None:
    """Terminate every process, give them `timeout` seconds to finish their work, then kill what is left."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_healthy(url: str, procs: dict, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode} while starting; see the output above")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=3) as response:  # noqa: S310
                return response.read().decode()
        except urllib.error.HTTPError as exc:
            last = exc.read().decode()
        except OSError as exc:
            last = str(exc)
        time.sleep(1)
    say(f"not healthy after {timeout:.0f}s: {last}")
    return last


# --- test -----------------------------------------------------------------------------------------


SERVICES = {
    # name: (environment variable, default port, how to start it, URL form)
    "PostgreSQL": ("DATABASE_URL", 5432,
                   ["pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start   (Debian)",
                    "docker compose up -d postgres"], "postgres://USER@HOST:PORT/NAME"),
    "Redis": ("CELERY_BROKER_URL", 6379,
              ['redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
               "docker compose up -d redis"], "redis://HOST:PORT/DB"),
}


def check_services(env: dict) -> None:
    if urlparse(env["DATABASE_URL"]).scheme not in ("postgres", "postgresql", "pgsql"):
        die(f"The test suite runs on PostgreSQL only; DATABASE_URL is {env['DATABASE_URL']!r}.")
    for name, (variable, default_port, starts, form) in SERVICES.items():
        url = urlparse(env[variable])
        host, port = url.hostname or "127.0.0.1", url.port or default_port
        if not port_open(host, port, timeout=3):
            how = "\n".join(f"  {line}" for line in starts)
            die(f"{name} is not reachable at {host}:{port}; the tests need it and will not run on less.\n"
                f"Start it, for example:\n{how}\nor point {variable} at one ({form}).")
    if not Path(env.get("SD_CHROMIUM", "/usr/bin/chromium")).exists() and env.get("SD_SKIP_E2E") != "1":
        die(
            "Chromium is not installed; the browser tests need it (Playwright drives Debian's chromium).\n"
            "  apt-get install -y chromium\n"
            "or set SD_SKIP_E2E=1 to run everything but the browser tests (they are then reported as skipped)."
        )


def test(argv: list[str]) -> None:
    setup(TEST_EXTRAS)
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", TEST_DATABASE_URL)
    env.setdefault("CELERY_BROKER_URL", TEST_BROKER_URL)
    env.pop("REDIS_URL", None)
    env["DEBUG"] = "0"
    env.setdefault("SD_CHROMIUM", "/usr/bin/chromium")
    check_services(env)
    # Two processes by default (pytest-xdist, a test file each at a time): much of the suite waits on browsers,
    # servers and workers it starts, so two halves the wall time on two cores. Each process has its own test
    # database and Redis database (tests/xdist_worker.py). SD_TEST_PROCESSES=1, or -n on the command line, to choose.
    processes = env.get("SD_TEST_PROCESSES", "2")
    spread = processes != "1" and not any(arg.startswith(("-n", "--numprocesses")) for arg in argv)
    if spread:
        argv = ["-n", processes, "--dist", "loadfile", *argv]
    say(f"tests on {env['DATABASE_URL']} and {env['CELERY_BROKER_URL']}"
        + (f" in {processes} processes (test databases _gw0..., Redis databases counting down)" if spread else ""))
    sys.exit(subprocess.run([PY, "-m", "pytest", *argv], cwd=ROOT, env=env).returncode)


def bench(argv: list[str]) -> None:
    setup(TEST_EXTRAS + ",bench")  # the tests' peers (slapd, pgbouncer, Dovecot) and locust for bench/bench_load.py
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", TEST_DATABASE_URL)
    env.setdefault("CELERY_BROKER_URL", TEST_BROKER_URL)
    check_services({**env, "SD_SKIP_E2E": "1"})
    scripts = argv or sorted(str(p) for p in (ROOT / "bench").glob("bench_*.py"))
    for script in scripts:
        say(f"bench: {script}")
        subprocess.run([PY, script], cwd=ROOT, env=env, check=True)


def main() -> None:
    commands = {"run": run, "test": test, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        print(__doc__)
        return
    name, argv = sys.argv[1], sys.argv[2:]
    if name == "setup":
        setup(TEST_EXTRAS if "--test" in argv else "")
        return
    if name not in commands:
        die(f"unknown command {name!r}; use one of: setup, {', '.join(commands)}")
    commands[name](argv)


if __name__ == "__main__":
    main()
