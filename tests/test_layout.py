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
