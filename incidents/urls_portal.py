from django.urls import path

from incidents.views import incident, portal

# Under the kernel's /portal/ (namespace "portal"), beside its home page.
urlpatterns = [
    path("report/", portal.portal_report, name="report"),
    path("incidents/<str:number>/", portal.portal_incident, name="incident"),
    path("incidents/<str:number>/comment/", incident.comment, name="comment"),
]
