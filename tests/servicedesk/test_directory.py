"""servicedesk.directory: the group -> role / team mapping every directory sign-in (LDAP, OIDC) goes through."""

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from servicedesk.directory import directory_sync, group_key, parse_group_map, role_for
from servicedesk.models import AuditLog, Team, TeamMembership
from servicedesk.roles import Role, role_of

AGENTS = "cn=sd-agents,ou=groups,dc=example,dc=org"
MANAGERS = "cn=sd-managers,ou=groups,dc=example,dc=org"
ADMINS = "cn=sd-admins,ou=groups,dc=example,dc=org"
NETWORK = "cn=network,ou=groups,dc=example,dc=org"
DESK = "cn=desk,ou=groups,dc=example,dc=org"

ROLE_MAP = {AGENTS: "agent", MANAGERS: "manager", ADMINS: "admin"}
TEAM_MAP = {NETWORK: "Network", DESK: "Service Desk"}


def sync(user, groups, role_map=ROLE_MAP, team_map=TEAM_MAP):
    directory_sync(user, groups, role_map=role_map, team_map=team_map, source="test")
    user.refresh_from_db()
    if hasattr(user, "_sd_role"):
        del user._sd_role


def team_names(user):
    return set(TeamMembership.objects.filter(user=user).values_list("team__name", flat=True))


@pytest.fixture
def teams(db):
    return {name: Team.objects.create(name=name) for name in ("Network", "Service Desk", "Facilities")}


# --- parse_group_map (no database) ---------------------------------------------------------------


def test_it_reads_a_role_map_with_normalised_group_names():
    parsed = parse_group_map('{"CN=SD-Agents, OU=Groups,DC=Example,DC=org": "agent"}', "LDAP_GROUP_ROLES")
    assert parsed == {"cn=sd-agents,ou=groups,dc=example,dc=org": "agent"}


@pytest.mark.parametrize("raw", ["", "   "])
def test_it_reads_an_empty_setting_as_no_mapping(raw):
    assert parse_group_map(raw, "LDAP_GROUP_ROLES") == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "LDAP_GROUP_ROLES is not valid JSON"),
        ('["agent"]', "LDAP_GROUP_ROLES must be a JSON object"),
        ('{"cn=x": "boss"}', "LDAP_GROUP_ROLES: 'boss' (for group 'cn=x') is not a role"),
        ('{"cn=x": 3}', "LDAP_GROUP_ROLES: the value for group 'cn=x' must be a non-empty string"),
        ('{" ": "agent"}', "LDAP_GROUP_ROLES: a group name is empty"),
        ('{"cn=X": "agent", "CN=x": "admin"}', "LDAP_GROUP_ROLES: group 'CN=x' is mapped twice"),
    ],
)
def test_it_refuses_a_bad_role_map_naming_the_setting(raw, message):
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_group_map(raw, "LDAP_GROUP_ROLES")
    assert message in str(caught.value)


def test_a_team_map_takes_any_team_name_but_still_refuses_bad_json():
    assert parse_group_map('{"cn=net": "Network"}', "LDAP_GROUP_TEAMS") == {"cn=net": "Network"}
    with pytest.raises(ImproperlyConfigured, match="OIDC_GROUP_TEAMS is not valid JSON"):
        parse_group_map("{", "OIDC_GROUP_TEAMS")
    with pytest.raises(ImproperlyConfigured, match="is not a role"):
        parse_group_map('{"g": "Network"}', "SOMETHING", roles=True)


def test_it_compares_dns_ignoring_case_and_spaces_around_separators():
    assert group_key(" CN=Agents , OU=Groups ") == group_key("cn=agents,ou=groups")
    assert group_key("cn=a b,ou=g") != group_key("cn=ab,ou=g")


def test_the_highest_mapped_role_wins_and_no_mapped_group_means_requester():
    assert role_for([AGENTS, MANAGERS, "cn=other"], ROLE_MAP) == Role.MANAGER
    assert role_for([AGENTS.upper(), ADMINS], ROLE_MAP) == Role.ADMIN
    assert role_for(["cn=other"], ROLE_MAP) == Role.REQUESTER
    assert role_for([], ROLE_MAP) == Role.REQUESTER


# --- directory_sync ----------------------------------------------------------------------------


def test_it_gives_the_role_and_teams_of_the_groups_with_an_audit_entry(make_user, teams):
    user = make_user("requester", username="dora")
    sync(user, [AGENTS, NETWORK, "cn=unmapped,ou=groups,dc=example,dc=org"])
    assert role_of(user) == Role.AGENT
    assert set(user.groups.values_list("name", flat=True)) == {"agent"}
    assert team_names(user) == {"Network"}
    log = AuditLog.objects.filter(action="user.directory_sync", object_id=str(user.id)).get()
    assert log.changes == {"source": "test", "role": {"old": "requester", "new": "agent"},
                           "teams": {"added": ["Network"], "removed": []}}


def test_a_group_change_moves_role_and_teams_and_a_second_identical_sync_changes_nothing(make_user, teams):
    user = make_user("requester", username="dora")
    sync(user, [MANAGERS, NETWORK])
    assert role_of(user) == Role.MANAGER and user.is_staff
    sync(user, [AGENTS, DESK])
    assert role_of(user) == Role.AGENT and not user.is_staff
    assert team_names(user) == {"Service Desk"}
    logs = AuditLog.objects.filter(action="user.directory_sync", object_id=str(user.id))
    assert logs.count() == 2
    assert logs.first().changes["teams"] == {"added": ["Service Desk"], "removed": ["Network"]}
    sync(user, [AGENTS, DESK])
    assert logs.count() == 2


def test_it_compares_group_names_case_insensitively(make_user, teams):
    user = make_user("requester", username="dora")
    sync(user, ["CN=SD-Admins, OU=Groups, DC=Example, DC=Org", "CN=Desk,OU=Groups,DC=example,DC=org"])
    assert role_of(user) == Role.ADMIN
    assert team_names(user) == {"Service Desk"}


def test_losing_every_mapped_group_makes_a_requester_out_of_all_managed_teams(make_user, teams):
    user = make_user("agent", username="dora", teams=["Network"])
    sync(user, ["cn=somewhere-else"])
    assert role_of(user) == Role.REQUESTER
    assert set(user.groups.values_list("name", flat=True)) == {"requester"}
    assert team_names(user) == set()


def test_a_requester_is_not_put_in_a_team_even_when_a_group_maps_to_one(make_user, teams):
    user = make_user("requester", username="dora")
    sync(user, [NETWORK])
    assert role_of(user) == Role.REQUESTER
    assert team_names(user) == set()


def test_a_superuser_is_never_demoted_but_their_teams_follow_the_directory(make_user, teams):
    root = make_user("admin", username="root")
    assert root.is_superuser
    sync(root, [NETWORK])
    assert root.is_superuser and root.is_staff
    assert role_of(root) == Role.ADMIN
    assert "admin" in set(root.groups.values_list("name", flat=True))
    assert team_names(root) == {"Network"}


def test_teams_the_directory_does_not_manage_are_left_alone(make_user, teams):
    user = make_user("agent", username="dora", teams=["Facilities", "Network"])
    sync(user, [AGENTS, DESK])
    assert team_names(user) == {"Facilities", "Service Desk"}


def test_without_a_role_map_roles_stay_what_admins_set(make_user, teams):
    user = make_user("manager", username="dora")
    sync(user, [AGENTS], role_map={})
    assert role_of(user) == Role.MANAGER
    assert not AuditLog.objects.filter(action="user.directory_sync").exists()


def test_a_team_in_the_map_that_does_not_exist_is_a_warning_not_a_crash(make_user, teams, caplog):
    user = make_user("requester", username="dora")
    with caplog.at_level(logging.WARNING, logger="servicedesk.directory"):
        sync(user, [AGENTS, "cn=ghosts"], team_map={**TEAM_MAP, "cn=ghosts": "Ghostbusters"})
    assert role_of(user) == Role.AGENT
    assert "team 'Ghostbusters' named in the group-to-team map does not exist" in caplog.text
    assert not Team.objects.filter(name="Ghostbusters").exists()


def test_non_role_django_groups_are_kept(make_user, teams):
    from django.contrib.auth.models import Group

    user = make_user("requester", username="dora")
    user.groups.add(Group.objects.create(name="newsletter"))
    sync(user, [AGENTS])
    assert set(user.groups.values_list("name", flat=True)) == {"agent", "newsletter"}


def test_it_runs_a_constant_number_of_queries_whatever_the_number_of_groups(make_user, teams):
    many_teams = [Team.objects.create(name=f"Team {i}") for i in range(30)]
    team_map = {f"cn=team{i},ou=groups": team.name for i, team in enumerate(many_teams)}
    few_user = make_user("requester", username="few")
    many_user = make_user("requester", username="many")
    with CaptureQueriesContext(connection) as few:
        directory_sync(few_user, [AGENTS, "cn=team0,ou=groups"], role_map=ROLE_MAP, team_map=team_map,
                       source="test")
    with CaptureQueriesContext(connection) as many:
        directory_sync(many_user, [AGENTS] + list(team_map) + [f"cn=other{i}" for i in range(50)],
                       role_map=ROLE_MAP, team_map=team_map, source="test")
    assert team_names(many_user) == {t.name for t in many_teams}
    assert len(many) == len(few) <= 14


# --- DN keys match DNs only ----------------------------------------------------------------------------


def test_a_group_name_spelling_a_mapped_dn_does_not_match_it(make_user, teams):
    """A group anyone could create elsewhere in the directory, whose plain name is the admin group's DN string:
    a key with "=" names a DN and matches only a DN."""
    user = make_user("requester", username="mallory")
    directory_sync(user, ["cn=projects-x,ou=projects,dc=example,dc=org"], names=[ADMINS, NETWORK],
                   role_map=ROLE_MAP, team_map=TEAM_MAP, source="test")
    user.refresh_from_db()
    assert role_of(user) == Role.REQUESTER and not user.is_staff
    assert team_names(user) == set()


def test_a_plain_name_still_matches_a_plain_key_and_a_dn_matches_a_dn_key(make_user, teams):
    user = make_user("requester", username="nora")
    directory_sync(user, [NETWORK.upper()], names=["SD-Agents"], role_map={"sd-agents": "agent"},
                   team_map=TEAM_MAP, source="test")
    user.refresh_from_db()
    assert role_of(user) == Role.AGENT
    assert team_names(user) == {"Network"}
