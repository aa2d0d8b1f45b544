"""Demo data of insights: the rollup of everything the other apps' demo steps made (their history spans
weeks), so the dashboard shows figures at once; two entries of the improvement register, one under way and
one done; and the demo manager's weekly e-mail of the dashboard."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from insights.improvements import improvement_create, improvement_set_status
from insights.models import Improvement
from insights.rollup import rollup_run
from insights.subscriptions import subscription_set
from servicedesk.models import Service, Team


def seed_insights() -> str:
    days = rollup_run()
    User = get_user_model()
    manager, admin = User.objects.filter(username="manager").first(), User.objects.filter(username="admin").first()
    added = 0
    if manager and admin and not Improvement.objects.exists():
        today = timezone.localdate()
        desk = Team.objects.filter(name="Service Desk").first()
        improvement_create(
            actor=manager, owner=manager, team=desk, measure="fcr_rate", target=45.0,
            title="Give the first line the password-reset and VPN runbooks",
            why="A third of what the Service Desk resolves is passed on first, mostly password and VPN issues "
                "the first line could fix on the call.",
            started_on=today - timedelta(days=10), due_on=today + timedelta(days=20), baseline_days=14)
        done = improvement_create(
            actor=admin, owner=admin, measure="deflection_rate", target=50.0,
            service=Service.objects.filter(name="VPN").first(),
            title="Suggest the VPN article while people report an issue",
            why="Most VPN tickets are answered by the same article; people should find it before they ask.",
            started_on=today - timedelta(days=24), due_on=today - timedelta(days=3), baseline_days=7)
        improvement_set_status(improvement_id=done.id, actor=admin, status=Improvement.Status.DONE,
                               done_on=today - timedelta(days=7))
        added = 2
    if manager:
        subscription_set(user=manager)
    return f"{days} days rolled up, {added} improvements added, a weekly e-mail for manager"
