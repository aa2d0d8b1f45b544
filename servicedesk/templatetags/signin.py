from django import template
from django.conf import settings

from servicedesk.oidc import start_url

register = template.Library()


@register.inclusion_tag("includes/oidc_button.html")
def oidc_button(next_url=""):
    """The "Sign in with <provider>" button of the login page, when OpenID Connect is switched on."""
    enabled = settings.OIDC_ENABLED
    return {"enabled": enabled, "label": settings.OIDC_BUTTON_LABEL, "url": start_url(next_url) if enabled else ""}
