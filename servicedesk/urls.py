from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from servicedesk import metrics, oidc, views, views_twofactor, views_watchers

admin.site.site_header = "Servicedesk administration"
admin.site.site_title = "Servicedesk admin"
admin.site.index_title = "Configuration"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Prometheus (servicedesk.metrics): by network and token, no session; not part of the API.
    path("metrics", metrics.metrics_view, name="metrics"),
    path("favicon.ico", views.favicon, name="favicon"),
    # Two-factor sign-in (servicedesk/twofactor.py): the password, then a code (or set-up) before the session is
    # signed in; admin's own login form is the same two steps.
    path("login/", views_twofactor.SignInView.as_view(), name="login"),
    path("login/code/", views_twofactor.signin_code, name="login-code"),
    path("login/enrol/", views_twofactor.signin_enrol, name="login-enrol"),
    path("admin/login/", views_twofactor.admin_login, name="admin-login"),
    path("profile/two-factor/", views_twofactor.twofactor_manage, name="twofactor"),
    path("profile/two-factor/enrol/", views_twofactor.twofactor_enrol, name="twofactor-enrol"),
    path("profile/two-factor/codes/", views_twofactor.twofactor_codes, name="twofactor-codes"),
    path("profile/two-factor/codes/new/", views_twofactor.twofactor_codes_regenerate, name="twofactor-codes-new"),
    path("profile/two-factor/disable/", views_twofactor.twofactor_disable, name="twofactor-disable"),
    path("logout/", oidc.LogoutView.as_view(), name="logout"),
    # OpenID Connect sign-in (servicedesk/oidc.py): 404 unless OIDC is switched on.
    path("oidc/authenticate/", oidc.OIDCStartView.as_view(), name="oidc_start"),
    path("oidc/callback/", oidc.oidc_callback, name="oidc_callback"),
    path("search/", views.search, name="search"),
    # The workspace and the portal: each practice app adds its pages under the kernel's namespaces.
    path("profile/", views.profile, name="profile"),
    path("profile/password/", views.PasswordChangeView.as_view(), name="password_change"),
    # Where a password reset link leads (the link is mailed by the "password_reset" fulfilment handler).
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(
        template_name="registration/password_reset_confirm.html",
        success_url=reverse_lazy("password_reset_complete")), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(
        template_name="registration/password_reset_complete.html"), name="password_reset_complete"),
    path("profile/tokens/revoke-all/", views.profile_tokens_revoke_all, name="profile-tokens-revoke-all"),
    path("profile/tokens/<str:token_id>/revoke/", views.profile_token_revoke, name="profile-token-revoke"),
    path("agent/", include(([
        path("", include("incidents.urls_agent")),
        path("sla/", include("sla.urls_agent")),
        path("requests/", include("requests_app.urls_agent")),
        path("kb/", include("knowledge.urls_agent")),
        path("approvals/", include("requests_app.urls_agent_approvals")),
        path("problems/candidates/", include("problems.urls_candidates")),
        path("problems/", include("problems.urls_agent")),
        path("monitoring/", include("monitoring.urls_agent")),
        path("insights/", include("insights.urls_agent")),
        path("mail/", include("email_channel.urls_agent")),
        # The watchers card of any ticket type's agent page (kind: "incident", "request").
        path("watchers/<slug:kind>/<str:number>/add/", views_watchers.watcher_add_view, name="watcher_add"),
        path("watchers/<slug:kind>/<str:number>/remove/", views_watchers.watcher_remove_view,
             name="watcher_remove"),
    ], "agent"))),
    path("portal/", include(([
        path("", views.portal_home, name="home"),
        path("search/", views.portal_search, name="search"),
        path("suggest/", views.portal_suggest, name="suggest"),
        path("rate/<str:number>/", views.portal_rate, name="rate"),
        path("catalog/", include("requests_app.urls_catalog")),
        path("", include("incidents.urls_portal")),
        path("kb/", include("knowledge.urls_portal")),
        path("requests/", include("requests_app.urls_portal")),
        path("approvals/", include("requests_app.urls_portal_approvals")),
    ], "portal"))),
    path("admin/", admin.site.urls),
    path("api/v1/attachments/<int:attachment_id>/download/", views.attachment_download,
         name="attachment-download"),
    path("api/v1/", include("servicedesk.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Under the site's Content-Security-Policy: Swagger UI's start-up script is a separate request (split view).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
]
