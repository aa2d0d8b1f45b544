from django.urls import path

from requests_app import views_approvals

# Under the kernel's /portal/approvals/ (namespace "portal").
urlpatterns = [
    path("", views_approvals.portal_approvals, name="approvals"),
    path("<int:approval_id>/decide/", views_approvals.portal_approval_decide, name="approval-decide"),
    path("link/<str:token>/", views_approvals.approval_link, name="approval-link"),
]
