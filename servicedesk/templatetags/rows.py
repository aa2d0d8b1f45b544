"""Cells of the workspace's ticket tables and its long pick lists, drawn in Python: a queue page has 25 to 100
rows and a desk hundreds of agents, and the same markup as a template loop costs several times more per row
(each `{{ }}`, filter and `{% url %}` is looked up anew)."""

from django import template
from django.template.defaultfilters import linebreaks_filter, urlize
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
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


# --- a ticket's timeline for agents (templates/includes/timeline_entries.html) ---------------------------------

INTERNAL_NOTE = mark_safe('<span class="tag tag-internal" data-testid="internal-badge">'
                          '<svg class="icon icon-sm" aria-hidden="true"><use href="#i-lock"/></svg>Internal note</span>')
INTERNAL = mark_safe('<span class="tag tag-internal"><svg class="icon icon-sm" aria-hidden="true">'
                     '<use href="#i-lock"/></svg>Internal</span>')
DASH = "—"


def _name(user) -> str:
    return user.get_full_name() or user.username


def _by_email(entry) -> str:
    """"by email", linking the original mail's page when the email channel is installed."""
    data = entry.data if isinstance(entry.data, dict) else {}
    if data.get("channel") != "email":
        return ""
    url = ""
    if data.get("mail"):
        try:
            url = reverse("agent:mail_original", args=[data["mail"]])
        except NoReverseMatch:
            url = ""
    words = format_html('<a href="{}">by email</a>', url) if url else "by email"
    return format_html('<span class="tag" data-testid="by-email"><svg class="icon icon-sm" aria-hidden="true">'
                       '<use href="#i-send"/></svg>{}</span>', words)


def _initials(user) -> str:
    first = (user.first_name or user.username)[:1]
    return f"{first}{user.last_name[:1]}"


def _message(entry, requester_id, now) -> str:
    author = entry.author
    note = entry.kind == "note"
    if author is not None:
        avatar = format_html('<span class="avatar{}" aria-hidden="true">{}</span>',
                             " agent" if entry.author_id != requester_id else "", _initials(author))
    else:
        avatar = mark_safe('<span class="avatar system" aria-hidden="true">S</span>')
    said = ("wrote for agents only" if note else "wrote" if entry.author_id == requester_id
            else "replied to the requester")
    body = (format_html('<div class="tl-body prose" data-testid="entry-body">{}</div>',
                        linebreaks_filter(urlize(entry.body, autoescape=True), autoescape=True))
            if entry.body else "")
    return format_html(
        '<li class="tl{}" data-testid="timeline-entry" data-kind="{}" data-internal="{}" id="entry-{}">{}'
        '<article class="tl-card"><header class="tl-head">{}<strong>{}</strong> <span>{}</span> {}{}</header>{}'
        '</article></li>',
        " tl-note" if note else "", entry.kind, "true" if entry.internal else "false", entry.id, avatar,
        INTERNAL_NOTE if note else "", _name(author) if author is not None else "System", said,
        _time(entry.created_at, now, depth=2), _by_email(entry), body)


def _change(entry, noun, now) -> str:
    changes = getattr(entry, "change_list", None) or []
    if changes:
        said = format_html_join(" ", '<span class="change">{} <span class="val old">{}</span> → '
                                     '<span class="val">{}</span></span>',
                                ((label, DASH if old is None else old, DASH if new is None else new)
                                 for label, old, new in changes))
    else:
        said = format_html("<span>{}</span>", entry.body or f"changed the {noun}")
    return format_html(
        '<li class="tl tl-compact{}" data-testid="timeline-entry" data-kind="change" data-internal="{}" id="entry-{}">'
        '<span class="dot" aria-hidden="true"><svg class="icon" aria-hidden="true"><use href="#i-edit"/></svg></span>'
        '<div class="line"><strong>{}</strong> {} {} {}</div></li>',
        " internal" if entry.internal else "", "true" if entry.internal else "false", entry.id,
        _name(entry.author) if entry.author is not None else "System", said, INTERNAL if entry.internal else "",
        _time(entry.created_at, now, depth=2))


def _event(entry, now) -> str:
    data = entry.data if isinstance(entry.data, dict) else {}
    by = format_html("<span>by <strong>{}</strong></span>", _name(entry.author)) if entry.author is not None else ""
    return format_html(
        '<li class="tl tl-compact{}" data-testid="timeline-entry" data-kind="{}" data-internal="{}" id="entry-{}">'
        '<span class="dot" aria-hidden="true"><svg class="icon" aria-hidden="true"><use href="#{}"/></svg></span>'
        '<div class="line"><span>{}</span> {} {} {}{}</div></li>',
        " internal" if entry.internal else "", entry.kind, "true" if entry.internal else "false", entry.id,
        "i-paperclip" if data.get("attachment_id") else "i-info", entry.body, by, INTERNAL if entry.internal else "",
        _time(entry.created_at, now, depth=2), _by_email(entry))


@register.simple_tag
def timeline_entries(timeline, requester_id, noun):
    """A ticket's timeline entries for agents (any ticket type): replies and internal notes (visibly apart),
    changes (each field's old and new value, as the view spelled them in `change_list`) and events, each with
    its time; ~0.2 ms an entry as a template, a timeline holds dozens."""
    now = timezone.now()
    drawn = []
    for entry in timeline:
        if entry.kind in ("comment", "note"):
            drawn.append(_message(entry, requester_id, now))
        elif entry.kind == "change":
            drawn.append(_change(entry, noun, now))
        else:
            drawn.append(_event(entry, now))
    return mark_safe("\n".join(drawn))
