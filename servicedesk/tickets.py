"""The versioned write every ticket type shares: lock the row, check the version the caller saw, save with
the version bumped. Practice apps' service functions call these instead of each keeping a copy."""

from django.db.models import F
from django.utils import timezone

from servicedesk.errors import StaleVersion


def ticket_lock(model, ticket_id: int, *related: str):
    """The ticket row, locked until the transaction ends (only its own row: joined rows stay free), then read
    with its related rows.

    Two statements, not one SELECT ... FOR UPDATE with the joins: when the lock had to wait for another
    transaction that changed the row, PostgreSQL re-reads the locked row's new version but keeps the joined rows
    it had found for the old one, so a ticket whose assignee had just been set came back with `assignee_id` set
    and `assignee` None (an agent commenting while another assigned it got a 500 in the load test). Once the
    lock is held, a new statement reads the committed row and its current related rows."""
    model.objects.select_for_update().only("id").get(id=ticket_id)
    return model.objects.select_related("updated_by", *related).get(id=ticket_id)


def ticket_check_version(ticket, version: int | None) -> None:
    """StaleVersion (409) naming who changed it and when, unless `version` is None or still current."""
    if version is None or int(version) == ticket.version:
        return
    who = (ticket.updated_by.get_full_name() or ticket.updated_by.username) if ticket.updated_by else "someone"
    when = timezone.localtime(ticket.updated_at).strftime("%Y-%m-%d %H:%M:%S")
    raise StaleVersion(
        f"{ticket.number} was changed by {who} at {when} (version {ticket.version}, you sent {version}); "
        "reload it and apply your change again",
        field="version",
    )


def ticket_save(ticket, actor, fields: list[str]) -> None:
    """Save `fields` with the version bumped in SQL and `updated_by` set; the instance reads back both."""
    ticket.version = F("version") + 1
    ticket.updated_by = actor if actor is not None and actor.is_authenticated else None
    ticket.save(update_fields=[*fields, "version", "updated_by", "updated_at"])
    ticket.refresh_from_db(fields=["version", "updated_at"])
