from django.urls import path

from problems import views

# Under the kernel's /agent/ (namespace "agent"), at problems/.
urlpatterns = [
    path("", views.queue, name="problems"),
    path("queue/<slug:key>/", views.queue, name="problem_queue"),
    path("new/", views.new, name="problem_new"),
    path("measures/", views.measures, name="problem_measures"),
    path("from-incidents/", views.from_incidents, name="problem_from_incidents"),
    path("incident/<str:number>/link/", views.link_incident, name="problem_link_incident"),
    path("incident/<str:number>/apply/<str:problem_number>/", views.apply_workaround, name="problem_apply_workaround"),
    path("<str:number>/", views.problem_page, name="problem"),
    path("<str:number>/update/", views.update, name="problem_update"),
    path("<str:number>/transition/", views.transition, name="problem_transition"),
    path("<str:number>/resolve/", views.resolve, name="problem_resolve"),
    path("<str:number>/link/", views.link, name="problem_link"),
    path("<str:number>/unlink/<str:incident>/", views.unlink, name="problem_unlink"),
    path("<str:number>/incident-search/", views.incident_search, name="problem_incident_search"),
    path("<str:number>/related/", views.link_problem, name="problem_related"),
    path("<str:number>/note/", views.note, name="problem_note"),
]
