"""The seeders' ticket-number SQL (servicedesk.bulkload.padded_number_sql): zero-padded to 7 digits, never cut
past 9,999,999, and the sequence read once a row the way the seeders read it (nextval in a subquery)."""

import pytest
from django.db import connection

from servicedesk.bulkload import padded_number_sql

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql", reason="the server-side seeder is PostgreSQL's")]


def test_numbers_are_padded_to_seven_digits_and_never_truncated():
    values = [1, 42, 1_000_001, 9_999_999, 10_000_000, 123_456_789]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 'INC' || {padded_number_sql('v')} FROM unnest(%s::bigint[]) AS v",
                       [values])
        got = [row[0] for row in cursor.fetchall()]
    assert got == ["INC0000001", "INC0000042", "INC1000001", "INC9999999", "INC10000000", "INC123456789"]


def test_the_seeders_shape_reads_the_sequence_once_a_row_in_order():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP SEQUENCE keyfix_numbers START 9999998")
        cursor.execute(
            f"""SELECT 'REQ' || {padded_number_sql('seq')}, g
                FROM (SELECT nextval('keyfix_numbers') AS seq, * FROM (
                    SELECT g FROM generate_series(1, 4) AS g ORDER BY g DESC) x) numbered""")
        rows = cursor.fetchall()
        cursor.execute("SELECT last_value FROM keyfix_numbers")
        last = cursor.fetchone()[0]
    assert rows == [("REQ9999998", 4), ("REQ9999999", 3), ("REQ10000000", 2), ("REQ10000001", 1)]
    assert last == 10_000_001  # four rows, four numbers: never two nextval calls for one row
