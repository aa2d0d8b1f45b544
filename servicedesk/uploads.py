"""Uploads: what a file really is (judged from its bytes), and how large a request may be before Django reads it.

A file's name and the browser's declared type are what the sender chose; only the content says what it is.
Binary formats carry a signature that the `filetype` package recognises (PNG, PDF, zip, Office, an .exe...).
Text formats (plain text, CSV, JSON, e-mail) have none: a file counts as text only if all of it decodes as
UTF-8 and contains no NUL byte, and only then does the name's extension choose which text type it is.
"""

import codecs
from pathlib import PurePath

import filetype
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.defaultfilters import filesizeformat

# Enough for every signature filetype knows (it reads at most this many bytes itself).
SIGNATURE_BYTES = 8192
CHUNK = 64 * 1024
UNKNOWN_BINARY = "application/octet-stream"
# Which text type a text file is, by its extension; any other text is text/plain.
TEXT_TYPES = {".csv": "text/csv", ".json": "application/json", ".eml": "message/rfc822"}


def is_utf8_text(upload) -> bool:
    """True when every byte of the file decodes as UTF-8 and none is NUL (binary files almost always have one)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    upload.seek(0)
    try:
        for chunk in iter(lambda: upload.read(CHUNK), b""):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        upload.seek(0)
    return True


def sniff_content_type(upload, filename: str) -> str:
    """The content type of an uploaded file, judged from its content (never from its name or declared type)."""
    upload.seek(0)
    head = upload.read(SIGNATURE_BYTES)
    upload.seek(0)
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    if is_utf8_text(upload):
        return TEXT_TYPES.get(PurePath(filename).suffix.lower(), "text/plain")
    return UNKNOWN_BINARY


def request_max_bytes() -> int:
    """The largest request body accepted: one attachment at the limit plus room for the form around it."""
    return settings.ATTACHMENT_MAX_BYTES + settings.REQUEST_BODY_MARGIN_BYTES


class RequestSizeLimitMiddleware:
    """Refuse a request whose declared body is larger than any upload may be, with 413 and a message saying
    the limit, before anything reads the body (no temporary file is written, no form is parsed)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = request_max_bytes()
        if length > limit:
            return self.too_large(request, length, limit)
        return self.get_response(request)

    @staticmethod
    def too_large(request, length: int, limit: int):
        message = (
            f"The request is {filesizeformat(length)}, larger than the limit of {filesizeformat(limit)}: "
            f"attachments may be up to {filesizeformat(settings.ATTACHMENT_MAX_BYTES)} each. Nothing was saved."
        )
        if request.path.startswith("/api/") or "json" in request.META.get("HTTP_ACCEPT", ""):
            return JsonResponse({"detail": message}, status=413, json_dumps_params={"ensure_ascii": False})
        return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
