"""The original of an inbound mail, for agents (/agent/mail/<id>/): its headers, what processing made of it
(state, reason, the ticket), the text, the attachments, and the HTML as the sender wrote it.

The HTML is untrusted even after nh3: it is shown in an <iframe sandbox> whose own response
(/agent/mail/<id>/html/) carries "Content-Security-Policy: sandbox; default-src 'none'; img-src 'self'", so
nothing in it runs, loads from elsewhere (no tracking pixels) or reaches this origin's cookies or DOM. Its inline
images (cid: links) become /agent/mail/<id>/part/<n>/ URLs, which serve image parts only, checked by their
bytes, never as HTML or SVG.

The sandboxed document has an opaque origin, so the browser counts its image requests as cross-site and sends
no (SameSite=Lax) session cookie with them. The frame's image URLs therefore carry a signed token instead
(?t=..., for that mail's part only, valid PART_LINK_MAX_AGE), minted by the frame's response, which only staff
get; without a valid token a part needs a staff session like the rest of the page.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import filetype
from django.core import signing
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from email_channel.models import InboundMessage
from email_channel.parsing import mail_parse
from email_channel.processing import inbound_erased
from servicedesk.registry import registry
from servicedesk.workspace import agent_render, agent_required

SHOWN_HEADERS = ("From", "To", "Cc", "Date", "Subject", "Message-ID")
FRAME_CSP = "sandbox; default-src 'none'; img-src 'self'"
# Raster images only: an SVG is a document that can carry script.
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}
PART_LINK_SALT = "email_channel.mail_part"
PART_LINK_MAX_AGE = 3600  # seconds: the frame's image links work for an hour after the page was opened
CID_SRC = re.compile(r"""src=(["'])cid:([^"']*)\1""", re.IGNORECASE)


def _message(mail_id: int) -> tuple[InboundMessage, object]:
    """The row and its parsed mail; 404 for a mail erased with its ticket (nothing of it is left to show)."""
    message = get_object_or_404(InboundMessage.objects.select_related("mailbox"), pk=mail_id)
    if inbound_erased(message):
        raise Http404("This mail was erased with its ticket.")
    if message.raw_purged_at:
        raise Http404("This mail's raw content was removed by retention (RETENTION_MAIL_RAW_DAYS).")
    return message, mail_parse(bytes(message.raw))


def _header_rows(parsed) -> list[tuple[str, str]]:
    headers = {k.lower(): v for k, v in (parsed.headers or {}).items()}
    fallback = {"from": f"{parsed.from_name} <{parsed.from_address}>" if parsed.from_name else parsed.from_address,
                "to": ", ".join(parsed.to), "cc": ", ".join(parsed.cc), "subject": parsed.subject,
                "message-id": f"<{parsed.message_id}>" if parsed.message_id else "",
                "date": parsed.date.isoformat() if parsed.date else ""}
    rows = []
    for name in SHOWN_HEADERS:
        value = headers.get(name.lower()) or fallback.get(name.lower(), "")
        if value:
            rows.append((name, value))
    return rows


def _ticket(request, message: InboundMessage):
    """The ticket the mail created or replied to, as a TicketBrief, if this agent may open it."""
    kind = registry.kinds.get(message.ticket_kind) if message.ticket_number else None
    if kind is None:
        return None
    ticket = kind.find(request.user, message.ticket_number)
    return kind.brief(ticket) if ticket is not None else None


def _image_type(part) -> str:
    """The part's image type by its bytes ("" when it is not one of IMAGE_TYPES, whatever it claims)."""
    guess = filetype.guess(part.payload)
    mime = guess.mime if guess is not None else ""
    return mime if mime in IMAGE_TYPES else ""


@require_GET
@agent_required
def mail_original(request, mail_id: int):
    erased = get_object_or_404(InboundMessage.objects.select_related("mailbox"), pk=mail_id)
    if inbound_erased(erased):  # a tombstone: only what processing made of it, and that it was erased
        return agent_render(request, "email_channel/mail_erased.html", {"message": erased})
    message, parsed = _message(mail_id)
    parts = [{"n": n, "name": part.filename or "(no name)", "type": part.content_type, "size": len(part.payload),
              "inline": part.inline,
              "url": reverse("agent:mail_part", kwargs={"mail_id": message.id, "n": n}) if _image_type(part) else ""}
             for n, part in enumerate(parsed.parts)]
    return agent_render(request, "email_channel/mail_original.html", {
        "message": message, "parsed": parsed, "headers": _header_rows(parsed), "ticket": _ticket(request, message),
        "parts": parts, "auto": parsed.auto,
    })


@require_GET
@agent_required
@xframe_options_sameorigin
def mail_html(request, mail_id: int):
    """The sanitised HTML as its own document, for the sandboxed frame of the page above."""
    message, parsed = _message(mail_id)
    if not parsed.html:
        raise Http404("This mail has no HTML part.")
    by_cid = {part.content_id.strip("<>").lower(): n for n, part in enumerate(parsed.parts) if part.content_id}

    def image_url(match) -> str:
        n = by_cid.get(unquote(match.group(2)).strip("<>").lower())
        if n is None:
            return 'src=""'
        url = reverse("agent:mail_part", kwargs={"mail_id": message.id, "n": n})
        token = signing.dumps([message.id, n], salt=PART_LINK_SALT, compress=True)
        return f'src="{url}?t={token}"'

    body = CID_SRC.sub(image_url, parsed.html)
    title = escape(parsed.subject)
    document = f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head><body>{body}</body></html>'
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = FRAME_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _token_allows(token: str, mail_id: int, n: int) -> bool:
    try:
        return signing.loads(token, salt=PART_LINK_SALT, max_age=PART_LINK_MAX_AGE) == [mail_id, n]
    except signing.BadSignature:  # also SignatureExpired
        return False


def _part_response(mail_id: int, n: int) -> HttpResponse:
    _message_row, parsed = _message(mail_id)
    if n >= len(parsed.parts):
        raise Http404("No such part.")
    part = parsed.parts[n]
    mime = _image_type(part)
    if not mime:
        raise Http404("Only image parts are shown.")
    response = HttpResponse(part.payload, content_type=mime)
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@agent_required
def _part_for_staff(request, mail_id: int, n: int):
    return _part_response(mail_id, n)


@require_GET
def mail_part(request, mail_id: int, n: int):
    """One image part of the mail (inline image or attached picture); anything else is 404. For the sandboxed
    frame's images by the token in its URL, otherwise for staff (see the module docstring)."""
    if _token_allows(request.GET.get("t", ""), mail_id, n):
        return _part_response(mail_id, n)
    return _part_for_staff(request, mail_id, n)
