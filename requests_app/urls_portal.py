from django.urls import path

from requests_app import views

# Under the kernel's /portal/ (namespace "portal").
urlpatterns = [
    path("<str:number>/", views.portal_request, name="request"),
    path("<str:number>/cancel/", views.portal_request_cancel, name="request-cancel"),
    path("<str:number>/reply/", views.portal_request_reply, name="request-reply"),
    path("<str:number>/reopen/", views.portal_request_reopen, name="request-reopen"),
]
