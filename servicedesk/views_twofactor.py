"""Two-factor sign-in pages: the password step, the code step, set-up at sign-in, and the profile's
"Two-factor sign-in" page (set up, new backup codes, turn off). The rules are in servicedesk.twofactor."""

from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from servicedesk import twofactor
from servicedesk.errors import DomainError
from servicedesk.signin import lockout_response


class CodeForm(forms.Form):
    code = forms.CharField(label="Code", max_length=20, error_messages={
        "required": "Enter the 6-digit code your authenticator app shows, or one of your backup codes."})


class SignInView(auth_views.LoginView):
    """Django's login form; a user who owes a second factor is not signed in by it but sent to the code
    (or set-up) page, with only the pending sign-in in the session."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        step = twofactor.second_step_for(user)
        if step is None:
            return super().form_valid(form)
        twofactor.pending_start(self.request, user, backend=user.backend, next_url=self.get_success_url(),
                                step=step)
        return redirect(twofactor.step_url(step))


def admin_login(request):
    """/admin/login/ is the same two-step sign-in (admin's own form would sign in with the password alone).
    A staff member already signed in goes on to admin; anyone else gets the sign-in form."""
    if request.method == "GET" and request.user.is_active and request.user.is_staff:
        return redirect(_safe_next(request, request.GET.get("next")) or reverse("admin:index"))
    return SignInView.as_view(redirect_authenticated_user=False, next_page="admin:index")(request)


def _safe_next(request, url) -> str:
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return url
    return ""


def _pending_or_restart(request):
    pending = twofactor.pending_of(request)
    if pending is None:
        messages.info(request, "Sign in with your username and password first.")
    return pending


def _locked(request, user):
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        twofactor.pending_clear(request)
        return lockout_response(request, None, credentials)
    return None


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def signin_code(request):
    """Step two: the code of the authenticator app, or a backup code."""
    pending = _pending_or_restart(request)
    if pending is None:
        return redirect("login")
    user, data = pending
    step = twofactor.second_step_for(user)
    if step != twofactor.CODE:  # reset by an admin meanwhile: set up again, or the password was enough
        if step is None:
            twofactor.signin_complete(request, user, backend=data["backend"], method=None)
            return redirect(_safe_next(request, data.get("next")) or reverse("home"))
        return redirect(twofactor.step_url(step))
    locked = _locked(request, user)
    if locked is not None:
        return locked
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # A wrong code is a failed sign-in for django-axes, counted by second_factor_verify with the username's
        # wrong passwords; at the limit AxesMiddleware answers with the "try again after" page.
        try:
            method = twofactor.second_factor_verify(user=user, code=form.cleaned_data["code"], request=request)
        except twofactor.SecondFactorLocked:
            twofactor.pending_clear(request)
            return lockout_response(request, None, {"username": user.get_username()})
        if method is not None:
            twofactor.signin_complete(request, user, backend=data["backend"], method=method)
            if method == "backup":
                left = twofactor.backup_codes_left(user)
                messages.warning(request, f"You signed in with a backup code; {left} left. Make new ones on "
                                          "your profile's Two-factor sign-in page if you are running out.")
            return redirect(_safe_next(request, data.get("next")) or reverse("home"))
        form.add_error("code", "That code is not right, or it was used already. Enter the code the app shows "
                               "now, or a backup code.")
    return render(request, "registration/login_code.html", {"form": form, "pending_user": user})


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def signin_enrol(request):
    """Step two for a user whose role must use two-factor sign-in and who has not set it up: set it up now.
    Nothing else is reachable until this is done (the session is not signed in)."""
    pending = _pending_or_restart(request)
    if pending is None:
        return redirect("login")
    user, data = pending
    step = twofactor.second_step_for(user)
    if step != twofactor.ENROL:
        if step is None:
            twofactor.signin_complete(request, user, backend=data["backend"], method=None)
            return redirect(_safe_next(request, data.get("next")) or reverse("home"))
        return redirect(twofactor.step_url(step))
    form = CodeForm(request.POST or None)
    codes = _enrol_confirm(request, user, form)
    if codes is not None:
        twofactor.signin_complete(request, user, backend=data["backend"], method="totp")
        request.session[twofactor.NEW_CODES] = {"codes": codes, "next": data.get("next") or ""}
        messages.success(request, "Two-factor sign-in is on.")
        return redirect("twofactor-codes")
    device = twofactor.totp_enrol_start(user=user, session=request.session)
    return render(request, "registration/login_enrol.html", _setup_context(user, device, form))


def _enrol_confirm(request, user, form) -> list[str] | None:
    """The backup codes if the posted code confirms the authenticator this session started (and showed: see
    totp_enrol_start), else None with the form's error set. Used by the sign-in step and the profile page."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        codes = twofactor.totp_enrol_confirm(user=user, device_id=request.session.get(twofactor.ENROL_DEVICE),
                                             code=form.cleaned_data["code"])
    except DomainError as error:
        form.add_error("code", error.message)
        return None
    request.session.pop(twofactor.ENROL_DEVICE, None)
    return codes


def _setup_context(user, device, form) -> dict:
    return {"form": form, "pending_user": user, "qr": twofactor.qr_data_uri(device.config_url),
            "secret": twofactor.secret_text(device), "issuer": settings.TOTP_ISSUER}


# --- the profile's page -------------------------------------------------------------------------------


@login_required
@never_cache
def twofactor_manage(request):
    user = request.user
    on = twofactor.has_second_factor(user)
    return render(request, "servicedesk/twofactor.html", {
        "on": on, "required": twofactor.required_for(user), "form": CodeForm(),
        "backup_left": twofactor.backup_codes_left(user) if on else 0,
    })


class PasswordForm(forms.Form):
    password = forms.CharField(label="Your password", strip=False, widget=forms.PasswordInput, error_messages={
        "required": "Enter your password to go on."})


def _password_again(request, user):
    """The profile's set-up after TWO_FACTOR_STEP_MINUTES without a sign-in: the password first (checked like
    a sign-in, through the directory for a directory account; a wrong one counts as a failed sign-in)."""
    form = PasswordForm(request.POST if "password" in request.POST else None)
    if request.method == "POST" and form.is_valid():
        checked = authenticate(request, username=user.get_username(), password=form.cleaned_data["password"])
        if checked is not None and checked.pk == user.pk:
            twofactor.password_proved(request.session)
            return redirect("twofactor-enrol")
        if not getattr(request, "axes_locked_out", False):
            form.add_error("password", "That is not your password.")
    return render(request, "servicedesk/twofactor_password.html",
                  {"form": form, "minutes": settings.TWO_FACTOR_STEP_MINUTES}, status=400 if form.errors else 200)


@sensitive_post_parameters("code", "password")
@login_required
@never_cache
def twofactor_enrol(request):
    user = request.user
    if twofactor.has_second_factor(user):
        return redirect("twofactor")
    if not twofactor.password_recent(request.session):
        return _password_again(request, user)
    form = CodeForm(request.POST or None)
    codes = _enrol_confirm(request, user, form)
    if codes is not None:
        twofactor.session_mark_verified(request)
        request.session[twofactor.NEW_CODES] = {"codes": codes, "next": reverse("twofactor")}
        messages.success(request, "Two-factor sign-in is on: you will be asked for a code at every sign-in.")
        return redirect("twofactor-codes")
    device = twofactor.totp_enrol_start(user=user, session=request.session)
    return render(request, "servicedesk/twofactor_enrol.html", _setup_context(user, device, form))


@login_required
@never_cache
def twofactor_codes(request):
    """The new backup codes, shown this once."""
    shown = request.session.pop(twofactor.NEW_CODES, None)
    if not shown:
        return redirect("twofactor")
    return render(request, "servicedesk/twofactor_codes.html",
                  {"codes": shown["codes"], "next": _safe_next(request, shown.get("next")) or reverse("home")})


def _proved(request, form) -> bool:
    """The signed-in user's current code (or a backup code); a wrong one counts as a failed sign-in."""
    if not form.is_valid():
        return False
    try:
        method = twofactor.second_factor_verify(user=request.user, code=form.cleaned_data["code"], request=request)
    except twofactor.SecondFactorLocked:
        request.axes_locked_out = True  # AxesMiddleware answers with the "try again after" page
        method = None
    if method is not None:
        return True
    form.add_error("code", "That code is not right, or it was used already.")
    return False


def _manage_again(request, form, action):
    return render(request, "servicedesk/twofactor.html", {
        "on": True, "required": twofactor.required_for(request.user), "form": form, "failed": action,
        "backup_left": twofactor.backup_codes_left(request.user)}, status=400)


@sensitive_post_parameters("code")
@login_required
@require_POST
def twofactor_codes_regenerate(request):
    if not twofactor.has_second_factor(request.user):
        return redirect("twofactor")
    locked = _locked(request, request.user)
    if locked is not None:
        return locked
    form = CodeForm(request.POST)
    if not _proved(request, form):
        return _manage_again(request, form, "regenerate")
    codes = twofactor.backup_codes_regenerate(user=request.user)
    request.session[twofactor.NEW_CODES] = {"codes": codes, "next": reverse("twofactor")}
    messages.success(request, "New backup codes made: the old ones no longer work.")
    return redirect("twofactor-codes")


@sensitive_post_parameters("code")
@login_required
@require_POST
def twofactor_disable(request):
    if not twofactor.has_second_factor(request.user):
        return redirect("twofactor")
    form = CodeForm(request.POST)
    if twofactor.required_for(request.user):
        form.is_valid()
        form.add_error(None, "Two-factor sign-in is required for your role: it cannot be turned off.")
        return _manage_again(request, form, "disable")
    locked = _locked(request, request.user)
    if locked is not None:
        return locked
    if not _proved(request, form):
        return _manage_again(request, form, "disable")
    try:
        twofactor.twofactor_disable(user=request.user)
    except DomainError as error:
        form.add_error(None, error.message)
        return _manage_again(request, form, "disable")
    twofactor.session_mark_not_needed(request)
    messages.success(request, "Two-factor sign-in is off: your password alone signs you in.")
    return redirect("twofactor")
