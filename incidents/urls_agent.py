from django.urls import path

from incidents.views import incident, queues
from servicedesk.workspace import agent_required

urlpatterns = [
    path("", queues.dashboard, name="dashboard"),
    path("queue/<slug:key>/", queues.queue, name="queue"),
    path("search/", queues.search, name="search"),
    path("views/", queues.saved_view_create, name="saved_view_create"),
    path("views/<int:view_id>/", queues.saved_view, name="saved_view"),
    path("views/<int:view_id>/delete/", queues.saved_view_delete, name="saved_view_delete"),
    path("bulk/", queues.bulk, name="bulk"),
    path("incidents/<str:number>/", incident.agent_incident, name="incident"),
    path("incidents/<str:number>/edit/", incident.edit, name="edit"),
    path("incidents/<str:number>/transition/", incident.transition, name="transition"),
    path("incidents/<str:number>/parent/", incident.link_parent, name="link_parent"),
    path("incidents/<str:number>/canned/<int:canned_id>/", incident.canned, name="canned"),
    # The same view as the portal's, but this route is for agents only.
    path("incidents/<str:number>/comment/", agent_required(incident.comment), name="comment"),
]
