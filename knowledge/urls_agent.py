from django.urls import path

from knowledge import views_agent

# Under the kernel's /agent/kb/ (namespace "agent").
urlpatterns = [
    path("", views_agent.kb_list, name="kb"),
    path("new/", views_agent.kb_new, name="kb-new"),
    path("preview/", views_agent.kb_preview, name="kb-preview"),
    path("<int:article_id>/edit/", views_agent.kb_edit, name="kb-edit"),
    path("<int:article_id>/publish/", views_agent.kb_publish, name="kb-publish"),
    path("<int:article_id>/retire/", views_agent.kb_retire, name="kb-retire"),
    path("<int:article_id>/history/", views_agent.kb_history, name="kb-history"),
    path("<int:article_id>/send/", views_agent.kb_send, name="kb-send"),
]
