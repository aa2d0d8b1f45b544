"""The weekly insights e-mail: when it is due (across DST), who may subscribe, the sweep that sends each due
subscription once even with two sweeps at the same time, what the mail shows, and a real worker delivering it to
a real SMTP sink."""

import email
import email.policy
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction
from django.template.loader import render_to_string
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from insights.models import Subscription
from insights.subscriptions import next_due, subscription_set, subscriptions_send_due, weekly_context
from servicedesk.errors import InvalidInput, NotAllowed
from servicedesk.models import OutboxMessage, Team, TeamMembership
from servicedesk.services import user_provision

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


@pytest.fixture
def manager(make_user):
    return make_user("manager", username="mona", first_name="Mona", teams=["Service Desk"])


def mails():
    return OutboxMessage.objects.filter(handler="email.send", payload__template="insights_weekly")


# --- when -----------------------------------------------------------------------------------------------------


def test_it_is_due_on_the_weekday_and_local_hour_across_the_spring_dst_change():
    # Europe/Berlin moves to summer time on the last Sunday of March: 07:00 is 06:00 UTC before, 05:00 after.
    saturday = datetime(2026, 3, 21, 12, 0, tzinfo=BERLIN)
    first = next_due(saturday, weekday=0, hour=7, tz=BERLIN)
    second = next_due(first, weekday=0, hour=7, tz=BERLIN)
    assert first.astimezone(UTC) == datetime(2026, 3, 23, 6, 0, tzinfo=UTC)
    assert second.astimezone(UTC) == datetime(2026, 3, 30, 5, 0, tzinfo=UTC)
    assert (first.astimezone(BERLIN).hour, second.astimezone(BERLIN).hour) == (7, 7)


def test_it_is_due_at_the_same_local_hour_after_the_autumn_change_and_later_the_same_day():
    sunday_autumn = datetime(2026, 10, 25, 6, 0, tzinfo=BERLIN)  # the change happened at 03:00 that night
    due = next_due(sunday_autumn, weekday=6, hour=7, tz=BERLIN)
    assert due.astimezone(UTC) == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)  # 07:00 CET, the same day
    past_it = next_due(due, weekday=6, hour=7, tz=BERLIN)
    assert past_it - due == timedelta(days=7)


def test_an_hour_that_does_not_exist_falls_an_hour_later():
    due = next_due(datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN), weekday=6, hour=2, tz=BERLIN)
    assert due.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)


# --- subscribing ---------------------------------------------------------------------------------------------


@override_settings(TIME_ZONE="Europe/Berlin")
def test_subscribing_sets_the_next_due_time_in_the_site_zone_once_per_scope(manager, db):
    now = timezone.now()
    made = subscription_set(user=manager, weekday=2, hour=8, now=now)
    local = made.next_due_at.astimezone(BERLIN)
    assert (local.weekday(), local.hour, local.minute) == (2, 8, 0)
    assert now < made.next_due_at <= now + timedelta(days=7)
    again = subscription_set(user=manager, weekday=4, hour=6, now=now)
    assert again.id == made.id and Subscription.objects.count() == 1
    assert again.next_due_at.astimezone(BERLIN).weekday() == 4
    paused = subscription_set(user=manager, weekday=4, hour=6, active=False, now=now)
    assert paused.next_due_at is None


def test_it_names_a_bad_day_hour_or_team_and_refuses_requesters(manager, requester, make_user, db):
    with pytest.raises(InvalidInput) as bad:
        subscription_set(user=manager, weekday=9)
    assert bad.value.field == "weekday"
    with pytest.raises(InvalidInput) as bad:
        subscription_set(user=manager, hour=24)
    assert bad.value.field == "hour"
    make_user("agent", username="net", teams=["Network"])
    with pytest.raises(InvalidInput) as bad:
        subscription_set(user=manager, team=Team.objects.get(name="Network"))
    assert bad.value.field == "team"
    with pytest.raises(NotAllowed):
        subscription_set(user=requester)
    assert not Subscription.objects.exists()


# --- the sweep --------------------------------------------------------------------------------------------


def due_now(user, **kwargs):
    made = subscription_set(user=user, **kwargs)
    Subscription.objects.filter(id=made.id).update(next_due_at=timezone.now() - timedelta(minutes=1))
    return made


def test_the_sweep_sends_what_is_due_once_and_moves_it_a_week_on(manager, agent, db):
    due = due_now(manager, team=Team.objects.get(name="Service Desk"))
    later = subscription_set(user=agent)
    now = timezone.now()
    assert subscriptions_send_due(now=now) == 1
    assert subscriptions_send_due(now=now) == 0
    assert mails().count() == 1 and mails().get().payload["to"] == [manager.email]
    due.refresh_from_db()
    assert due.last_sent_at == now and now < due.next_due_at <= now + timedelta(days=7)
    later_due = later.next_due_at
    later.refresh_from_db()
    assert later.next_due_at == later_due and later.last_sent_at is None


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_subscription_once(make_user):
    users = [make_user("agent", username=f"a{n}", teams=["Service Desk"]) for n in range(12)]
    for user in users:
        due_now(user)
    start, counts, errors = threading.Barrier(2), [], []

    def sweep():
        try:
            start.wait()
            counts.append(subscriptions_send_due())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection, so the test database can be dropped

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(counts) == 12
    assert mails().count() == 12
    assert sorted(m.payload["to"][0] for m in mails()) == sorted(u.email for u in users)


def test_a_person_who_left_the_team_gets_all_their_teams_with_a_note(manager, make_user, db):
    make_user("agent", username="net", teams=["Network"])
    network = Team.objects.get(name="Network")
    TeamMembership.objects.create(team=network, user=manager)
    made = subscription_set(user=manager, team=network)
    TeamMembership.objects.filter(team=network, user=manager).delete()
    context = weekly_context(Subscription.objects.get(id=made.id), today=timezone.localdate())
    assert context["team"] == "My teams" and "no longer see Network" in context["note"]


def test_a_person_who_is_no_longer_staff_gets_nothing_and_is_switched_off(manager, db):
    made = due_now(manager)
    user_provision(username=manager.username, role="requester")
    assert subscriptions_send_due() == 0
    made.refresh_from_db()
    assert (made.active, made.next_due_at) == (False, None) and not mails().exists()


def test_the_mail_shows_the_figures_of_the_last_week_against_the_one_before(manager, agent, requester, db):
    from incidents.services import incident_create, incident_resolve

    desk = Team.objects.get(name="Service Desk")
    today = timezone.localdate()
    opened = timezone.make_aware(datetime.combine(today - timedelta(days=3), datetime.min.time())) \
        + timedelta(hours=9)
    incident = incident_create(title="VPN down", requester=requester, created_by=agent, assignment_group=desk,
                               now=opened)
    incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="Restarted.",
                     now=opened + timedelta(hours=3, minutes=20))
    due_now(manager, team=desk)
    subscriptions_send_due()
    context = mails().get().payload["context"]
    tiles = {t["key"]: t for t in context["tiles"]}
    assert tiles["resolve_mean"]["value"] == "3 h 20 min" and tiles["resolve_mean"]["previous"] == "–"
    assert context["team"] == "Service Desk"
    assert context["period"] == f"{today - timedelta(days=7):%-d %b} – {today - timedelta(days=1):%-d %b %Y}"
    html = render_to_string("email/insights_weekly.html", context)
    text = render_to_string("email/insights_weekly.txt", context)
    assert "3 h 20 min" in html and "Mean time to resolve" in html and context["dashboard_url"].replace("&", "&amp;") in html
    assert "Mean time to resolve: 3 h 20 min (before: –)" in text


# --- the page ---------------------------------------------------------------------------------------------------


def test_the_page_subscribes_changes_and_unsubscribes(client, manager, db):
    client.force_login(manager)
    url = reverse("agent:insights_subscriptions")
    assert b'data-testid="no-subscriptions"' in client.get(url).content
    response = client.post(url, {"action": "subscribe", "weekday": 3, "hour": 9, "next": reverse("agent:insights")})
    assert response.status_code == 302 and response["Location"] == reverse("agent:insights")
    made = Subscription.objects.get(user=manager)
    assert (made.weekday, made.hour, made.team) == (3, 9, None)
    assert client.get(url).content.count(b'data-testid="subscription-row"') == 1
    bad = client.post(url, {"action": "subscribe", "weekday": 8, "hour": 9})
    assert bad.status_code == 400 and b'data-testid="error-weekday"' in bad.content
    assert client.post(url, {"action": "unsubscribe"}).status_code == 302
    assert not Subscription.objects.exists()


def test_requesters_may_not_open_the_page(client, requester, db):
    client.force_login(requester)
    assert client.get(reverse("agent:insights_subscriptions")).status_code == 403


# --- a real worker, a real SMTP sink ------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_the_weekly_mail_to_smtp(worker, smtp, make_user):
    from tests.workers import wait_for

    mona = make_user("manager", username="mona", first_name="Mona", email="mona@example.com",
                     teams=["Service Desk"])
    due_now(mona)
    with transaction.atomic():
        assert subscriptions_send_due() == 1
    assert wait_for(lambda: smtp.messages, timeout=60)
    message = smtp.messages[0]
    assert message["to"] == ["mona@example.com"]
    parsed = email.message_from_string(message["data"], policy=email.policy.default)
    assert str(parsed["Subject"]).strip().startswith("Service insights, ")
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    assert "Mean time to resolve" in html and "Open the dashboard" in html
    assert "Mean time to resolve:" in text


# --- review fixes: one broken subscription, duplicates, pausing in admin -------------------------------------


def test_one_subscription_that_fails_is_logged_moved_a_week_on_and_the_others_are_sent(manager, make_user,
                                                                                      incident_factory, caplog,
                                                                                      db):
    desk = Team.objects.get(name="Service Desk")
    other = make_user("agent", username="nina", teams=["Network"])
    broken, fine = due_now(manager, team=desk), due_now(other)
    Subscription.objects.filter(id=broken.id).update(next_due_at=timezone.now() - timedelta(minutes=5))
    # A real invalid row the desk's figures read: an incident created at -infinity (PostgreSQL accepts it; its
    # time to resolve "cannot subtract infinite timestamps"), resolved within last week. Network's are fine.
    incident = incident_factory(assignment_group=desk)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE incidents_incident SET status = 'resolved', created_at = '-infinity', "
                       "resolved_at = %s WHERE id = %s", [timezone.now() - timedelta(days=2), incident.id])
    now = timezone.now()
    with caplog.at_level("ERROR", logger="insights.subscriptions"):
        assert subscriptions_send_due(now=now) == 1
    assert [m.payload["to"] for m in mails()] == [[other.email]]
    assert f"insights subscription {broken.id}: the weekly mail could not be made" in caplog.text
    broken.refresh_from_db()
    assert broken.active and now < broken.next_due_at <= now + timedelta(days=7)  # not at the queue's head
    assert broken.last_sent_at is None
    fine.refresh_from_db()
    assert fine.last_sent_at == now
    assert subscriptions_send_due(now=now) == 0  # the next run does not trip on it again


def test_subscribing_again_never_makes_a_duplicate_even_where_the_database_allows_one(manager, db):
    first = subscription_set(user=manager, weekday=1)
    assert subscription_set(user=manager, weekday=2).id == first.id
    assert Subscription.objects.filter(user=manager).count() == 1
    # The database refuses a second (user, no team, no service) row (a unique index on the ids, 0 for none).
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(user=manager, weekday=5, hour=9)
    # A duplicate left from before that index: drop it for this test's transaction, then subscribe again.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred check pending: the table may be altered
        cursor.execute("DROP INDEX insight_sub_once")
    Subscription.objects.create(user=manager, weekday=5, hour=9)
    assert Subscription.objects.filter(user=manager, team=None, service=None).count() == 2
    made = subscription_set(user=manager, weekday=3, hour=8)
    assert list(Subscription.objects.filter(user=manager).values_list("id", "weekday", "hour")) == [
        (first.id, 3, 8)]
    assert made.id == first.id


@pytest.mark.django_db(transaction=True)
def test_two_people_subscribing_the_same_scope_at_once_leave_one_row(make_user):
    user = make_user("agent", username="twice", teams=["Service Desk"])
    start, errors = threading.Barrier(4), []

    def subscribe(weekday):
        try:
            start.wait()
            subscription_set(user=user, weekday=weekday)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=subscribe, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert Subscription.objects.filter(user=user).count() == 1


def test_admin_pauses_the_subscription_of_someone_no_longer_staff(admin_client, manager, agent, db):
    ex_staff, staff = due_now(manager), subscription_set(user=agent)
    user_provision(username=manager.username, role="requester")  # subscription_set would refuse them now
    response = admin_client.post(reverse("admin:insights_subscription_changelist"), {
        "action": "pause", "_selected_action": [ex_staff.id, staff.id]})
    assert response.status_code == 302
    assert list(Subscription.objects.order_by("id").values_list("active", "next_due_at")) == [(False, None),
                                                                                              (False, None)]
