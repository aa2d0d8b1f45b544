"""ticket_lock under concurrency: a lock that waited for another transaction returns the row as that
transaction left it, related rows included (PostgreSQL re-reads a locked row after the wait, not the rows a
statement joined to it; the load test's "comment while another agent assigns" got a 500 from that)."""

import threading

import pytest
from django.db import connections, transaction

from incidents.models import Incident
from incidents.services import incident_comment_add
from servicedesk.tickets import ticket_lock


@pytest.mark.django_db(transaction=True)
def test_a_lock_that_waited_for_an_assignment_reads_the_new_assignee(incident_factory, agent, make_user):
    incident = incident_factory()
    assert incident.assignee_id is None
    colleague = make_user("agent", username="colin")
    locked_by_other, release, seen, errors = threading.Event(), threading.Event(), {}, []

    def assign_and_hold():
        try:
            with transaction.atomic():
                row = Incident.objects.select_for_update().get(id=incident.id)
                row.assignee = colleague
                row.save(update_fields=["assignee"])
                locked_by_other.set()
                release.wait(timeout=30)  # the other transaction queues behind this lock meanwhile
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def lock_and_read():
        try:
            locked_by_other.wait(timeout=30)
            with transaction.atomic():
                row = ticket_lock(Incident, incident.id, "assignee")
                seen["assignee_id"], seen["assignee"] = row.assignee_id, row.assignee
                seen["assignee_username"] = row.assignee.username if row.assignee_id else None
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    holder, reader = threading.Thread(target=assign_and_hold), threading.Thread(target=lock_and_read)
    holder.start()
    reader.start()
    locked_by_other.wait(timeout=30)
    reader.join(timeout=1.5)  # still waiting for the lock: it cannot have read anything yet
    assert reader.is_alive() and not seen
    release.set()
    holder.join(timeout=30)
    reader.join(timeout=30)
    assert not errors
    assert seen["assignee_id"] == colleague.id
    assert seen["assignee_username"] == "colin"


@pytest.mark.django_db(transaction=True)
def test_a_comment_while_another_agent_assigns_the_incident_is_saved_and_mailed(incident_factory, agent, make_user):
    """What the load test did: agent A assigns, agent B comments at the same moment; B's comment waits for A's
    lock, then is written and its notification names the new assignee."""
    incident = incident_factory()
    colleague = make_user("agent", username="colin")
    locked_by_other, release, errors, entries = threading.Event(), threading.Event(), [], []

    def assign_and_hold():
        try:
            with transaction.atomic():
                row = Incident.objects.select_for_update().get(id=incident.id)
                row.assignee = colleague
                row.save(update_fields=["assignee"])
                locked_by_other.set()
                release.wait(timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def comment():
        try:
            locked_by_other.wait(timeout=30)
            stale = Incident.objects.get(id=incident.id)
            entries.append(incident_comment_add(incident=stale, author=agent, body="Looking into it."))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    holder, commenter = threading.Thread(target=assign_and_hold), threading.Thread(target=comment)
    holder.start()
    commenter.start()
    locked_by_other.wait(timeout=30)
    commenter.join(timeout=1.0)
    release.set()
    holder.join(timeout=30)
    commenter.join(timeout=30)
    assert not errors
    assert len(entries) == 1 and entries[0].body == "Looking into it."
    incident.refresh_from_db()
    assert incident.assignee_id == colleague.id
