"""The repository keeps the promises its README makes about how to run it."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_docker_compose_declares_the_production_stack_with_healthchecks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert services["worker"]["command"][:4] == ["celery", "-A", "servicedesk", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "servicedesk", "beat"]
    assert {"pgdata", "redisdata", "media"} <= set(compose["volumes"])
    # `docker compose up` without a profile starts exactly the production stack.
    assert {name for name, service in services.items() if not service.get("profiles")} == {
        "postgres", "redis", "migrate", "web", "worker", "beat"}


def test_the_scaled_profile_adds_pgbouncer_web_behind_a_proxy_a_worker_per_queue_and_a_standby_beat():
    from django.conf import settings

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    scaled = {name for name, service in services.items() if "scaled" in service.get("profiles", [])}
    assert {"pgbouncer", "web-scaled", "proxy", "worker-sla", "worker-events", "worker-notifications",
            "worker-fulfilment", "beat-standby", "prometheus", "alertmanager"} <= scaled

    web = services["web-scaled"]
    assert web["deploy"]["replicas"] >= 2 and web["command"][0] == "gunicorn"
    assert web["environment"]["DATABASE_POOLER"] == "pgbouncer"
    assert web["environment"]["DATABASE_URL"].startswith("postgres://servicedesk:servicedesk@pgbouncer:6432/")
    assert web["environment"]["TRUSTED_PROXY_COUNT"] == "1"
    assert web["environment"]["SECRET_KEY"] == services["web"]["environment"]["SECRET_KEY"]  # one signing key
    nginx = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    assert "web-scaled:8000" in nginx and "X-Forwarded-For" in nginx
    # The Host a browser used, port included, or Django's CSRF check refuses every form posted through :8080.
    assert "proxy_set_header Host $http_host;" in nginx and "proxy_set_header Host $host;" not in nginx
    assert web["environment"]["CSRF_TRUSTED_ORIGINS"] == web["environment"]["SITE_URL"]
    assert services["proxy"]["volumes"] == ["./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro"]
    ini = (ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text()
    assert "pool_mode = transaction" in ini and "host=postgres port=5432" in ini

    # Every queue but the default has a worker group of its own, with its concurrency set; the default
    # worker (no -Q) consumes them all and is the catch-all.
    consumed = {}
    for name in scaled:
        command = services[name].get("command") or []
        if command[:4] == ["celery", "-A", "servicedesk", "worker"]:
            assert "--concurrency" in command, name
            consumed[name] = command[command.index("-Q") + 1].split(",")
            assert services[name]["environment"]["DATABASE_POOLER"] == "pgbouncer", name
    assert sorted(q for queues in consumed.values() for q in queues) == sorted(settings.SERVICEDESK_QUEUES[1:])
    assert "-Q" not in services["worker"]["command"]
    # Two beats; the lock in settings makes one of them a standby.
    beats = [name for name, s in services.items() if (s.get("command") or [])[:4] == ["celery", "-A", "servicedesk",
                                                                                       "beat"]]
    assert sorted(beats) == ["beat", "beat-standby"]
    assert settings.CELERY_BEAT_SCHEDULER == "servicedesk.beat:LockedDatabaseScheduler"
    assert all("-S" not in services[name]["command"] and "--scheduler" not in services[name]["command"]
               for name in beats)
    # Prometheus reads the observability files; its scrape target is a web service.
    assert "./deploy/prometheus:/etc/prometheus/servicedesk:ro" in services["prometheus"]["volumes"]

    # Monitoring works out of the box: every web container scraped by address (answered whatever its Host),
    # from the compose network, with the token; Alertmanager's target host is allowed; JSON logs; each web
    # container's processes summed through a tmpfs multiprocess directory and gunicorn's hooks.
    import ipaddress

    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    [sd] = job["dns_sd_configs"]
    assert sorted(sd["names"]) == ["web", "web-scaled"] and sd["port"] == 8000 and "static_configs" not in job
    assert "servicedesk.metrics.MetricsMiddleware" in settings.MIDDLEWARE
    token_file = job["authorization"]["credentials_file"]
    assert token_file == "/run/secrets/servicedesk-metrics-token" and "servicedesk-metrics-token" in compose["secrets"]
    assert services["prometheus"]["secrets"] == ["servicedesk-metrics-token"]
    alertmanager = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    [hook] = alertmanager["receivers"][0]["webhook_configs"]
    assert hook["url"].startswith("http://web:8000/")
    assert hook["http_config"]["authorization"]["credentials_file"] == "/run/secrets/servicedesk-event-token"
    assert services["alertmanager"]["secrets"] == ["servicedesk-event-token"]

    def value(text: str) -> str:  # ${NAME:-default} as compose reads it with NAME unset
        import re

        return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(text))

    for name in ("web", "web-scaled"):
        env = services[name]["environment"]
        assert "web" in value(env["ALLOWED_HOSTS"]).split(","), name
        networks = [ipaddress.ip_network(n) for n in value(env["METRICS_ALLOWED_NETWORKS"]).split(",")]
        assert any(ipaddress.ip_address("172.18.0.7") in n for n in networks), name  # a compose network address
        assert "METRICS_TOKEN" in env and value(env["LOG_FORMAT"]) == "json", name
        assert env["PROMETHEUS_MULTIPROC_DIR"] in services[name]["tmpfs"], name
        command = services[name]["command"]
        assert command[command.index("-c") + 1] == "python:servicedesk.prometheus_gunicorn", name
    for name in ("worker", "beat", "worker-sla", "beat-standby"):
        assert value(services[name]["environment"]["LOG_FORMAT"]) == "json", name
        assert "PROMETHEUS_MULTIPROC_DIR" not in services[name]["environment"], name


def test_the_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "python3 dev.py run" in readme
    assert "python3 dev.py test" in readme


def test_the_test_command_stops_loudly_when_postgresql_is_unreachable():
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing",
           "SERVICEDESK_VENV": sys.prefix}
    result = subprocess.run([sys.executable, "dev.py", "test"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "PostgreSQL is not reachable at 127.0.0.1:1; the tests need it and will not run on less." in result.stderr
    assert "pg_ctlcluster" in result.stderr


def test_the_package_metadata_uses_an_spdx_license_string():
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # A TOML table here makes setuptools print a deprecation warning at every install.
    assert pyproject["project"]["license"] == "AGPL-3.0-or-later"
    assert "setuptools>=77" in pyproject["build-system"]["requires"]


def test_ci_creates_the_database_that_database_url_names():
    import os
    import subprocess
    import sys
    import uuid
    from urllib.parse import urlparse

    import psycopg2

    parts = urlparse(os.environ["DATABASE_URL"])
    name = f"sd_ci_probe_{uuid.uuid4().hex[:8]}"
    url = parts._replace(path=f"/{name}").geturl()
    server = {"host": parts.hostname, "port": parts.port or 5432, "user": parts.username or "postgres",
              "dbname": "postgres"}

    def exists() -> bool:
        with psycopg2.connect(**server) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cursor.fetchone() is not None

    assert not exists()
    run = [sys.executable, ".ci/ensure_database.py"]
    try:
        first = subprocess.run(run, cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, capture_output=True,
                               text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert f"database {name}: created" in first.stderr
        assert exists()
        again = subprocess.run(run, cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, capture_output=True,
                               text=True, timeout=60)
        assert again.returncode == 0 and f"database {name}: present" in again.stderr
        assert "ensure_database.py" in (ROOT / ".ci" / "run").read_text()
    finally:
        connection = psycopg2.connect(**server)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.close()


def test_docker_compose_accepts_the_file_with_and_without_the_scaled_profile():
    """`docker compose config` (or Debian's docker-compose) checks the file against the Compose schema; no
    Docker engine is needed. Skipped, saying so, when neither program is installed."""
    import os
    import shutil
    import subprocess

    import pytest

    if shutil.which("docker-compose"):
        base = ["docker-compose"]
    elif shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        base = ["docker", "compose"]
    else:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed: the compose file was not validated")
    env = {**os.environ, "SECRET_KEY": "x" * 50}
    for profile in ([], ["--profile", "scaled"]):
        result = subprocess.run([*base, *profile, "config", "-q"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    broken = subprocess.run([*base, "-f", "-", "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, input="services:\n  web:\n    image: x\n    deploy: {replicas: many}\n")
    assert broken.returncode != 0  # the check does catch a bad file
