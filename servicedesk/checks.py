"""System checks of the kernel's rules that a new practice app could otherwise break by accident."""

from django.core import checks


@checks.register(checks.Tags.admin)
def ticket_admins_never_delete(app_configs=None, **kwargs):
    """Every ticket type registered in admin uses servicedesk.admin.TicketAdmin: no delete, no delete action."""
    from django.contrib import admin

    from servicedesk.admin import TicketAdmin
    from servicedesk.models import Ticket

    return [
        checks.Error(
            f"{model._meta.label} is a ticket, but its admin {type(model_admin).__name__} is not a TicketAdmin.",
            hint="Subclass servicedesk.admin.TicketAdmin: tickets are cancelled or closed, never deleted in "
            "admin (data-protection erasure is `manage.py erase_ticket`).",
            obj=type(model_admin),
            id="servicedesk.E001",
        )
        for model, model_admin in admin.site._registry.items()
        if issubclass(model, Ticket) and not isinstance(model_admin, TicketAdmin)
    ]
