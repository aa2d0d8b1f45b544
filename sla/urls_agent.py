"""SLA pages of the agent workspace, included under /agent/sla/ in the kernel's "agent" namespace."""

from django.urls import path

from sla import views

urlpatterns = [
    path("report/", views.report_page, name="sla_report"),
]
