"""Aggregates the reports of several apps share (SLA compliance, service insights).

PostgreSQL's continuous percentile as an ORM aggregate, and the same interpolation in Python for SQLite (the
local run), which has no percentile_cont: both give the same value for the same rows."""

from django.db.models import Aggregate, FloatField


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile: PERCENTILE_CONT(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        # A float written into the SQL: float() makes it a number whatever was passed.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def percentile_cont(ordered: list[float], fraction: float) -> float | None:
    """What PostgreSQL's percentile_cont gives for sorted values: linear interpolation between the two values
    around position fraction * (n - 1)."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)
