"""The SLA cell of the workspace's ticket tables (incidents and requests), drawn in Python for the same reason
as servicedesk/templatetags/rows.py: it is on every row of every queue page."""

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

ICONS = {"met": "i-check", "cancelled": "i-x"}


@register.simple_tag
def sla_due(c):
    """The most urgent SLA clock of a row (sla.display.ClockView), or "No SLA"."""
    if c is None:
        return mark_safe('<span class="none">No SLA</span>')  # noqa: S308 - a constant
    icon = "i-pause" if c.state == "paused" else ICONS.get(c.tone, "i-clock")
    tone = c.tone
    if c.due_at:
        due = timezone.localtime(c.due_at)
        title = f"{c.label} due {date_format(due, 'l j F Y, H:i')}"
        words = format_html('<time datetime="{}">{}</time>', due.isoformat(), c.words)
    else:
        title = f"{c.label} {c.words_left}"
        words = c.words
    return format_html('<span class="sla-due sla-{}" data-testid="sla-due" data-tone="{}" title="{}">'
                       '<svg class="icon icon-sm" aria-hidden="true"><use href="#{}"/></svg>{}</span>',
                       tone, tone, title, icon, words)
