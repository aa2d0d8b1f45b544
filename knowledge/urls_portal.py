from django.urls import path

from knowledge import views

# Under the kernel's /portal/ (namespace "portal").
urlpatterns = [
    path("", views.kb_index, name="kb"),
    path("<slug:slug>/", views.kb_article, name="kb-article"),
    path("<slug:slug>/vote/", views.kb_vote, name="kb-vote"),
    path("<slug:slug>/solved/", views.kb_solved, name="kb-solved"),
    path("<slug:slug>/thanks/", views.kb_thanks, name="kb-thanks"),
]
