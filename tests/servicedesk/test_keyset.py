"""Keyset pagination and capped counts (servicedesk.keyset): every row once, forward and back, whatever is
added between pages; NULLs where the ORDER BY puts them; the same two queries whatever the page size."""

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db.models import F
from django.utils import timezone

from servicedesk.keyset import count_capped, keyset_page
from servicedesk.models import Team, TimelineEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(agent):
    """53 timeline entries with many equal created_at (ties broken by id) and NULL authors on every third."""
    kind = ContentType.objects.get_for_model(Team)
    now = timezone.now()
    TimelineEntry.objects.bulk_create([
        TimelineEntry(content_type=kind, object_id=1, kind="system", body=f"entry {n}",
                      author=None if n % 3 == 0 else agent, created_at=now - timedelta(minutes=n // 4))
        for n in range(53)])
    return TimelineEntry.objects.filter(content_type=kind)


def walk(queryset, per_page):
    """Every page forward; returns the pages (lists of ids) and the last page object."""
    pages, cursor = [], None
    while True:
        page = keyset_page(queryset, per_page=per_page, cursor=cursor, with_count=False)
        pages.append([e.id for e in page.object_list])
        if not page.has_next:
            return pages, page
        cursor = page.next_cursor


ORDERINGS = [
    ["-created_at", "-id"],
    ["created_at", "id"],
    [F("author_id").asc(nulls_last=True), "-created_at", "-id"],
    [F("author_id").desc(nulls_first=True), "created_at", "id"],
    [F("author_id").asc(nulls_first=True), "-id"],
    ["-created_at"],  # id is added as the tiebreak
]


@pytest.mark.parametrize("order", ORDERINGS)
def test_it_shows_every_row_once_in_the_order_by_forward_and_back(entries, order):
    queryset = entries.order_by(*order)
    full = order if order[-1] in ("id", "-id") else [*order, "-id"]
    expected = list(entries.order_by(*full).values_list("id", flat=True))
    pages, last = walk(queryset, 10)
    assert [i for p in pages for i in p] == expected
    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 3]
    # Back from the last page through the previous links: the same pages in reverse.
    back, page = [], last
    while page.has_previous:
        page = keyset_page(queryset, per_page=10, cursor=page.previous_cursor, with_count=False)
        back.append([e.id for e in page.object_list])
    assert back == list(reversed(pages[:-1]))
    assert not page.has_previous and page.has_next


def test_rows_added_between_pages_are_neither_repeated_nor_skipped(entries, agent):
    queryset = entries.order_by("-created_at", "-id")
    first = keyset_page(queryset, per_page=10, with_count=False)
    last_seen = first.object_list[-1]
    kind = ContentType.objects.get_for_model(Team)
    # Newer rows (they sort before page 1) and rows with the very instant of page 1's last row.
    TimelineEntry.objects.bulk_create(
        [TimelineEntry(content_type=kind, object_id=1, kind="system", body="newer", created_at=timezone.now())
         for _ in range(5)]
        + [TimelineEntry(content_type=kind, object_id=1, kind="system", body="tie", created_at=last_seen.created_at)
           for _ in range(3)])
    rest = []
    cursor = first.next_cursor
    while cursor:
        page = keyset_page(queryset, per_page=10, cursor=cursor, with_count=False)
        rest += [e.id for e in page.object_list]
        cursor = page.next_cursor
    everything = list(queryset.values_list("id", flat=True))
    after = everything[everything.index(last_seen.id) + 1:]
    assert rest == after  # exactly the rows after the cursor: the new ties have larger ids, so they sort before
    assert not set(rest) & {e.id for e in first.object_list}
    assert not TimelineEntry.objects.filter(body="newer", id__in=rest).exists()


def test_a_damaged_cursor_is_refused_naming_the_parameter(entries):
    for bad in ("nonsense", "eyJ2IjpbMV0sImIiOmZhbHNlfQ", "%%%"):
        with pytest.raises(ValueError, match="^cursor: "):
            keyset_page(entries.order_by("-created_at", "-id"), per_page=5, cursor=bad)


def test_a_page_costs_two_queries_whatever_its_size(entries, django_assert_num_queries):
    queryset = entries.order_by("-created_at", "-id").select_related("author")
    for size in (5, 50):
        with django_assert_num_queries(2):  # the page and its capped count
            page = keyset_page(queryset, per_page=size, cursor=None)
            [e.author for e in page.object_list]
        with django_assert_num_queries(2):
            following = keyset_page(queryset, per_page=size, cursor=page.next_cursor)
            [e.author for e in following.object_list]


def test_the_count_stops_at_the_cap(entries, settings):
    assert count_capped(entries, 100).label == "53" and not count_capped(entries, 100).capped
    assert count_capped(entries, 53).label == "53"
    capped = count_capped(entries, 52)
    assert capped.capped and capped.value == 52 and capped.label == "52+"
    settings.LIST_COUNT_CAP = 7
    assert str(keyset_page(entries.order_by("-id"), per_page=5).count) == "7+"
    assert count_capped(entries.none()).label == "0"


def test_an_edited_or_other_sorts_cursor_is_refused_naming_the_parameter(entries):
    """A cursor is signed for its model and ordering: a value edited to another type, or a cursor made by another
    sort, is a ValueError naming `cursor`, never a database error at the filter."""
    from servicedesk import keyset

    newest = entries.order_by("-created_at", "-id")
    cursor = keyset_page(newest, per_page=5, with_count=False).next_cursor
    assert keyset_page(newest, per_page=5, cursor=cursor, with_count=False).object_list  # the real one works
    payload, _, signature = cursor.rpartition(":")
    for bad in (payload + ":" + "x" * len(signature), cursor[:-1]):
        with pytest.raises(ValueError, match="^cursor: "):
            keyset_page(newest, per_page=5, cursor=bad, with_count=False)
    with pytest.raises(ValueError, match="^cursor: "):  # the same columns, the other direction
        keyset_page(entries.order_by("created_at", "id"), per_page=5, cursor=cursor, with_count=False)
    # Even signed with the right salt, a value its column cannot hold is refused before any SQL.
    queryset, terms = keyset._terms(newest)
    salt = keyset._salt(queryset, terms)
    for values in (["yesterday", 3], [{"t": timezone.now().isoformat()}, "three"], [[1], 2]):
        forged = keyset._encode(values, False, salt)
        with pytest.raises(ValueError, match="^cursor: "):
            keyset_page(newest, per_page=5, cursor=forged, with_count=False)


def test_a_cursor_page_whose_rows_are_gone_offers_the_first_page(entries):
    newest = entries.order_by("-created_at", "-id")
    first = keyset_page(newest, per_page=50, with_count=False)
    assert first.has_next and not first.emptied
    TimelineEntry.objects.filter(id__in=[e.id for e in newest[50:]]).delete()  # a bulk action took the rest
    gone = keyset_page(newest, per_page=50, cursor=first.next_cursor, with_count=False)
    assert gone.object_list == [] and gone.emptied
    assert gone.has_previous and gone.previous_cursor is None and not gone.first and not gone.has_next
    assert not keyset_page(newest.none(), per_page=50, with_count=False).emptied  # no cursor: just empty
