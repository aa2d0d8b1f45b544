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
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "media"}


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
