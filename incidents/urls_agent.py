from django.urls import path

from incidents import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("incidents/<str:number>/", views.agent_incident, name="incident"),
    path("incidents/<str:number>/comment/", views.comment, name="comment"),
]
