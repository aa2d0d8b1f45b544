import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from servicedesk.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def settings_in_subprocess(env: dict, expr: str) -> str:
    """Import the real settings module in a fresh interpreter with exactly this environment."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "-c", f"import servicedesk.settings as s; print({expr})"],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        return "ERROR: " + result.stderr.strip().splitlines()[-1]
    return result.stdout.strip()


def test_it_reads_database_broker_and_hosts_from_the_environment(tmp_path):
    out = settings_in_subprocess(
        {
            "DATABASE_URL": "postgres://sd:pw@db.internal:6543/desk",
            "REDIS_URL": "redis://cache.internal:6380/2",
            "ALLOWED_HOSTS": "desk.example.com, api.example.com",
            "DEBUG": "yes",
            "TIME_ZONE": "Europe/Berlin",
            "EMAIL_HOST": "smtp.example.com",
            "EMAIL_PORT": "2525",
            "SERVICEDESK_VAR_DIR": str(tmp_path),
        },
        "[s.DATABASES['default']['HOST'], s.DATABASES['default']['PORT'], s.DATABASES['default']['NAME'], "
        "s.CELERY_BROKER_URL, s.ALLOWED_HOSTS, s.DEBUG, s.TIME_ZONE, s.EMAIL_BACKEND, s.EMAIL_PORT]",
    )
    assert out == (
        "['db.internal', 6543, 'desk', 'redis://cache.internal:6380/2', "
        "['desk.example.com', 'api.example.com'], True, 'Europe/Berlin', "
        "'django.core.mail.backends.smtp.EmailBackend', 2525]"
    )


def test_it_defaults_to_an_embedded_sqlite_file_and_filesystem_broker(tmp_path):
    out = settings_in_subprocess(
        {"SERVICEDESK_VAR_DIR": str(tmp_path)},
        "[s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CELERY_BROKER_URL, s.DEBUG, "
        "s.EMAIL_BACKEND, s.CELERY_WORKER_REDIRECT_STDOUTS]",
    )
    # A host in the broker URL: without one kombu warns "No hostname was supplied" at every connection.
    # Mail is printed readably by the worker itself, not re-logged as WARNING lines.
    assert out == (f"['django.db.backends.sqlite3', '{tmp_path}/servicedesk.sqlite3', 'filesystem://localhost/', "
                   "False, 'servicedesk.mail.ReadableConsoleBackend', False]")


def test_it_refuses_production_without_a_real_secret_key(tmp_path):
    out = settings_in_subprocess({"PRODUCTION": "1", "SERVICEDESK_VAR_DIR": str(tmp_path)}, "s.SECRET_KEY")
    assert out.startswith("ERROR: django.core.exceptions.ImproperlyConfigured: SECRET_KEY must be set")


def test_it_passes_the_deploy_checks_in_production_mode(tmp_path):
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update({
        "PRODUCTION": "1",
        "SECRET_KEY": "k7#Qv9!zR2@pL5$wX8^mN1&bT4*cY6(dF3)hJ0-gS7+eA2=uI9",
        "ALLOWED_HOSTS": "desk.example.com",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "SERVICEDESK_VAR_DIR": str(tmp_path),
    })
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("raw,expected", [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SD_FLAG", raw)
    assert env_bool("SD_FLAG") is expected


def test_env_helpers_fail_loudly_on_nonsense(monkeypatch):
    monkeypatch.setenv("SD_FLAG", "flase")
    with pytest.raises(ImproperlyConfigured, match="SD_FLAG='flase' is not a boolean"):
        env_bool("SD_FLAG")
    monkeypatch.setenv("SD_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="SD_NUM='ten' is not an integer"):
        env_int("SD_NUM", 1)
    monkeypatch.setenv("SD_LIST", " a, ,b ")
    assert env_list("SD_LIST", []) == ["a", "b"]
