from django.urls import path

from incidents import views

urlpatterns = [
    path("", views.portal_home, name="home"),
    path("report/", views.portal_report, name="report"),
    path("incidents/<str:number>/", views.portal_incident, name="incident"),
    path("incidents/<str:number>/comment/", views.comment, name="comment"),
]
