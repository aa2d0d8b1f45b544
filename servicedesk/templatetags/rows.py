"""Cells of the workspace's ticket tables and its long pick lists, drawn in Python: a queue page has 25 to 100
rows and a desk hundreds of agents, and the same markup as a template loop costs several times more per row
(each `{{ }}`, filter and `{% url %}` is looked up anew)."""

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

register = template.Library()


def _time(value, now, depth: int):
    """`<time>` of a moment: "just now" under a minute, else "3 days, 4 hours ago" to `depth` units; the full
    date in its title."""
    words = "just now" if (now - value).total_seconds() < 60 else f"{timesince(value, now, depth=depth)} ago"
    local = timezone.localtime(value)
    return format_html('<time datetime="{}" title="{}">{}</time>', local.isoformat(),
                       date_format(local, "j M Y, H:i"), words)


@register.simple_tag(takes_context=True)
def updated_cell(context, value):
    """A row's last change: one unit, "3 days ago" (the column stays narrow). One `now` per page."""
    now = context.get("_rows_now")
    if now is None:
        now = context["_rows_now"] = timezone.now()
    return _time(value, now, depth=1)


@register.simple_tag
def ago_time(value):
    """A moment in two units, "3 days, 4 hours ago" (what includes/ago.html drew), for the places that draw
    many (timelines)."""
    return "" if value is None else _time(value, timezone.now(), depth=2)


@register.simple_tag
def options(choices, selected=None):
    """`<option>`s of (value, label) pairs; the one whose value equals `selected` (compared as text) is
    selected."""
    chosen = "" if selected is None else str(selected)
    return format_html_join("", "<option value=\"{}\"{}>{}</option>", (
        (value, " selected" if chosen and str(value) == chosen else "", label) for value, label in choices))
