"""Search requires every word of the query, on PostgreSQL and on the local run's SQLite alike, over title,
description and comments/notes for agents, and over title and description only for requesters."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from incidents import services

ROOT = Path(__file__).resolve().parents[2]


def numbers(client, q):
    response = client.get("/api/v1/incidents/", {"q": q})
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


@pytest.mark.django_db
def test_it_finds_every_word_apart_for_agents_and_requesters_on_postgresql(client_for, incident_factory, agent,
                                                                          requester):
    vpn = incident_factory(title="VPN is very slow", description="Since Monday, from home.")
    incident_factory(title="Slow printer", description="The network is fine.")
    services.incident_comment_add(incident=vpn, author=agent, body="The concentrator MTU looks wrong",
                                  internal=True)

    assert numbers(client_for(agent), "VPN slow") == [vpn.number]
    assert numbers(client_for(requester), "VPN slow") == [vpn.number]
    assert numbers(client_for(requester), "monday home vpn") == [vpn.number]
    assert numbers(client_for(agent), "concentrator vpn") == [vpn.number]
    assert numbers(client_for(requester), "concentrator") == []


def test_it_quotes_each_word_so_none_is_read_as_an_fts_operator():
    from incidents.search import fts_query

    # FTS5 operators arrive as plain quoted words; "and" is a stop word, dropped as PostgreSQL does.
    assert fts_query('VPN AND "slow" NEAR(x) col:y', include_internal=True) == '"vpn" "slow" "near" "x" "col" "y"'
    assert fts_query("vpn NOT", include_internal=False) == '{title description} : ("vpn")'
    assert fts_query("-- !!", include_internal=True) is None
    assert fts_query("the is of", include_internal=True) is None


SCRIPT = r'''
import json

import django

django.setup()
from django.core.management import call_command

call_command("migrate", verbosity=0)

from rest_framework.test import APIClient

from incidents.services import incident_comment_add, incident_create, incident_update
from servicedesk.services import user_provision

requester, _ = user_provision(username="rita", role="requester", email="rita@example.com")
agent, _ = user_provision(username="aaron", role="agent", email="aaron@example.com", teams=["Service Desk"])
vpn = incident_create(title="VPN is very slow", description="Since Monday, from home.", requester=requester,
                      created_by=requester)
printer = incident_create(title="Printer jams", description="Paper tray 2 again.", requester=requester,
                          created_by=requester)
incident_comment_add(incident=vpn, author=agent, body="The concentrator MTU looks wrong", internal=True)
incident_comment_add(incident=printer, author=agent, body="Replaced the fuser unit", internal=False)
incident_update(incident_id=printer.id, actor=agent, title="Printer jams on tray 2")


def found(user, q):
    client = APIClient()
    client.force_authenticate(user)
    response = client.get("/api/v1/incidents/", {"q": q})
    assert response.status_code == 200, response.content
    return sorted(row["number"] for row in response.json()["results"])


print(json.dumps({
    "vendor": django.db.connection.vendor,
    "vpn": vpn.number,
    "printer": printer.number,
    "agent": {q: found(agent, q) for q in ("VPN slow", "slow VPN home", "concentrator", "mtu vpn", "fuser",
                                           "tray jams", "replace fusers", "VPN printer", "!!",
                                           "the printer is jammed")},
    "requester": {q: found(requester, q) for q in ("VPN slow", "concentrator", "fuser", "tray 2 jams")},
}))
'''


def test_the_local_sqlite_run_finds_every_word_and_words_in_comments(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
    env.update(SERVICEDESK_VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'local.sqlite3'}",
               DJANGO_SETTINGS_MODULE="servicedesk.settings", PYTHONPATH=str(ROOT))
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    vpn, printer = out["vpn"], out["printer"]
    assert out["vendor"] == "sqlite"
    assert out["agent"] == {
        "VPN slow": [vpn],              # the words apart, not the phrase
        "slow VPN home": [vpn],         # any order, description too
        "concentrator": [vpn],          # a word only in an internal note
        "mtu vpn": [vpn],
        "fuser": [printer],             # a word only in a public reply
        "tray jams": [printer],         # the title as changed by an update
        "replace fusers": [printer],    # stemmed, like PostgreSQL's english configuration
        "VPN printer": [],              # every word is required
        "!!": [],
        "the printer is jammed": [printer],  # stop words are not required, as on PostgreSQL
    }
    assert out["requester"] == {
        "VPN slow": [vpn],
        "concentrator": [],             # internal notes stay invisible to search
        "fuser": [],                    # title and description only, as on PostgreSQL
        "tray 2 jams": [printer],
    }
