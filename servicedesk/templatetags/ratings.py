"""{% rating_box ticket %}: the satisfaction rating form (or the rating given) on a portal ticket page, the
same for every ticket type. Shown to the requester once the ticket's model says it is `rateable()`."""

from datetime import timedelta

from django import template
from django.conf import settings
from django.utils import timezone

from servicedesk.selectors import rating_of

register = template.Library()

SCORES = [(5, "Excellent"), (4, "Good"), (3, "OK"), (2, "Poor"), (1, "Very poor")]


@register.inclusion_tag("servicedesk/_rating.html", takes_context=True)
def rating_box(context, ticket):
    request = context["request"]
    rateable = getattr(ticket, "rateable", None)
    shown = (request.user.is_authenticated and ticket.requester_id == request.user.id
             and rateable is not None and rateable())
    rating = rating_of(ticket) if shown else None
    changeable = rating is None or timezone.now() - rating.created_at <= timedelta(days=settings.RATING_CHANGE_DAYS)
    return {"shown": shown, "ticket": ticket, "rating": rating, "changeable": changeable, "scores": SCORES,
            "next": request.path, "csrf_token": context.get("csrf_token")}
