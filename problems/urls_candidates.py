from django.urls import path

from problems import views_candidates

# Under the kernel's /agent/problems/candidates/ (namespace "agent"), included before problems.urls_agent so
# that "candidates" is never read as a problem number.
urlpatterns = [
    path("", views_candidates.candidates, name="problem_candidates"),
    path("<int:candidate_id>/accept/", views_candidates.accept, name="problem_candidate_accept"),
    path("<int:candidate_id>/dismiss/", views_candidates.dismiss, name="problem_candidate_dismiss"),
]
