"""Template filters for showing people."""

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def email_wrap(address: str) -> str:
    """An email address that may wrap after its "@" and before each ".", rather than inside a word: a long
    address in a narrow column breaks as `maximiliana.von-hohenzollern@` / `procurement.example.com`."""
    if not address:
        return ""
    # Escaped first; the escaped text holds no "@" or "." of its own, so only the address's are marked.
    return mark_safe(escape(address).replace("@", "@<wbr>").replace(".", "<wbr>."))
