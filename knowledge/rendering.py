"""Markdown to safe HTML, once per saved version of an article.

markdown-it-py (CommonMark plus tables and strikethrough) renders the body; raw HTML in the Markdown is let
through to nh3, which keeps only the tags below. nh3 drops every other tag (a <script> with its content),
every attribute not listed (so every on* event handler and every style attribute, which the site's
Content-Security-Policy would refuse anyway) and every URL whose scheme is not http, https or mailto
(javascript:, data:, vbscript:). Links get rel="noopener noreferrer".

Images: only from this site. An <img> keeps its src when it is a path on this origin ("/static/...",
"/media/..."); any absolute URL (https://..., //host/...) or data: URI is dropped, so an article cannot make
a reader's browser call another host (a tracking pixel) and the CSP's img-src 'self' is never violated.
"""

import nh3
from markdown_it import MarkdownIt

TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote",
    "ul", "ol", "li", "dl", "dt", "dd",
    "strong", "em", "b", "i", "s", "del", "ins", "sub", "sup", "kbd", "mark", "small", "abbr",
    "code", "pre", "table", "thead", "tbody", "tr", "th", "td", "caption",
    "a", "img", "details", "summary",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "ol": {"start"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def _same_origin_path(value: str) -> bool:
    return value.startswith("/") and not value.startswith("//") and "\\" not in value


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not _same_origin_path(value.strip()):
        return None
    return value


_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_cleaner = nh3.Cleaner(
    tags=TAGS, clean_content_tags={"script", "style"}, attributes=ATTRIBUTES, attribute_filter=_filter,
    url_schemes=URL_SCHEMES, link_rel="noopener noreferrer", strip_comments=True,
)


def sanitise(html: str) -> str:
    return _cleaner.clean(html)


def render_markdown(text: str) -> str:
    """The article body as HTML that is safe to insert into a page unescaped."""
    return sanitise(_markdown.render(text or ""))
