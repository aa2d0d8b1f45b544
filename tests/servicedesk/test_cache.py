"""The cache every web process shares (throttles, rate limits): Redis with a Redis broker, files under var/
otherwise (the local run has two gunicorn processes: per-process memory would count each one apart)."""

import redis
from django.conf import settings
from django.core.cache import cache

from tests.servicedesk.test_settings import ROOT, settings_in_subprocess


def test_it_caches_in_redis_when_the_broker_is_redis_and_in_shared_files_otherwise(tmp_path):
    var = {"SERVICEDESK_VAR_DIR": str(tmp_path)}
    expr = "[s.CACHES['default']['BACKEND'], s.CACHES['default'].get('LOCATION')]"
    assert settings_in_subprocess({**var, "REDIS_URL": "redis://cache.internal:6380/2"}, expr) == (
        "['servicedesk.cache.RedisCache', 'redis://cache.internal:6380/2']")
    assert settings_in_subprocess({**var, "CACHE_URL": "redis://other:6379/4"}, expr) == (
        "['servicedesk.cache.RedisCache', 'redis://other:6379/4']")
    assert settings_in_subprocess(var, expr) == (
        f"['django.core.cache.backends.filebased.FileBasedCache', '{tmp_path / 'cache'}']")


def test_without_redis_one_process_reads_what_another_cached(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update({"SERVICEDESK_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "servicedesk.settings"})

    def in_a_process(code: str) -> str:
        result = subprocess.run([sys.executable, "-c", f"import django; django.setup(); "
                                 f"from django.core.cache import cache; {code}"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    in_a_process("cache.set('monitoring:rate:1:1', 7, 60)")
    assert in_a_process("print(cache.incr('monitoring:rate:1:1', 2))") == "9"
    assert in_a_process("print(cache.get('monitoring:rate:1:1'))") == "9"


def test_the_sign_in_and_token_settings_are_checked_at_start(tmp_path):
    var = {"SERVICEDESK_VAR_DIR": str(tmp_path)}
    assert settings_in_subprocess({**var, "API_TOKEN_TTL_HOURS": "0"}, "1").endswith(
        "API_TOKEN_TTL_HOURS must be 1 or more: API tokens always expire")
    assert settings_in_subprocess({**var, "LOGIN_FAILURE_LIMIT": "8", "LOGIN_ADDRESS_USERNAME_LIMIT": "5"},
                                  "1").endswith("LOGIN_ADDRESS_USERNAME_LIMIT must be at least LOGIN_FAILURE_LIMIT")
    assert settings_in_subprocess({**var, "TRUSTED_PROXY_COUNT": "1", "LOGIN_COOLOFF_MINUTES": "30",
                                   "API_TOKEN_TTL_HOURS": "24"},
                                  "[s.REST_FRAMEWORK['NUM_PROXIES'], s.AXES_COOLOFF_TIME, s.REST_KNOX['TOKEN_TTL']]") == (
        "[1, datetime.timedelta(seconds=1800), datetime.timedelta(days=1)]")


def test_clearing_the_cache_leaves_the_brokers_keys_alone():
    assert settings.CACHES["default"]["BACKEND"] == "servicedesk.cache.RedisCache"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.set("_kombu.binding.sd-test-cache", "kept")
    try:
        cache.set("throttle-count", 3)
        assert cache.get("throttle-count") == 3
        cache.clear()
        assert cache.get("throttle-count") is None
        assert broker.get("_kombu.binding.sd-test-cache") == b"kept"
    finally:
        broker.delete("_kombu.binding.sd-test-cache")
