"""Automated fulfilment (requests_app.fulfilment, requests_app.handlers): the handler registry and its settings
checks, password_reset and group_access doing their real work, steps that a retried task never repeats,
retries with backoff ending in `failed` with the team and an internal note, and request_retry."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import transaction

from requests_app.admin import CatalogItemForm
from requests_app.fulfilment import (
    MAX_ATTEMPTS,
    Done,
    FulfilmentHandler,
    Transient,
    fulfilment_process,
    handler_choices,
    handler_register,
)
from requests_app.models import CatalogItem, FulfilmentRun
from requests_app.services import request_cancel, request_retry, request_submit
from requests_app.states import Status
from servicedesk.errors import TransitionNotAllowed
from servicedesk.models import OutboxMessage, Team
from tests.conftest import PASSWORD
from tests.requests_app.factories import category, item
from tests.requests_app.fulfilment_helpers import mails, run_pending, timeline

pytestmark = pytest.mark.django_db

LATER = timedelta(hours=1)  # past any backoff


def order(thing, user, **answers):
    return request_submit(item=thing, answers=answers, requester=user, created_by=user)


@pytest.fixture
def reset_item():
    return item("Reset my password", handler="password_reset")


@pytest.fixture
def join_item():
    for name in ("VPN users", "Finance share"):
        Group.objects.get_or_create(name=name)
    return item("Join a group", handler="group_access", handler_settings={"groups": ["VPN users", "Finance share"]},
                fields=[{"name": "group", "label": "Group", "type": "choice", "required": True,
                         "choices": "VPN users\nFinance share"}])


# --- registry and settings ---------------------------------------------------------------------------


def clean_errors(candidate: CatalogItem) -> dict:
    with pytest.raises(ValidationError) as raised:
        candidate.full_clean()
    return raised.value.message_dict


def test_the_admin_offers_the_registered_handlers():
    keys = [key for key, _ in handler_choices()]
    assert {"password_reset", "group_access", "software_install"} <= set(keys)
    offered = [value for value, _ in CatalogItemForm().fields["handler"].widget.choices]
    assert offered[0] == "" and set(keys) <= set(offered)


@pytest.mark.parametrize("handler, handler_settings, message", [
    ("no_such_handler", {}, "No automated handler named 'no_such_handler'"),
    ("password_reset", {"group": "x"}, "group: unknown setting"),
    ("group_access", {"group": "Nobody"}, "group: no group named 'Nobody'"),
    ("group_access", {"group": "admin"}, "group: 'admin' is a role group"),
    ("group_access", {"groups": ["VPN users", "Ghosts"]}, "groups: no group named 'Ghosts'"),
    ("group_access", {}, "group: name one group"),
    ("software_install", {"url": "ftp://x", "secret": "s" * 20}, "url: the http(s) address"),
    ("software_install", {"url": "https://deploy.test/jobs"}, "secret: give the shared secret"),
    ("software_install", {"url": "https://deploy.test/jobs", "secret_env": "SD_TEST_UNSET_SECRET"},
     "secret_env: the environment variable SD_TEST_UNSET_SECRET is not set"),
    ("software_install", {"url": "https://deploy.test/jobs", "secret": "s" * 20, "timeout_minutes": 0},
     "timeout_minutes: whole minutes"),
])
def test_an_item_with_bad_handler_settings_is_refused_naming_the_setting(handler, handler_settings, message):
    Group.objects.get_or_create(name="VPN users")
    Group.objects.get_or_create(name="admin")
    candidate = CatalogItem(name="Thing", category=category(), handler=handler, handler_settings=handler_settings,
                            fulfilment_team=Team.objects.create(name="Service Desk"))
    errors = clean_errors(candidate)
    text = " ".join(errors.get("handler_settings", []) + errors.get("handler", []))
    assert message in text, errors


def test_a_group_that_grants_permissions_cannot_be_joined_by_request():
    powerful = Group.objects.create(name="Editors")
    powerful.permissions.add(Permission.objects.get(codename="change_team"))
    candidate = CatalogItem(name="Become editor", category=category(), handler="group_access",
                            handler_settings={"group": "Editors"},
                            fulfilment_team=Team.objects.create(name="Service Desk"))
    assert "grants permissions" in clean_errors(candidate)["handler_settings"][0]


def test_good_settings_pass():
    Group.objects.create(name="VPN users")
    for handler, settings in [("password_reset", {}), ("group_access", {"group": "VPN users"}),
                              ("software_install", {"url": "https://deploy.test/jobs", "secret": "s" * 20,
                                                    "timeout_minutes": 30, "package_field": "product"})]:
        CatalogItem(name=f"Item {handler}", category=category(), handler=handler, handler_settings=settings,
                    fulfilment_team=Team.objects.get_or_create(name="Service Desk")[0]).full_clean()


# --- password_reset ----------------------------------------------------------------------------------


def test_password_reset_mails_a_working_link_and_fulfils_the_request(reset_item, requester, client):
    made = order(reset_item, requester)
    run = FulfilmentRun.objects.get(request=made)
    assert run.state == "running" and run.handler == "password_reset"
    assert run_pending() == ["done"]
    made.refresh_from_db()
    assert made.status == Status.FULFILLED and made.fulfilled_at is not None
    assert "We e-mailed you a link to choose a new password." in timeline(made, internal=False)
    assert any("queued for alice to alice@example.com" in line for line in timeline(made, internal=True))
    [done_mail] = mails("request_fulfilled")
    assert done_mail.payload["to"] == [requester.email]
    assert "link to choose a new password" in done_mail.payload["context"]["note"]

    # The link is made when the mail is sent: the outbox row holds no token.
    reset = OutboxMessage.objects.get(handler="requests.password_reset_mail")
    assert set(reset.payload) == {"user_id", "request"}
    assert run_pending("requests.password_reset_mail") == ["done"]
    [sent] = mail.outbox
    assert sent.to == [requester.email] and f"[{made.number}] Choose a new password" == sent.subject
    link = re.search(r"http://\S+/reset/\S+/", sent.body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]

    page = client.get("/" + path, follow=True)
    assert page.status_code == 200 and b"Choose a new password" in page.content
    form_url = page.redirect_chain[-1][0]
    done = client.post(form_url, {"new_password1": "Brand-new-2026!", "new_password2": "Brand-new-2026!"})
    assert done.status_code == 302 and done.url == "/reset/done/"
    assert b"Your password is changed" in client.get(done.url).content
    requester.refresh_from_db()
    assert requester.check_password("Brand-new-2026!")
    # Used once: the same link no longer works.
    again = client.get("/" + path, follow=True)
    assert b"This link no longer works" in again.content


def test_an_account_without_a_usable_password_fails_to_the_team_with_the_reason(reset_item, make_user):
    outsider = make_user("requester", username="ldap.lee")
    outsider.set_unusable_password()
    outsider.save()
    made = order(reset_item, outsider)
    assert run_pending() == ["done"]
    made.refresh_from_db()
    assert made.status == Status.FAILED
    assert made.assignment_group == reset_item.fulfilment_team and made.assignee is None
    notes = timeline(made, internal=True)
    assert any("Automated fulfilment (password_reset) failed: the account ldap.lee has no password kept here"
               in line for line in notes)
    public = timeline(made, internal=False)
    assert "We could not complete this automatically; Service Desk will take it from here" in public
    assert not any("password kept" in line for line in public)
    assert not OutboxMessage.objects.filter(handler="requests.password_reset_mail").exists()
    assert FulfilmentRun.objects.get(request=made).state == "failed"


def test_the_team_is_mailed_when_fulfilment_fails(reset_item, make_user, agent):
    outsider = make_user("requester", username="ldap.lee")
    outsider.set_unusable_password()
    outsider.save()
    made = order(reset_item, outsider)
    run_pending()
    [failed] = mails("request_failed")
    assert failed.payload["to"] == [agent.email]  # the Service Desk team's member
    assert failed.payload["thread"]["internal"] is True  # agents only: a reply to it by mail stays internal
    assert "no password kept here" in failed.payload["context"]["error"]
    assert failed.payload["context"]["request"]["number"] == made.number


# --- group_access ------------------------------------------------------------------------------------


def test_group_access_adds_the_requester_to_the_group_they_chose(join_item, requester):
    made = order(join_item, requester, group="VPN users")
    assert run_pending() == ["done"]
    made.refresh_from_db()
    assert made.status == Status.FULFILLED
    assert requester.groups.filter(name="VPN users").exists()
    assert not requester.groups.filter(name="Finance share").exists()
    assert "Added you to the group VPN users." in timeline(made, internal=False)
    assert "Fulfilled: You are now a member of VPN users." in timeline(made, internal=False)


def test_group_access_for_someone_already_a_member_changes_nothing_and_says_so(join_item, requester):
    Group.objects.get(name="VPN users").user_set.add(requester)
    made = order(join_item, requester, group="VPN users")
    run_pending()
    assert "You were already a member of VPN users." in timeline(made, internal=False)
    assert requester.groups.filter(name="VPN users").count() == 1


def test_group_access_can_add_the_person_named_by_a_user_field(requester, other_requester):
    Group.objects.create(name="Project Aurora")
    for_someone = item("Add a colleague to Aurora", handler="group_access",
                       handler_settings={"group": "Project Aurora", "user_field": "who"},
                       fields=[{"name": "who", "label": "Who", "type": "user", "required": True}])
    made = order(for_someone, requester, who="bob")
    run_pending()
    made.refresh_from_db()
    assert made.status == Status.FULFILLED
    assert other_requester.groups.filter(name="Project Aurora").exists()
    assert not requester.groups.filter(name="Project Aurora").exists()
    assert "Added Bob Other to the group Project Aurora." in timeline(made, internal=False)


def test_group_access_fails_when_the_group_is_gone(join_item, requester):
    made = order(join_item, requester, group="Finance share")
    Group.objects.filter(name="Finance share").delete()
    run_pending()
    made.refresh_from_db()
    assert made.status == Status.FAILED
    assert any("no group named 'Finance share'" in line for line in timeline(made, internal=True))


# --- idempotence -------------------------------------------------------------------------------------


class TwoSteps(FulfilmentHandler):
    """A test handler: step one adds to a group, step two fails while `flaky` says so."""

    key = "test_two_steps"
    label = "Two steps (test)"
    flaky = 0
    first_ran = 0

    def run(self, ctx):
        def first():
            TwoSteps.first_ran += 1
            Group.objects.get(name="Step one").user_set.add(ctx.request.requester)
            ctx.say("Step one done.")
            return {"ok": True}

        def second():
            if TwoSteps.flaky:
                TwoSteps.flaky -= 1
                raise Transient("the second system is down")
            ctx.say("Step two done.")

        ctx.step("first", first)
        ctx.step("second", second)
        return Done("Both steps done.")


@pytest.fixture
def two_steps():
    handler_register(TwoSteps())
    TwoSteps.flaky, TwoSteps.first_ran = 0, 0
    Group.objects.create(name="Step one")
    return item("Two steps", handler="test_two_steps")


def test_a_retried_task_skips_the_steps_already_done(two_steps, requester):
    TwoSteps.flaky = 2
    made = order(two_steps, requester)
    assert run_pending() == ["pending"]  # step one done, step two failed: retry later
    run = FulfilmentRun.objects.get(request=made)
    assert list(run.steps) == ["first"] and run.attempts == 1
    message = OutboxMessage.objects.get(handler="request.fulfil")
    assert message.attempts == 1 and "the second system is down" in message.last_error
    assert run_pending() == [None]  # not due yet: the backoff holds it
    assert run_pending(later=LATER) == ["pending"]
    assert run_pending(later=LATER) == ["done"]
    made.refresh_from_db()
    assert made.status == Status.FULFILLED
    assert TwoSteps.first_ran == 1  # three attempts, step one once
    assert timeline(made, internal=False).count("Step one done.") == 1
    assert timeline(made, internal=False).count("Step two done.") == 1
    assert len([line for line in timeline(made, internal=True) if "trying again shortly" in line]) == 2


def test_running_the_task_twice_acts_once(join_item, requester):
    made = order(join_item, requester, group="VPN users")
    run = FulfilmentRun.objects.get(request=made)
    assert fulfilment_process(request_id=made.id, round=run.round) is None
    assert fulfilment_process(request_id=made.id, round=run.round) is None  # a duplicate delivery
    made.refresh_from_db()
    assert made.status == Status.FULFILLED
    assert timeline(made, internal=False).count("Added you to the group VPN users.") == 1
    assert len(mails("request_fulfilled")) == 1
    assert FulfilmentRun.objects.get(request=made).attempts == 1


def test_a_worker_killed_mid_run_leaves_nothing_and_the_rerun_acts_once(two_steps, requester):
    made = order(two_steps, requester)
    run = FulfilmentRun.objects.get(request=made)

    class Killed(BaseException):
        pass

    # The worker dies after step one, before its transaction commits: everything it wrote goes with it.
    original = TwoSteps.run

    def dies_after_first(self, ctx):
        ctx.step("first", lambda: (Group.objects.get(name="Step one").user_set.add(requester), {"ok": 1})[1])
        raise Killed

    TwoSteps.run = dies_after_first
    try:
        with pytest.raises(Killed), transaction.atomic():
            fulfilment_process(request_id=made.id, round=run.round)
    finally:
        TwoSteps.run = original
    run.refresh_from_db()
    assert run.steps == {} and run.attempts == 0
    assert not requester.groups.filter(name="Step one").exists()

    assert run_pending() == ["done"]
    assert TwoSteps.first_ran == 1
    assert requester.groups.filter(name="Step one").count() == 1


# --- final failure and retry -------------------------------------------------------------------------


def test_after_the_last_attempt_the_request_fails_to_the_team_with_the_error(two_steps, requester, agent):
    TwoSteps.flaky = 100
    made = order(two_steps, requester)
    outcomes = [run_pending(later=LATER)[0] for _ in range(MAX_ATTEMPTS)]
    assert outcomes == ["pending"] * (MAX_ATTEMPTS - 1) + ["failed"]
    message = OutboxMessage.objects.get(handler="request.fulfil")
    assert message.attempts == MAX_ATTEMPTS and message.last_error.startswith(f"gave up after {MAX_ATTEMPTS}")
    made.refresh_from_db()
    assert made.status == Status.FAILED and made.assignment_group.name == "Service Desk"
    assert any("Automated fulfilment (test_two_steps) failed: gave up after 6 attempts: the second system is down"
               in line for line in timeline(made, internal=True))
    assert mails("request_failed")[0].payload["to"] == [agent.email]
    assert FulfilmentRun.objects.get(request=made).state == "failed"


def test_the_backoff_doubles_between_attempts(two_steps, requester):
    from servicedesk.outbox import handler_for

    backoff = handler_for("request.fulfil").backoff
    assert [backoff(n).total_seconds() for n in range(1, MAX_ATTEMPTS)] == [5, 10, 20, 40, 80]


def test_retry_sends_a_failed_request_through_its_handler_again(join_item, requester, agent):
    made = order(join_item, requester, group="Finance share")
    Group.objects.filter(name="Finance share").delete()
    run_pending()
    made.refresh_from_db()
    assert made.status == Status.FAILED
    Group.objects.create(name="Finance share")  # the team fixes the cause

    retried = request_retry(request_id=made.id, actor=agent, version=made.version)
    assert retried.status == Status.IN_FULFILMENT
    run = FulfilmentRun.objects.get(request=made)
    assert run.round == 2 and run.state == "running" and run.steps == {}
    assert run_pending() == ["done"]
    made.refresh_from_db()
    assert made.status == Status.FULFILLED
    assert requester.groups.filter(name="Finance share").exists()


def test_only_a_failed_request_can_be_retried(join_item, requester, agent):
    made = order(join_item, requester, group="VPN users")
    with pytest.raises(TransitionNotAllowed, match="only a failed request can be retried"):
        request_retry(request_id=made.id, actor=agent)


def test_a_cancelled_request_is_not_fulfilled_by_its_queued_task(join_item, requester):
    made = order(join_item, requester, group="VPN users")
    request_cancel(request_id=made.id, actor=requester)
    assert run_pending() == ["done"]
    made.refresh_from_db()
    assert made.status == Status.CANCELLED
    assert not requester.groups.filter(name="VPN users").exists()


def test_the_retry_api_is_for_agents_only(join_item, requester, agent, client_for):
    made = order(join_item, requester, group="Finance share")
    Group.objects.filter(name="Finance share").delete()
    run_pending()
    url = f"/api/v1/requests/{made.number}/retry/"
    assert client_for(requester).post(url, {}, format="json").status_code == 403
    made.refresh_from_db()
    stale = client_for(agent).post(url, {"version": made.version - 1}, format="json")
    assert stale.status_code == 409
    response = client_for(agent).post(url, {"version": made.version}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "in_fulfilment"
    again = client_for(agent).post(url, {}, format="json")
    assert again.status_code == 409 and "only a failed request" in again.content.decode()


def test_the_user_model_keeps_the_reset_password_working_for_sign_in(reset_item, requester, client):
    """The password Alice had still works until she uses the link (ordering a reset changes nothing)."""
    order(reset_item, requester)
    run_pending()
    assert get_user_model().objects.get(id=requester.id).check_password(PASSWORD)


def test_the_demo_catalogs_automated_items_fulfil_themselves_with_no_approval(requester):
    from requests_app.demo import seed_catalog

    seed_catalog()
    reset = CatalogItem.objects.get(name="Reset my password")
    join = CatalogItem.objects.get(name="Join a group")
    for demo_item in (reset, join):
        demo_item.full_clean()  # the seeded settings pass the admin's checks
        assert demo_item.automated and not demo_item.requires_approval
    first = order(reset, requester)
    second = order(join, requester, group="Project Aurora")
    assert run_pending() == ["done", "done"]
    assert run_pending("requests.password_reset_mail") == ["done"]
    for made in (first, second):
        made.refresh_from_db()
        assert made.status == Status.FULFILLED
    assert requester.groups.filter(name="Project Aurora").exists()
    assert "Choose a new password" in mail.outbox[0].subject
    software = CatalogItem.objects.get(name="Software licence")
    assert not software.automated  # no tool to call back in the demo: the team fulfils it by hand


def test_admin_offers_the_handlers_and_names_the_bad_setting(admin_client, requester):
    from tests.requests_app.test_models import _errors, _item_post

    page = admin_client.get("/admin/requests_app/catalogitem/add/").content.decode()
    assert '<option value="group_access">' in page and '<option value="software_install">' in page
    response = admin_client.post("/admin/requests_app/catalogitem/add/", _item_post(
        handler="group_access", handler_settings='{"group": "Nobody"}'))
    form_errors, _ = _errors(response)
    assert form_errors["handler_settings"] == ["group: no group named 'Nobody'"]
    Group.objects.create(name="VPN users")
    response = admin_client.post("/admin/requests_app/catalogitem/add/", _item_post(
        handler="group_access", handler_settings='{"group": "VPN users"}'))
    assert response.status_code == 302
    made = order(CatalogItem.objects.get(name="New laptop"), requester)
    run_pending()
    assert admin_client.get("/admin/requests_app/fulfilmentrun/").status_code == 200
    run = FulfilmentRun.objects.get(request=made)
    page = admin_client.get(f"/admin/requests_app/fulfilmentrun/{run.id}/change/")
    assert page.status_code == 200 and "callback_nonce" not in page.content.decode()
