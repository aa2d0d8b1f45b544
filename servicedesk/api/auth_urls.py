from django.urls import path

from servicedesk.api import auth

urlpatterns = [
    path("token/", auth.TokenView.as_view(), name="api-token"),
    path("tokens/", auth.TokenListView.as_view(), name="api-tokens"),
    path("tokens/<str:token_id>/", auth.TokenDetailView.as_view(), name="api-token-detail"),
    path("logout/", auth.LogoutView.as_view(), name="api-logout"),
    path("logout-all/", auth.LogoutAllView.as_view(), name="api-logout-all"),
]
