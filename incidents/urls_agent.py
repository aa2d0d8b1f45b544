from django.urls import path

from incidents import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("queue/<slug:key>/", views.queue, name="queue"),
    path("search/", views.search, name="search"),
    path("views/", views.saved_view_create, name="saved_view_create"),
    path("views/<int:view_id>/", views.saved_view, name="saved_view"),
    path("views/<int:view_id>/delete/", views.saved_view_delete, name="saved_view_delete"),
    path("bulk/", views.bulk, name="bulk"),
    path("incidents/<str:number>/", views.agent_incident, name="incident"),
    path("incidents/<str:number>/edit/", views.edit, name="edit"),
    path("incidents/<str:number>/transition/", views.transition, name="transition"),
    path("incidents/<str:number>/parent/", views.link_parent, name="link_parent"),
    path("incidents/<str:number>/canned/<int:canned_id>/", views.canned, name="canned"),
    # The same view as the portal's, but this route is for agents only.
    path("incidents/<str:number>/comment/", views.agent_required(views.comment), name="comment"),
]
