from django.urls import path

from requests_app import views_approvals

# Under the kernel's /agent/approvals/ (namespace "agent").
urlpatterns = [
    path("", views_approvals.agent_approvals, name="approvals"),
    path("<int:approval_id>/decide/", views_approvals.agent_approval_decide, name="approval-decide"),
]
