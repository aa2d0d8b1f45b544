"""The SLA cell of the workspace's ticket tables (incidents and requests), drawn in Python for the same reason
as servicedesk/templatetags/rows.py: it is on every row of every queue page."""

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

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


def _short(moment) -> str:
    return date_format(moment, "j M, H:i")


@register.simple_tag
def sla_segments(c):
    """The running and paused stretches of one clock on a ticket page's SLA panel (sla.display.ClockView): a clock
    that was paused and resumed many times has dozens, each with two times to format."""
    drawn = []
    for s in c.segments:
        start = timezone.localtime(s.start)
        if s.end:
            end = timezone.localtime(s.end)
            until = format_html('<time datetime="{}">{}</time>', end.isoformat(),
                                date_format(end, "H:i") if end.date() == start.date() else _short(end))
        else:
            until = "stop" if c.clock.stopped_at else "now"
        reason = (format_html('<div class="seg-reason" title="{}">{}</div>', s.reason, Truncator(s.reason).chars(120))
                  if s.reason else "")
        ended = (format_html('<div class="seg-reason" title="{}">Stopped: {}</div>', s.ended_by,
                             Truncator(s.ended_by).chars(120)) if s.ended_by else "")
        drawn.append(format_html(
            '<li class="seg seg-{}{}" data-testid="sla-segment" data-state="{}">'
            '<div class="seg-line"><span class="seg-state">{}</span><span class="seg-secs">{}</span></div>'
            '<div class="seg-time"><time datetime="{}">{}</time> → {}</div>{}{}</li>',
            s.state, " is-current" if s.current else "", s.state, "Paused" if s.state == "paused" else "Running",
            s.words, start.isoformat(), _short(start), until, reason, ended))
    return mark_safe("\n".join(drawn))
