from django.urls import path

from requests_app import views_agent

# Under the kernel's /agent/ (namespace "agent"), at requests/.
urlpatterns = [
    path("queue/<slug:key>/", views_agent.request_queue, name="request_queue"),
    path("<str:number>/", views_agent.agent_request, name="request"),
    path("<str:number>/assign/", views_agent.assign, name="request_assign"),
    path("<str:number>/transition/", views_agent.transition, name="request_transition"),
    path("<str:number>/comment/", views_agent.comment, name="request_comment"),
]
