import json
from pathlib import Path

import pytest

from monitoring.sources import event_source_create

# Real notifications captured from Prometheus Alertmanager 0.25 (copied from the project's shared fixtures).
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def am_source(db):
    source, token = event_source_create(name="Prometheus", kind="alertmanager")
    source.token = token
    return source


@pytest.fixture
def generic_source(db):
    source, token = event_source_create(name="Zabbix bridge", kind="generic")
    source.token = token
    return source


@pytest.fixture
def checkout(db):
    from servicedesk.models import Criticality, Service

    return Service.objects.create(name="checkout", criticality=Criticality.HIGH)
