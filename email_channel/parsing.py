"""Raw inbound mail into a ParsedMail: pure code, stdlib `email` (policy.default) and nh3, no ORM, no settings.

Mail in the wild is ugly: headers with raw 8-bit bytes, charsets Python does not know ("x-unknown",
"iso-8859-1" that is really windows-1252), bodies whose declared charset is wrong, encoded words inside
attachment names, HTML-only mail from Outlook, Thunderbird's format=flowed. mail_parse() never raises on
such mail -- every header and every part is read with a fallback -- and raises MailUnreadable only for
bytes that are not a mail at all (no header block), so the caller can mark that message failed and keep it.

What comes out:
- text: the first text/plain body (format=flowed joined), else text made from the sanitised HTML;
- html: the HTML body sanitised by nh3 -- formatting, tables, links (http/https/mailto) and images whose
  src is a cid: reference to an inline part or a data:image URI. Remote images are dropped: they are
  tracking pixels, and the agent page must not make a browser call a sender's host;
- parts: every attachment and inline image, not the body alternatives. A forwarded message/rfc822 part
  is an attachment named by its subject + ".eml";
- auto: why this is machine mail ("auto-reply", "bounce", "bulk", "list"), "" for a person's mail. The
  email channel never opens a ticket or answers such mail, which is what stops mail loops.
Every string that comes out has been through clean_text (no NUL or other C0 control but tab and newline, no
lone surrogate), so whatever of it is stored cannot be refused by the database.

reply_text() cuts the new part off a reply: above our REPLY_MARKER, above "On ... wrote:", Outlook's
"From: / Sent:" block or "-----Original Message-----", a trailing ">" quote, and the "-- " signature.
"""

import codecs
import mimetypes
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser

import nh3

from servicedesk.mailthread import REPLY_MARKER


class MailUnreadable(ValueError):
    """The bytes are not an e-mail message (no header block at all)."""


@dataclass(frozen=True)
class MailPart:
    filename: str
    content_type: str
    payload: bytes
    content_id: str  # without <>, "" if none
    inline: bool


@dataclass(frozen=True)
class ParsedMail:
    message_id: str  # without <>, "" if missing
    in_reply_to: list[str]
    references: list[str]
    from_address: str  # lower-case, "" when the From header names no address
    from_name: str
    to: list[str]  # addresses, lower-case
    cc: list[str]
    reply_to: list[str]
    subject: str  # decoded, unfolded
    date: datetime | None  # aware
    text: str
    html: str
    parts: list[MailPart] = field(default_factory=list)
    auto: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    cc_names: dict[str, str] = field(default_factory=dict)  # Cc address -> its display name ("" when none)


# Headers kept (decoded) for the agent's "original mail" page and for the admin.
DISPLAY_HEADERS = (
    "From", "Sender", "Reply-To", "To", "Cc", "Date", "Subject", "Message-ID", "In-Reply-To", "References",
    "Return-Path", "Auto-Submitted", "Precedence", "List-Id", "X-Auto-Response-Suppress", "X-Mailer",
    "User-Agent",
)
# A mail has at least one of these; bytes without any are not a mail.
_MAIL_HEADERS = {"from", "sender", "to", "cc", "subject", "date", "message-id", "received", "return-path",
                 "mime-version", "content-type", "delivered-to"}


# --- text that may be stored ------------------------------------------------------------------------

# C0 controls but tab and newline (a NUL is refused by PostgreSQL; the others only garble a page), and lone
# surrogates (no UTF-8 for them): a mail can carry any of these in an encoded word or a body.
_UNSTORABLE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` without the characters no database column should get from a stranger's mail: C0 controls
    other than tab and newline (CRLF becomes LF), and lone surrogates."""
    if not value:
        return ""
    return _UNSTORABLE.sub("", value.replace("\r\n", "\n"))


def _cleaned(parsed: "ParsedMail") -> "ParsedMail":
    """Every string of a ParsedMail through clean_text (part payloads stay bytes as they came)."""
    parts = [replace(part, filename=clean_text(part.filename), content_type=clean_text(part.content_type),
                     content_id=clean_text(part.content_id)) for part in parsed.parts]
    return replace(
        parsed,
        message_id=clean_text(parsed.message_id),
        in_reply_to=[clean_text(value) for value in parsed.in_reply_to],
        references=[clean_text(value) for value in parsed.references],
        from_address=clean_text(parsed.from_address), from_name=clean_text(parsed.from_name),
        to=[clean_text(value) for value in parsed.to], cc=[clean_text(value) for value in parsed.cc],
        reply_to=[clean_text(value) for value in parsed.reply_to],
        subject=clean_text(parsed.subject), text=clean_text(parsed.text), html=clean_text(parsed.html),
        parts=parts, headers={name: clean_text(value) for name, value in parsed.headers.items()},
        cc_names={clean_text(address): clean_text(name) for address, name in parsed.cc_names.items()},
    )


# --- headers ------------------------------------------------------------------------------------------

def _unsurrogate(value: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes: read them as UTF-8, else windows-1252."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def _raw_header(msg: Message, name: str) -> str | None:
    """The header as it stands in the mail (first occurrence), unfolded, without any parsing."""
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return _unfold(_unsurrogate(str(value))).strip()
    return None


def _decode_words(value: str) -> str:
    """Encoded words (=?charset?q?...?=) decoded by hand: the fallback when policy.default gave up."""
    try:
        chunks = []
        for data, charset in decode_header(value):
            if isinstance(data, str):
                chunks.append(data)
            else:
                chunks.append(_decode_bytes(data, charset))
        return "".join(chunks)
    except Exception:  # a header we cannot decode is shown as it stands
        try:
            return str(make_header(decode_header(value)))
        except Exception:
            return value


def _header(msg: Message, name: str) -> str:
    """The decoded, unfolded value of a header, "" when missing; never raises."""
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    try:
        value = str(msg[name])
    except Exception:  # policy.default's parser chokes on some broken headers
        value = _decode_words(raw)
    if "\ufffd" in value and "\ufffd" not in raw:  # raw 8-bit bytes in the header: read them ourselves
        value = _decode_words(raw)
    value = _unfold(_unsurrogate(value)).strip()
    if "=?" in value:  # an encoded word the parser left alone (e.g. without the spaces around it)
        value = _decode_words(value).strip()
    return value


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs of an address header; entries without an @ are dropped."""
    pairs: list[tuple[str, str]] = []
    try:
        header = msg[name]
        for address in getattr(header, "addresses", ()) or ():
            pairs.append((_unsurrogate(address.display_name or ""), _unsurrogate(address.addr_spec or "")))
    except Exception:
        pairs = []
    if not pairs:
        value = _header(msg, name)
        if value:
            try:
                pairs = getaddresses([value])
            except Exception:
                pairs = []
    result = []
    for display, address in pairs:
        address = address.strip().strip("<>").strip().lower()
        if "@" in address and " " not in address:
            result.append((display.strip(), address))
    return result


def _message_ids(value: str | None) -> list[str]:
    """Message-IDs of an In-Reply-To / References / Message-ID value, without <>, in order, once each."""
    if not value:
        return []
    ids = re.findall(r"<([^<>\s]+)>", value)
    if not ids:  # some clients leave out the angle brackets
        ids = [token for token in re.split(r"[\s,]+", value) if "@" in token]
    seen: list[str] = []
    for item in ids:
        item = item.strip()
        if item and item not in seen:
            seen.append(item)
    return seen


def _date(msg: Message) -> datetime | None:
    raw = _raw_header(msg, "Date")
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None:
        return None
    if value.tzinfo is None:  # "-0000": UTC, local zone unknown (RFC 5322 3.3)
        value = value.replace(tzinfo=UTC)
    return value


# --- charsets -----------------------------------------------------------------------------------------

# Labels mail clients use for a wider charset than they name (what browsers do too, WHATWG Encoding).
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "l1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252", "windows-1252": "cp1252",
    "iso-8859-9": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949",
    "iso-2022-jp": "iso2022_jp_ext", "shift_jis": "cp932", "x-sjis": "cp932", "shift-jis": "cp932",
    "big5": "big5hkscs", "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7",
}
_UNLABELLED = {"", "unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined", "8bit", "charset"}


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes of a declared charset as text; never raises.

    Declared charset first (strict, then with replacement characters if the bytes are not quite that
    charset); us-ascii/latin-1 labels read as windows-1252, a superset; no label or an unknown one: UTF-8
    if the bytes are valid UTF-8, else latin-1 (every byte is a latin-1 character)."""
    label = (charset or "").strip().strip("\"'").lower()
    if label in _UNLABELLED or label in ("us-ascii", "ascii"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace")
    codec = _CHARSET_ALIASES.get(label, label)
    try:
        codecs.lookup(codec)
    except LookupError:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1", "replace")
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        if codec == "iso2022_jp_ext":
            try:
                return data.decode("iso2022_jp_2")
            except UnicodeDecodeError:
                pass
        return data.decode(codec, "replace")
    except Exception:  # a codec that is not a text codec (e.g. "base64" as a label)
        return data.decode("latin-1", "replace")


def _meta_charset(data: bytes) -> str | None:
    found = re.search(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", data[:4096], re.IGNORECASE)
    return found.group(1).decode("ascii") if found else None


def _part_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: take the text as it stands
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, str):
            return raw.encode("utf-8", "surrogateescape")
        return b""
    return payload


def _part_text(part: Message) -> str:
    data = _part_bytes(part)
    charset = _param(part, "charset")
    if not charset and part.get_content_type() == "text/html":
        charset = _meta_charset(data)
    text = _decode_bytes(data, charset)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_type() == "text/plain" and (_param(part, "format") or "").lower() == "flowed":
        text = _unflow(text, delsp=(_param(part, "delsp") or "").lower() == "yes")
    return text


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        try:
            value = collapse_rfc2231_value(value)
        except Exception:
            value = value[2]
    return _unsurrogate(str(value)) if value is not None else None


def _quoted(depth: int, body: str) -> str:
    return ">" * depth + (" " if depth and body else "") + body


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space goes on with the next line of the same quote depth."""
    out: list[str] = []
    pending: tuple[int, str] | None = None
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):  # space-stuffing
            body = body[1:]
        flowed = body.endswith(" ") and body != "-- "
        if pending is not None and pending[0] == depth:
            pending = (depth, pending[1] + body)
        else:
            if pending is not None:
                out.append(_quoted(*pending))
            pending = (depth, body)
        if flowed:
            if delsp:
                pending = (depth, pending[1][:-1])
            continue
        out.append(_quoted(*pending))
        pending = None
    if pending is not None:
        out.append(_quoted(*pending))
    return "\n".join(out)


# --- HTML ---------------------------------------------------------------------------------------------

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd",
    "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
    "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "ol": {"start", "type"},
    "table": {"border", "cellpadding", "cellspacing", "width", "align"},
    "td": {"colspan", "rowspan", "align", "valign", "width"},
    "th": {"colspan", "rowspan", "align", "valign", "width"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "font": {"color", "size"},
    "*": {"dir", "lang"},
}
URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|jpg|webp|bmp);base64,[A-Za-z0-9+/=\s]*$", re.IGNORECASE)


def _filter(tag: str, attribute: str, value: str) -> str | None:
    value = value.strip()
    if tag == "img" and attribute == "src":
        # cid: names an inline part of this mail; data:image is inside the mail. Anything else (http...)
        # would make the reader's browser call the sender's host: a tracking pixel.
        if value.lower().startswith("cid:") or _DATA_IMAGE.match(value):
            return value
        return None
    if attribute == "href" and not re.match(r"^(https?:|mailto:|#)", value, re.IGNORECASE):
        return None  # cid:/data: are for images only
    return value


_cleaner = nh3.Cleaner(
    tags=TAGS, clean_content_tags={"script", "style", "title", "head", "xml", "o:p"} - TAGS,
    attributes=ATTRIBUTES, attribute_filter=_filter, url_schemes=URL_SCHEMES,
    link_rel="noopener noreferrer", strip_comments=True,
)


def sanitize_html(html: str) -> str:
    """HTML that is safe to show (sandboxed) to an agent: formatting, tables, links, inline images only."""
    if not html:
        return ""
    # Outlook's conditional comments (<!--[if mso]>...<![endif]-->) hide markup meant only for Word.
    html = re.sub(r"<!--\[if[^\]]*\]>.*?<!\[endif\]-->", "", html, flags=re.IGNORECASE | re.DOTALL)
    return _cleaner.clean(html).strip()


_BLOCKS = {"p", "div", "table", "tr", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
           "pre", "center", "caption", "thead", "tbody", "tfoot", "address", "section", "article",
           "header", "footer"}


class _TextMaker(HTMLParser):
    """HTML to readable text: blocks on their own lines, list items with "- ", blockquotes "> "-quoted,
    links as "text <url>" when the text does not already say the url."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line = ""
        self.quote = 0
        self.pre = 0
        self.skip = 0
        self.href: list[str | None] = []
        self.link_start: list[int] = []

    def _newline(self, *, force=False):
        if self.line.strip() or force:
            self.lines.append(("> " * self.quote) + self.line.rstrip())
        self.line = ""

    def _paragraph(self):
        self._newline()
        if self.lines and self.lines[-1].strip(" >"):
            self.lines.append(("> " * self.quote).rstrip())

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag == "br":
            self._newline(force=True)
        elif tag == "blockquote":
            self._paragraph()
            self.quote += 1
        elif tag == "li":
            self._newline()
            self.line = "- "
        elif tag in ("td", "th"):
            if self.line.strip():
                self.line += "  "
        elif tag == "hr":
            self._paragraph()
        elif tag == "pre":
            self._paragraph()
            self.pre += 1
        elif tag in _BLOCKS:
            if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6"):
                self._paragraph()
            else:
                self._newline()
        if tag == "a":
            self.href.append(dict(attrs).get("href"))
            self.link_start.append(len(self.line))

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self._newline()
            while self.lines and self.lines[-1] and not self.lines[-1].strip(" >"):
                self.lines.pop()  # no empty quoted line at the end of the quote
            self.quote = max(0, self.quote - 1)
            self._paragraph()
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self._paragraph()
        elif tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6"):
            self._paragraph()
        elif tag in _BLOCKS or tag == "li":
            self._newline()
        if tag == "a" and self.href:
            href = self.href.pop()
            start = self.link_start.pop()
            label = self.line[start:].strip()
            if href and href.lower().startswith(("http:", "https:")) and href not in label:
                self.line += f" <{href}>"

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            parts = data.split("\n")
            for index, chunk in enumerate(parts):
                if index:
                    self._newline(force=True)
                self.line += chunk
            return
        data = re.sub(r"[ \t\r\n\f\u00a0]+", " ", data)
        if not self.line.strip():
            data = data.lstrip()
        self.line += data

    def text(self) -> str:
        self._newline()
        text = "\n".join(line.rstrip() for line in self.lines)
        text = re.sub(r"\n(?:[ >]*\n){2,}", "\n\n", text)
        return text.strip("\n")


def html_to_text(html: str) -> str:
    """Plain text of an HTML body, for the ticket's comment when a mail has no text/plain part."""
    if not html:
        return ""
    maker = _TextMaker()
    try:
        maker.feed(html)
        maker.close()
    except Exception:  # HTMLParser is lenient; this is only the last guard
        return unescape(re.sub(r"<[^>]+>", " ", html)).strip()
    return maker.text().strip()


# --- structure ----------------------------------------------------------------------------------------

def _safe_filename(name: str) -> str:
    name = _unsurrogate(name)
    if "=?" in name:
        name = _decode_words(name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().strip(".") or ""
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:200]
    return name


def _subject_filename(subject: str) -> str:
    stem = re.sub(r"[\\/:*?\"<>|\x00-\x1f\x7f]+", "_", subject).strip(" ._") or "forwarded message"
    return stem[:150] + ".eml"


class _Walker:
    def __init__(self):
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.parts: list[MailPart] = []

    def walk(self, part: Message, *, alternative: bool = False):
        ctype = part.get_content_type()
        if part.is_multipart() and ctype.startswith("multipart/"):
            children = part.get_payload()
            if not isinstance(children, list):
                return
            if ctype == "multipart/alternative":
                self._alternative(children)
            else:
                for child in children:
                    self.walk(child)
            return
        disposition = self._disposition(part)
        filename = self._filename(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            (self.texts if ctype == "text/plain" else self.htmls).append(_part_text(part))
            return
        self._attach(part, ctype, disposition, filename)

    def _alternative(self, children: list[Message]):
        """One body per format: the first text/plain and the richest HTML (a multipart/related counts)."""
        plain = [c for c in children if c.get_content_type() == "text/plain"]
        rich = [c for c in children if c.get_content_type() == "text/html"
                or c.get_content_type().startswith("multipart/")]
        if plain:
            self.walk(plain[0])
        if rich:
            self.walk(rich[-1])
        for child in children:
            ctype = child.get_content_type()
            if ctype == "text/calendar" or (not ctype.startswith(("text/", "multipart/"))):
                self._attach(child, ctype, self._disposition(child), self._filename(child))

    @staticmethod
    def _disposition(part: Message) -> str | None:
        try:
            return part.get_content_disposition()
        except Exception:
            return None

    @staticmethod
    def _filename(part: Message) -> str:
        try:
            name = part.get_filename() or ""
        except Exception:
            name = _param(part, "name") or ""
        return _safe_filename(name) if name else ""

    def _attach(self, part: Message, ctype: str, disposition: str | None, filename: str):
        content_id = (_header(part, "Content-ID") or "").strip().strip("<>").strip()
        if ctype in ("message/rfc822", "message/global") or (ctype.startswith("message/")
                                                               and isinstance(part.get_payload(), list)):
            payload, subject = self._inner_message(part)
            if ctype in ("message/rfc822", "message/global") and not filename:
                filename = _subject_filename(subject)
        else:
            payload = _part_bytes(part)
        if not filename:
            extension = {"message/delivery-status": ".txt", "text/rfc822-headers": ".txt",
                         "text/plain": ".txt", "image/jpeg": ".jpg"}.get(ctype) \
                or mimetypes.guess_extension(ctype) or ".bin"
            stem = "image" if ctype.startswith("image/") else ctype.split("/")[-1] or "part"
            filename = f"{stem}-{len(self.parts) + 1}{extension}"
        inline = disposition == "inline" or (disposition is None and bool(content_id))
        self.parts.append(MailPart(filename=filename, content_type=ctype, payload=payload,
                                   content_id=content_id, inline=inline))

    @staticmethod
    def _inner_message(part: Message) -> tuple[bytes, str]:
        inner = part.get_payload()
        messages = inner if isinstance(inner, list) else [inner]
        chunks = []
        subject = ""
        for index, message in enumerate(messages):
            if not isinstance(message, Message):
                chunks.append(str(message).encode("utf-8", "surrogateescape"))
                continue
            if index == 0:
                subject = _header(message, "Subject")
            try:
                chunks.append(message.as_bytes(policy=policy.compat32))
            except Exception:
                chunks.append(message.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape"))
        return b"\n".join(chunks), subject


# --- machine mail -------------------------------------------------------------------------------------

_OOF_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|autoreply|out of (the )?office|abwesenheitsnotiz|"
    r"automatische antwort|r[ée]ponse automatique|absence|respuesta autom[áa]tica|risposta automatica|"
    r"automatisch antwoord|autosvar|vacation|on vacation|away from)\b", re.IGNORECASE)


def _auto(msg: Message, *, from_address: str, subject: str) -> str:
    """Why this mail is machine mail, "" if a person wrote it. Order: the surest sign first."""
    if msg.get_content_type() == "multipart/report":
        report = (_param(msg, "report-type") or "").lower()
        if report == "delivery-status":
            return "bounce"
        if report == "disposition-notification":  # a read receipt
            return "auto-reply"
    local = from_address.split("@", 1)[0]
    raw_from = _header(msg, "From").lower()
    if local in ("mailer-daemon", "postmaster") or "mailer-daemon" in raw_from:
        return "bounce"
    auto_submitted = _header(msg, "Auto-Submitted").split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto-reply"
    if any(_raw_header(msg, name) is not None
           for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autogenerated")):
        return "auto-reply"
    precedence = _header(msg, "Precedence").strip().lower()
    return_path = _raw_header(msg, "Return-Path")
    empty_return_path = return_path is not None and return_path.replace(" ", "") in ("<>", "")
    # Exchange sets X-Auto-Response-Suppress on ordinary mail from Outlook too: alone it says nothing.
    suppress = _header(msg, "X-Auto-Response-Suppress").lower()
    suppress_says_auto = bool(re.search(r"\b(all|oof|autoreply)\b", suppress))
    oof_subject = bool(_OOF_SUBJECT.match(subject))
    if suppress_says_auto and (oof_subject or empty_return_path or precedence in ("bulk", "junk", "auto_reply")):
        return "auto-reply"
    if oof_subject and (empty_return_path or precedence in ("bulk", "junk", "auto_reply")):
        return "auto-reply"
    if empty_return_path:
        return "bounce"
    if precedence == "auto_reply":
        return "auto-reply"
    if precedence in ("bulk", "junk"):
        return "bulk"
    if precedence == "list" or _raw_header(msg, "List-Id") is not None \
            or _raw_header(msg, "List-Unsubscribe") is not None:
        return "list"
    return ""


# --- the entry point ----------------------------------------------------------------------------------

def mail_parse(raw: bytes) -> ParsedMail:
    """Parse one raw message; never raises on ugly mail, MailUnreadable when the bytes are not a mail."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if not raw or not raw.strip():
        raise MailUnreadable("empty message")
    try:
        msg = message_from_bytes(raw, policy=policy.default)
    except Exception as exc:  # the feed parser is lenient; this is for the truly broken
        raise MailUnreadable(f"not a mail message: {exc}") from exc
    if not any(key.lower() in _MAIL_HEADERS for key in msg.keys()):
        raise MailUnreadable("not a mail message: no mail header")

    senders = _addresses(msg, "From") or _addresses(msg, "Sender")
    from_name, from_address = senders[0] if senders else ("", "")
    if not from_name and not from_address:
        from_name = _header(msg, "From")
    subject = _header(msg, "Subject")
    walker = _Walker()
    try:
        walker.walk(msg)
    except Exception:  # a structure we cannot walk: keep what the top level says as text
        if not walker.texts and not walker.htmls:
            walker.texts.append(_decode_bytes(_part_bytes(msg) if not msg.is_multipart() else b"", None))
    html = sanitize_html("\n".join(walker.htmls)) if walker.htmls else ""
    text = "\n\n".join(t.strip("\n") for t in walker.texts if t.strip())
    if not text:  # no text/plain part, or an empty one beside the HTML
        text = html_to_text(html)
    text = "\n".join(line if line == "-- " else line.rstrip() for line in text.split("\n")).strip("\n")

    headers = {}
    for name in DISPLAY_HEADERS:
        value = _header(msg, name)
        if value:
            headers[name] = value
    message_ids = _message_ids(_raw_header(msg, "Message-ID"))
    copied = _addresses(msg, "Cc")
    return _cleaned(ParsedMail(
        message_id=message_ids[0] if message_ids else "",
        in_reply_to=_message_ids(_raw_header(msg, "In-Reply-To")),
        references=_message_ids(_raw_header(msg, "References")),
        from_address=from_address,
        from_name=from_name,
        to=[address for _, address in _addresses(msg, "To")],
        cc=[address for _, address in copied],
        cc_names={address: name for name, address in copied},
        reply_to=[address for _, address in _addresses(msg, "Reply-To")],
        subject=subject,
        date=_date(msg),
        text=text,
        html=html,
        parts=walker.parts,
        auto=_auto(msg, from_address=from_address, subject=subject),
        headers=headers,
    ))


# --- replies ------------------------------------------------------------------------------------------

_WROTE = re.compile(
    r"^[ \t]*(On|Am|Le|El|Op|Il|Em|Den|W dniu)\b[^\n]{0,300}?(\n[^\n]{0,200}?){0,2}"
    r"(wrote|schrieb|a écrit|escribió|schreef|ha scritto|escreveu|skrev|napisał)[^\n]{0,40}:[ \t]*$",
    re.MULTILINE,
)
_ORIGINAL = re.compile(
    r"^[ \t>]*-{3,}[ \t]*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|"
    r"Oorspronkelijk bericht|Messaggio originale)[ \t]*-{3,}[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
# Outlook: "From: Jane <jane@...>" then "Sent:"/"Date:" on one of the next lines (bold in HTML: "*From:*").
_OUTLOOK = re.compile(
    r"^[ \t]*(_{10,}[ \t]*\n(?:[ \t]*\n)*)?[ \t]*\*?(From|Von|De|Van|Da)[ \t]*:\*?[ \t]*[^\n]*\n"
    r"(?:[^\n]*\n)?[ \t]*\*?(Sent|Date|Gesendet|Datum|Envoyé|Enviado|Verzonden|Inviato)[ \t]*:",
    re.MULTILINE,
)
_FORWARD = re.compile(
    r"^[ \t]*(-{5,}[ \t]*(Forwarded message|Forwarded Message|Weitergeleitete Nachricht|"
    r"Message transféré|Mensaje reenviado)[ \t]*-{5,}|Begin forwarded message:)",
    re.MULTILINE | re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)


def _trailing_quote(text: str) -> int | None:
    """Where the last run of ">"-quoted lines starts, if nothing but blank lines follows it."""
    lines = text.split("\n")
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    if not end or not lines[end - 1].lstrip().startswith(">"):
        return None
    start = end
    while start and (lines[start - 1].lstrip().startswith(">") or not lines[start - 1].strip()):
        start -= 1
    while start < end and not lines[start].strip():
        start += 1
    return sum(len(line) + 1 for line in lines[:start])


def reply_text(text: str) -> str:
    """The new part of a reply, without the quoted history and the signature.

    Cut at the earliest of: our REPLY_MARKER (a quoted copy of our own mail), an "On <date>, <name> wrote:"
    attribution (Gmail, Apple Mail, Thunderbird; a few other languages), "-----Original Message-----",
    Outlook's "From: ... / Sent: ..." header block, a ">"-quoted block that runs to the end, the "-- "
    signature separator. A forwarded mail ("---------- Forwarded message ---------", "Begin forwarded
    message:") found before any cut is kept whole: the forwarded text is the point of the mail. When the
    cut would leave nothing, the text is kept whole rather than post an empty comment."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    cuts = []
    marker = text.find(REPLY_MARKER)
    if marker >= 0:
        cuts.append(text.rfind("\n", 0, marker) + 1)
    for pattern in (_WROTE, _ORIGINAL, _OUTLOOK, _SIGNATURE):
        found = pattern.search(text)
        if found:
            cuts.append(found.start())
    quote = _trailing_quote(text)
    if quote is not None:
        cuts.append(quote)
    if not cuts:
        return text.strip()
    cut = min(cuts)
    forward = _FORWARD.search(text)
    if forward and forward.start() <= cut:
        return text.strip()
    new = text[:cut].rstrip()
    return new.strip() if new.strip() else text.strip()
