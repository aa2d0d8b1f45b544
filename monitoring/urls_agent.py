from django.urls import path

from monitoring import views

# Under the kernel's /agent/ (namespace "agent"), at monitoring/.
urlpatterns = [
    path("", views.console, name="monitoring_console"),
    path("table/", views.console_table, name="monitoring_table"),
    path("kpis/", views.kpis_page, name="monitoring_kpis"),
    path("alerts/<int:alert_id>/", views.alert_page, name="monitoring_alert"),
    path("alerts/<int:alert_id>/acknowledge/", views.acknowledge, name="monitoring_acknowledge"),
    path("alerts/<int:alert_id>/link/", views.link_incident, name="monitoring_link"),
]
