"""Demo of problem detection (registered in problems.plugin as the "problems-detection" step, after the demo
problems): three look-alike badge-reader incidents that nobody linked yet, then one detector run, so the
review page (/agent/problems/candidates/) has candidates: these, and whatever the demo's generated incidents
repeat (same service and category). Seeding twice adds no incident; the run upserts."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents.models import Incident
from problems.detection import candidates_detect

TITLES = ["Badge reader at the main entrance rejects my card",
          "Badge reader at the main entrance rejects cards since Monday",
          "Main entrance badge reader rejects my new card"]


def seed_detection() -> str:
    from incidents.services import incident_create

    users = get_user_model().objects.in_bulk(["nina", "omar", "dora", "requester"], field_name="username")
    people = [users[n] for n in ("nina", "omar", "dora") if n in users] or list(users.values())
    if not people:
        return "skipped: the demo users are missing"
    now = timezone.now()
    for n, title in enumerate(TITLES):
        if not Incident.objects.filter(title=title).exists():
            person = people[n % len(people)]
            incident_create(title=title, requester=person, created_by=person, now=now - timedelta(days=2 * n + 1),
                            description="The light turns red and the door stays shut.")
    result = candidates_detect()
    return f"{result.found} clusters of recurring incidents, {result.created} new candidates"
