"""Builders for approval tests: items with an approval policy, people with managers, submitted requests."""

from django.contrib.auth.models import Group

from requests_app.models import Approval, ApprovalLevel, ServiceRequest
from requests_app.services import request_submit
from servicedesk.models import Profile, TimelineEntry
from tests.requests_app.factories import item

LICENCE_FIELDS = [
    {"name": "product", "label": "Product", "type": "choice", "required": True, "choices": "Visio\nTableau"},
    {"name": "why", "label": "Why do you need it?", "type": "long_text", "required": True},
]


def licence(name="Software licence", *levels, fallback=None, **kwargs):
    """An item whose policy is `levels`: each ("manager", mode) or (group, mode)."""
    made = item(name, fields=LICENCE_FIELDS, approval_fallback_group=fallback, **kwargs)
    for order, (who, mode) in enumerate(levels, 1):
        if who == "manager":
            ApprovalLevel.objects.create(item=made, order=order, kind="manager", mode=mode)
        else:
            ApprovalLevel.objects.create(item=made, order=order, kind="group", group=who, mode=mode)
    return made


def group_of(name, *users) -> Group:
    group, _ = Group.objects.get_or_create(name=name)
    group.user_set.add(*users)
    return group


def manage(user, manager) -> None:
    Profile.objects.filter(user=user).update(manager=manager)


def order(made_item, requester) -> ServiceRequest:
    return request_submit(item=made_item, answers={"product": "Visio", "why": "Floor plans"}, requester=requester,
                          created_by=requester)


def pending(request, user=None):
    rows = Approval.objects.filter(request=request, state="pending")
    return rows.filter(approver=user) if user is not None else rows


def timeline(request) -> list[str]:
    return list(TimelineEntry.objects.filter(content_type__model="servicerequest", object_id=request.id)
                .order_by("created_at", "id").values_list("body", flat=True))


def mails(template):
    from servicedesk.models import OutboxMessage

    return [m.payload for m in OutboxMessage.objects.filter(handler="email.send").order_by("id")
            if m.payload["template"] == template]
