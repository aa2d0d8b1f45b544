import threading

import pytest
from django.db import connection, transaction

from incidents.models import Incident
from incidents.services import incident_create
from servicedesk.numbering import number_block, number_next, number_sequence_ensure


@pytest.mark.django_db
def test_numbers_have_the_prefix_and_seven_digits():
    number_sequence_ensure("TST")
    first, second = number_next("TST"), number_next("TST")
    assert first.startswith("TST") and len(first) == 10 and first[3:].isdigit()
    assert int(second[3:]) == int(first[3:]) + 1


@pytest.mark.django_db
def test_it_refuses_a_prefix_that_could_inject_sql():
    with pytest.raises(ValueError, match="2-6 capital letters"):
        number_next("INC'; DROP TABLE x; --")


@pytest.mark.django_db
def test_a_block_reserves_distinct_numbers():
    block = number_block("INC", 500)
    assert len(set(block)) == 500


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_creation_leaves_a_gap_but_never_a_duplicate(requester):
    before = number_next("INC")
    with pytest.raises(RuntimeError), transaction.atomic():
        incident_create(title="Will be rolled back", requester=requester, created_by=requester)
        raise RuntimeError("boom")
    after = incident_create(title="Kept", requester=requester, created_by=requester)
    assert int(after.number[3:]) > int(before[3:]) + 1  # the rolled-back number is burnt, not reused
    assert not Incident.objects.filter(title="Will be rolled back").exists()


@pytest.mark.django_db(transaction=True)
def test_numbers_are_unique_when_many_threads_create_incidents_at_once(requester):
    threads_count, per_thread = 8, 15
    barrier = threading.Barrier(threads_count)
    errors = []

    def create_many():
        try:
            barrier.wait(timeout=30)
            for n in range(per_thread):
                incident_create(title=f"Concurrent {n}", requester=requester, created_by=requester)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own PostgreSQL connection

    threads = [threading.Thread(target=create_many) for _ in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    numbers = list(Incident.objects.values_list("number", flat=True))
    assert len(numbers) == threads_count * per_thread
    assert len(set(numbers)) == len(numbers)
