"""Keyset (cursor) pagination and capped counts for lists that grow without bound.

Django's Paginator counts every match (`SELECT count(*)`) and reads page N with `OFFSET (N-1)*size`: both cost
O(rows before the page), so a queue or a search over a million tickets gets slower the more history there is.
A keyset page instead remembers where the last page ended: the values of the ordering's columns in its last
row (its first row, going back), and asks for the rows strictly after them, `LIMIT size + 1`. With an index
in the list's order that is an index range scan of one page, page 1 or page 10,000.

`keyset_page(queryset, per_page=, cursor=)` takes a queryset ordered by any columns; `id` is the last one (added
when missing): the tiebreak that makes "after this row" exact, so no row is shown twice or skipped when rows are
added between two pages. Each direction and NULLS FIRST/LAST of the ordering is honoured (a NULL sorts where the
ORDER BY puts it, on PostgreSQL and SQLite alike). The cursor is an opaque URL-safe token signed with the
SECRET_KEY (django.core.signing) under a salt naming the model and its ordering: an edited cursor, or one made
by another sort of the list, is refused with ValueError naming the `cursor` parameter (never a 500), and each
value is still converted by its column's field (to_python) before it reaches SQL.

`count_capped(queryset, cap)` counts at most `cap + 1` rows (`SELECT count(*) FROM (... LIMIT cap + 1)`), so
a count costs O(cap), never O(matches): pages show "1,000+" past the cap (LIST_COUNT_CAP).
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.utils.dateparse import parse_date, parse_datetime

CURSOR_PARAM = "cursor"


def cap_default() -> int:
    return getattr(settings, "LIST_COUNT_CAP", 1000)


@dataclass(frozen=True)
class CappedCount:
    """A count that stops at `cap`: `value` is exact when not `capped`, else the cap itself."""

    value: int
    capped: bool

    @property
    def label(self) -> str:
        return f"{self.value:,}+" if self.capped else f"{self.value:,}"

    def __str__(self) -> str:
        return self.label

    def __int__(self) -> int:
        return self.value


def count_capped(queryset: QuerySet, cap: int | None = None) -> CappedCount:
    """How many rows, up to `cap` (LIST_COUNT_CAP by default): one query reading at most cap + 1 rows."""
    cap = cap_default() if cap is None else cap
    found = queryset.order_by().values("pk")[: cap + 1].count()
    return CappedCount(min(found, cap), found > cap)


@dataclass
class KeysetPage:
    """One page of a keyset-paginated list, shaped for templates: `object_list`, `has_next`, `has_previous`,
    `next_cursor`, `previous_cursor` (None when there is no such page), `count` (a CappedCount or None).
    `emptied`: a cursor was followed and no row is left there (a bulk action closed them): the page has a
    previous one, the first (previous_cursor None), so the list offers a way back."""

    object_list: list
    per_page: int
    has_next: bool
    has_previous: bool
    next_cursor: str | None
    previous_cursor: str | None
    count: CappedCount | None = None
    first: bool = True
    emptied: bool = False
    extra: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


@dataclass(frozen=True)
class _Term:
    name: str  # the annotation alias the values are read from and compared with
    descending: bool
    nulls_last: bool
    nullable: bool
    source: str = ""  # the column or annotation ordered by (names the ordering in the cursor's salt)


def _salt(queryset: QuerySet, terms: list[_Term]) -> str:
    """What a cursor is signed for: this model in this order (a cursor of another sort is refused)."""
    order = ",".join(f"{'-' if t.descending else ''}{t.source}{'~' if t.nulls_last else ''}" for t in terms)
    return f"servicedesk.keyset:{queryset.model._meta.label_lower}:{order}"


def _encode(values: list, backwards: bool, salt: str) -> str:
    return signing.Signer(salt=salt).sign_object({"v": [_plain(v) for v in values], "b": backwards}, compress=True)


def _plain(value):
    if isinstance(value, datetime | date):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    return value


def _decode(token: str, queryset: QuerySet, terms: list[_Term], salt: str) -> tuple[list, bool]:
    """The values and direction of a cursor signed for this list and order, each converted by its column's
    field. Anything else (edited, truncated, of another sort or list, a value its column cannot hold):
    ValueError naming the `cursor` parameter."""
    try:
        data = signing.Signer(salt=salt).unsign_object(token)
        values, backwards = data["v"], bool(data.get("b"))
        if not isinstance(values, list) or len(values) != len(terms):
            raise ValueError
        out = []
        for term, value in zip(terms, values, strict=True):
            if isinstance(value, dict) and "t" in value:
                parsed = parse_datetime(value["t"]) or parse_date(value["t"])
                if parsed is None:
                    raise ValueError
                value = parsed
            elif isinstance(value, dict) and "d" in value:
                value = Decimal(value["d"])
            elif not (value is None or isinstance(value, str | int | float | bool)):
                raise ValueError
            if value is not None:
                value = queryset.query.annotations[term.name].output_field.to_python(value)
            out.append(value)
        return out, backwards
    except Exception:  # BadSignature, a wrong shape, or a value its field refuses (ValidationError, ...)
        raise ValueError(f"{CURSOR_PARAM}: not a cursor of this list (follow the page's own links)") from None


def field_nullable(model, path: str) -> bool:
    """Whether a field path can be NULL in a row: a nullable column, or one reached through a nullable
    foreign key (a LEFT JOIN)."""
    opts = model._meta
    for part in path.split("__"):
        if part == "pk":
            return False
        try:
            f = opts.get_field(part)
        except Exception:  # an annotation or a lookup: assume it may be NULL
            return True
        if getattr(f, "null", False):
            return True
        if f.is_relation and f.related_model is not None:
            opts = f.related_model._meta
    return False


def _terms(queryset: QuerySet) -> tuple[QuerySet, list[_Term]]:
    """The queryset with each ordering expression annotated as `_ks<i>`, and the ordering as terms."""
    order = list(queryset.query.order_by) or list(queryset.model._meta.ordering)
    if not order:
        raise ValueError("keyset pagination needs an ordered queryset")
    vendor_nulls_last_asc = connection.vendor != "sqlite"  # PostgreSQL: NULL is largest; SQLite: smallest
    annotations, terms = {}, []
    for i, item in enumerate(order):
        if isinstance(item, str):
            desc = item.startswith("-")
            item = OrderBy(F(item.lstrip("-")), descending=desc)
        elif not isinstance(item, OrderBy):
            item = OrderBy(item)
        expression = item.expression
        if not isinstance(expression, F):
            raise ValueError("keyset pagination orders by columns or annotations (F expressions)")
        name = expression.name
        if name in queryset.query.annotations:
            nullable = getattr(queryset.query.annotations[name].output_field, "null", True)
        else:
            nullable = field_nullable(queryset.model, name)
        nulls_last = (item.nulls_last if item.nulls_last or item.nulls_first
                      else vendor_nulls_last_asc != item.descending)
        alias = f"_ks{i}"
        annotations[alias] = F(name)
        terms.append(_Term(alias, item.descending, bool(nulls_last), nullable, name))
    last = order[-1].lstrip("-") if isinstance(order[-1], str) else getattr(order[-1].expression, "name", "")
    if last not in ("id", "pk"):
        # The tiebreak that makes "after this row" exact: id, in the direction of the last column.
        alias = f"_ks{len(terms)}"
        annotations[alias] = F("id")
        terms.append(_Term(alias, terms[-1].descending, True, False, "id"))
        queryset = queryset.order_by(*order, F("id").desc() if terms[-1].descending else F("id").asc())
    return queryset.annotate(**annotations), terms


def _after(term: _Term, value, reverse: bool) -> Q | None:
    """Rows strictly after `value` in this term's order (its reverse going back). None: no row can be."""
    desc = term.descending != reverse
    nulls_last = term.nulls_last != reverse
    if value is None:
        return Q(**{f"{term.name}__isnull": False}) if not nulls_last else None
    q = Q(**{f"{term.name}__{'lt' if desc else 'gt'}": value})
    if term.nullable and nulls_last:
        q |= Q(**{f"{term.name}__isnull": True})
    return q


def _equal(term: _Term, value) -> Q:
    return Q(**{f"{term.name}__isnull": True}) if value is None else Q(**{term.name: value})


def _beyond(terms: list[_Term], values: list, reverse: bool) -> Q:
    """Rows after the row whose ordering values are `values`: (a > va) OR (a = va AND b > vb) OR ...
    The first column also gets the redundant bound a >= va, which an index range scan can start from."""
    either = Q(pk__in=[])
    for i, term in enumerate(terms):
        strictly = _after(term, values[i], reverse)
        if strictly is None:
            continue
        same = Q()
        for prior, value in zip(terms[:i], values[:i], strict=True):
            same &= _equal(prior, value)
        either |= same & strictly
    first, v0 = terms[0], values[0]
    if v0 is not None and not (first.nullable and first.nulls_last != reverse):
        desc = first.descending != reverse
        either &= Q(**{f"{first.name}__{'lte' if desc else 'gte'}": v0})
    return either


def _reversed(term: _Term) -> OrderBy:
    desc = not term.descending
    nulls_last = not term.nulls_last
    nulls = {"nulls_last": True} if nulls_last else {"nulls_first": True}
    return F(term.name).desc(**nulls) if desc else F(term.name).asc(**nulls)


def keyset_page(queryset: QuerySet, *, per_page: int, cursor: str | None = None,
                count_cap: int | None = None, with_count: bool = True) -> KeysetPage:
    """One page of `queryset` (ordered, id last) after/before `cursor`. Two queries at most: the page
    (per_page + 1 rows, the extra one only says whether there is more) and, `with_count`, a capped count."""
    queryset, terms = _terms(queryset)
    salt = _salt(queryset, terms)
    whole = queryset
    backwards = False
    if cursor:
        values, backwards = _decode(cursor, queryset, terms, salt)
        queryset = queryset.filter(_beyond(terms, values, reverse=backwards))
        if backwards:
            queryset = queryset.order_by(*[_reversed(t) for t in terms])
    rows = list(queryset[: per_page + 1])
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
    if backwards:
        has_next, has_previous = True, more
    else:
        has_next, has_previous = more, bool(cursor)

    def token(row, back):
        return _encode([getattr(row, t.name) for t in terms], back, salt)

    count = None
    if with_count:
        count = count_capped(whole, count_cap)
    emptied = bool(cursor) and not rows  # the rows this link pointed at are gone: the way back is the first page
    return KeysetPage(
        object_list=rows,
        per_page=per_page,
        has_next=has_next and bool(rows),
        has_previous=(has_previous and bool(rows)) or emptied,
        next_cursor=token(rows[-1], False) if has_next and rows else None,
        previous_cursor=token(rows[0], True) if has_previous and rows else None,
        count=count,
        first=not has_previous and not emptied,
        emptied=emptied,
    )

