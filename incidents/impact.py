"""Who decides how bad an incident is: the one rule for the portal, the API and every other way in.

A requester states the urgency (how badly it stops them). The impact (how widely it hurts the business) is
the desk's judgement: for a requester's incident it comes from the service (`Service.default_impact`, set by
admins), else the lowest. Agents, and the system itself (monitoring, imports), set both. A requester who
sends an impact is refused, naming the field; it is never silently applied nor silently dropped.
"""

from servicedesk.errors import InvalidInput
from servicedesk.roles import is_staff_role

DEFAULT_IMPACT = 3


def may_set_impact(creator) -> bool:
    """Agents, managers and admins may; so may the system (no creator). Requesters may not."""
    return creator is None or is_staff_role(creator)


def impact_for(*, creator, service=None, impact: int | None = None) -> int:
    """The impact of a new incident raised by `creator`, who sent `impact` (None: did not say)."""
    if impact is not None:
        if not may_set_impact(creator):
            raise InvalidInput(
                "impact: requesters say how urgent it is for them (urgency); the service desk sets the impact",
                field="impact",
            )
        return impact
    if service is not None:
        return service.default_impact
    return DEFAULT_IMPACT
