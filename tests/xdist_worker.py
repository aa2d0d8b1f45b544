"""A pytest plugin (pyproject's addopts: `-p tests.xdist_worker`) that gives each pytest-xdist worker process its
own Redis database, as pytest-django gives each its own test database (test_<name>_gw0, _gw1...).

It runs when pytest loads its plugins, before pytest-django imports the settings, so everything that reads
CELERY_BROKER_URL (the broker, the cache, the throttles and lockouts kept in it, and the workers, beats and web
servers the tests start, which inherit the environment) agrees on it. Worker gwN uses the database N below the one
given, wrapping at 0: `python3 dev.py test` on redis://127.0.0.1:6379/15 uses 15 and 14 with two workers. Without
xdist (a plain `pytest tests/...`), nothing changes."""

import os
import re

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw"):
    _n = int(_worker[2:])
    for _name in ("CELERY_BROKER_URL", "REDIS_URL"):
        _url = os.environ.get(_name, "")
        _match = re.fullmatch(r"(redis://[^/?]*)(?:/(\d*))?(\?.*)?", _url)
        if _match:
            _db = int(_match.group(2) or 0)
            os.environ[_name] = f"{_match.group(1)}/{(_db - _n) % 16}{_match.group(3) or ''}"
