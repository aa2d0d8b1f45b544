"""seed_demo gives demo incidents real SLA clocks: the showcase incidents through the services (running,
paused awaiting the caller, past due, resolved in time and late), bulk-inserted ones afterwards; idempotent."""

from django.core.management import call_command
from django.utils import timezone

from incidents.demo import SHOWCASE
from incidents.models import Incident
from incidents.states import OPEN, Status
from sla.models import SlaClock
from sla.sweep import sla_sweep


def clocks(title):
    incident = Incident.objects.get(title=title)
    return {c.kind: c for c in SlaClock.objects.filter(ticket_type="incident", ticket_id=incident.id)}


def test_seed_demo_gives_every_demo_incident_clocks_in_telling_states(db):
    call_command("seed_demo", "--tickets", "80", "--quiet-logins")
    now = timezone.now()
    titles = [s[0] for s in SHOWCASE]

    late = clocks(titles[0])
    assert {c.state for c in late.values()} == {"running"}
    assert all(c.due_at < now and c.breached_at is None for c in late.values())  # for the sweep to find
    paused = clocks(titles[1])
    assert {c.state for c in paused.values()} == {"paused"}
    assert [(s["state"], s["seconds"]) for s in paused["resolution"].segments] == [("running", 15 * 60),
                                                                                  ("paused", None)]
    assert paused["resolution"].segments[1]["reason"] == "On hold (awaiting caller)"
    assert {c.state for c in clocks(titles[2]).values()} == {"running"}
    assert {c.state for c in clocks(titles[3]).values()} == {"met"}
    assert {c.state for c in clocks(titles[4]).values()} == {"breached"}
    assert Incident.objects.get(title=titles[0]).sla_due_at == min(c.due_at for c in late.values())

    # Every incident has clocks; open ones run or pause from the seed, finished ones replayed their history.
    with_clocks = set(SlaClock.objects.filter(ticket_type="incident").values_list("ticket_id", flat=True))
    assert set(Incident.objects.values_list("id", flat=True)) == with_clocks
    states = {}
    for clock in SlaClock.objects.filter(ticket_type="incident", kind="resolution"):
        states.setdefault(clock.ticket_id, clock.state)
    for incident in Incident.objects.exclude(title__in=titles):
        expected = {"running", "paused"} if incident.status in OPEN else (
            {"cancelled"} if incident.status == Status.CANCELLED else {"met", "breached"})
        assert states[incident.id] in expected, (incident.status, states[incident.id])
    finished = [states[i.id] for i in Incident.objects.exclude(title__in=titles).exclude(status__in=OPEN)
                .exclude(status=Status.CANCELLED)]
    assert "met" in finished and "breached" in finished  # a real history has both

    # The first sweep breaches only the showcase's past-due incident (its two clocks), besides the
    # problem-detection demo's look-alike incidents, raised days ago and left open on purpose.
    from problems.demo_detection import TITLES as DETECTION_DEMO

    detection = set(Incident.objects.filter(title__in=DETECTION_DEMO).values_list("id", flat=True))
    result = sla_sweep()
    breached = SlaClock.objects.filter(breached_at__isnull=False, state="running")
    assert result.breached == 2 + breached.filter(ticket_id__in=detection).count()
    assert set(breached.exclude(ticket_id__in=detection).values_list("ticket_id", flat=True)) == {
        Incident.objects.get(title=titles[0]).id}

    # Idempotent: nothing new the second time.
    counts = Incident.objects.count(), SlaClock.objects.count()
    call_command("seed_demo", "--tickets", "80", "--quiet-logins")
    assert (Incident.objects.count(), SlaClock.objects.count()) == counts
