"""Every write to an incident, one function per change, one transaction each (see lifecycle.py), with the
concerns around it in their own modules: routing (which team and agent), notify (who hears about it), and the
workspace's own writes (canned responses, saved views). Callers use this package: `services.incident_create`.
"""

from incidents.services.lifecycle import (
    EDITABLE,
    incident_assign,
    incident_cancel,
    incident_close,
    incident_comment_add,
    incident_create,
    incident_hold,
    incident_priority_raise,
    incident_reopen,
    incident_resolve,
    incident_resume,
    incident_system_note,
    incident_transition,
    incident_update,
    incidents_auto_close,
)
from incidents.services.notify import incident_payload
from incidents.services.routing import pick_assignee, route
from incidents.services.workspace import canned_render, saved_view_create, saved_view_delete

__all__ = [
    "EDITABLE", "canned_render", "incident_assign", "incident_cancel", "incident_close", "incident_comment_add",
    "incident_create", "incident_hold", "incident_payload", "incident_priority_raise", "incident_reopen", "incident_resolve",
    "incident_resume", "incident_system_note", "incident_transition", "incident_update", "incidents_auto_close",
    "pick_assignee", "route",
    "saved_view_create", "saved_view_delete",
]
