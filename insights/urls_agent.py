from django.urls import path

from insights import views, views_improvements, views_subscriptions

# Under the kernel's /agent/ (namespace "agent"), at insights/.
urlpatterns = [
    path("", views.dashboard, name="insights"),
    path("export/<slug:table>/", views.export_table, name="insights_export"),
    path("subscription/", views.subscription, name="insights_subscription"),
    path("improvements/", views_improvements.register_page, name="insights_improvements"),
    path("improvements/new/", views_improvements.new, name="insights_improvement_new"),
    path("improvements/<int:improvement_id>/", views_improvements.detail, name="insights_improvement"),
]
urlpatterns += [
    path("subscriptions/", views_subscriptions.subscription, name="insights_subscriptions"),
    path("improvements/<int:improvement_id>/edit/", views_improvements.edit, name="insights_improvement_edit"),
]
