"""The built-in fulfilment handlers (requests_app.fulfilment): password_reset, group_access, software_install.

Each works in named steps (recorded on the request's FulfilmentRun, so a retried task skips what is done) and
writes the timeline: public lines the requester reads, internal lines with the details for agents.
"""

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from requests_app.fulfilment import (
    Done,
    Failed,
    FulfilmentContext,
    FulfilmentHandler,
    Transient,
    Waiting,
    handler_register,
    unknown_settings,
)
from servicedesk.models import OutboxMessage
from servicedesk.notifications import email_message_id, email_render_and_send, webhook_signature
from servicedesk.outbox import Fail, outbox_enqueue, outbox_handler
from servicedesk.roles import Role
from servicedesk.services import audit_record

USER_AGENT = "Servicedesk-Fulfilment/1"

# --- password_reset ------------------------------------------------------------------------------------

PASSWORD_RESET_MAIL = "requests.password_reset_mail"  # noqa: S105 - an outbox key


def password_reset_link(user) -> str:
    """An absolute link to Django's reset-confirm page, with a fresh token (valid PASSWORD_RESET_TIMEOUT, and
    only until the password changes)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    return django_settings.SITE_URL.rstrip("/") + path


def _reset_refusal(user) -> str:
    """Why this account cannot get a reset link from us ("" when it can)."""
    if not user.is_active:
        return f"the account {user.username} is deactivated"
    if not user.has_usable_password():
        return (f"the account {user.username} has no password kept here (an account of an outside directory, "
                "or one that never had a password): reset it where the account lives")
    if not user.email:
        return f"the account {user.username} has no e-mail address to send the link to"
    return ""


class PasswordReset(FulfilmentHandler):
    key = "password_reset"
    label = "Password reset link"
    description = "E-mails the requester a link to choose a new password (local accounts only). No settings."

    def settings_errors(self, settings: dict) -> dict[str, str]:
        return unknown_settings(settings, set())

    def run(self, ctx: FulfilmentContext) -> Done:
        user = ctx.request.requester
        refusal = _reset_refusal(user)
        if refusal:
            raise Failed(refusal)

        def mail_link():
            # The token is made when the mail is sent (the outbox row holds only the user's id).
            outbox_enqueue(PASSWORD_RESET_MAIL, {"user_id": user.id, "request": ctx.request.number})
            ctx.say("We e-mailed you a link to choose a new password.")
            ctx.say(f"Password reset link queued for {user.username} to {user.email} (local account)",
                    internal=True)
            return {"to": user.email}

        sent = ctx.step("mail_link", mail_link)
        days = max(1, django_settings.PASSWORD_RESET_TIMEOUT // 86400)
        return Done(f"We e-mailed a link to choose a new password to {sent['to']}. It works once, "
                    f"for {days} day{'s' if days != 1 else ''}.")


@outbox_handler(PASSWORD_RESET_MAIL, retry_on=(OSError,), max_attempts=9, queue="notifications")
def _password_reset_mail(message: OutboxMessage) -> Fail | None:
    user = get_user_model().objects.filter(id=message.payload["user_id"]).first()
    if user is None:
        return Fail("the account was deleted")
    refusal = _reset_refusal(user)
    if refusal:
        return Fail(refusal)
    email_render_and_send(
        template="password_reset_link", to=[user.email], message_id=email_message_id(message),
        context={"name": user.get_full_name() or user.username, "username": user.username,
                 "link": password_reset_link(user), "number": message.payload.get("request", ""),
                 "days": max(1, django_settings.PASSWORD_RESET_TIMEOUT // 86400)})
    return None


# --- group_access --------------------------------------------------------------------------------------

ROLE_GROUPS = frozenset(Role.values)


def _group_refusal(group: Group | None, name: str) -> str:
    if group is None:
        return f"no group named {name!r}"
    if group.name in ROLE_GROUPS:
        return f"{name!r} is a role group; roles are given by an admin, not ordered"
    if group.permissions.exists():
        return f"the group {name!r} grants permissions; grant those in admin, not by a request"
    return ""


class GroupAccess(FulfilmentHandler):
    """Adds a person to a Django group. Settings: {"group": "VPN users"} (always that group), or
    {"groups": [...], "group_field": "group"} (the group the form's answer names, one of those listed;
    group_field defaults to "group"); optionally "user_field": a form field of type user naming who joins
    (default: the requester)."""

    key = "group_access"
    label = "Group membership"
    description = __doc__

    KNOWN = {"group", "groups", "group_field", "user_field"}

    def settings_errors(self, settings: dict) -> dict[str, str]:
        errors = unknown_settings(settings, self.KNOWN)
        if ("group" in settings) == ("groups" in settings):
            errors["group"] = 'name one group ("group": "VPN users") or the groups people choose from ("groups")'
            return errors
        if "group" in settings:
            name = settings["group"]
            if not isinstance(name, str) or not name.strip():
                errors["group"] = "a group name"
            elif refusal := _group_refusal(Group.objects.filter(name=name).first(), name):
                errors["group"] = refusal
            if "group_field" in settings:
                errors["group_field"] = 'only with "groups" (the answer must be one of them)'
        else:
            names = settings["groups"]
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                errors["groups"] = "a list of group names"
            else:
                found = {g.name: g for g in Group.objects.filter(name__in=names).prefetch_related("permissions")}
                bad = [_group_refusal(found.get(n), n) for n in names]
                bad = [b for b in bad if b]
                if bad:
                    errors["groups"] = "; ".join(bad)
        for key in ("group_field", "user_field"):
            if key in settings and (not isinstance(settings[key], str) or not settings[key]):
                errors[key] = "the name of a field of the item's form"
        return errors

    def run(self, ctx: FulfilmentContext) -> Done:
        settings, answers = ctx.settings, ctx.request.answers or {}
        if "group" in settings:
            name = settings["group"]
        else:
            field = settings.get("group_field", "group")
            name = answers.get(field)
            if not name:
                raise Failed(f"the answer {field!r} names no group")
            if name not in settings["groups"]:
                raise Failed(f"{name!r} is not one of the groups this item may add people to")
        group = Group.objects.filter(name=name).first()
        refusal = _group_refusal(group, name)
        if refusal:
            raise Failed(refusal)
        user = ctx.request.requester
        if settings.get("user_field"):
            username = answers.get(settings["user_field"])
            user = get_user_model().objects.filter(username=username, is_active=True).first() if username else None
            if user is None:
                raise Failed(f"the answer {settings['user_field']!r} names no active person ({username!r})")
        you = user.id == ctx.request.requester_id
        who = "you" if you else (user.get_full_name() or user.username)

        def add_member():
            already = group.user_set.filter(id=user.id).exists()
            if not already:
                group.user_set.add(user)
                audit_record(actor=None, action="group.member_added", obj=user,
                             changes={"group": group.name, "request": ctx.request.number})
            ctx.say(f"{who[0].upper() + who[1:]} {'were' if you else 'was'} already a member of {group.name}."
                    if already else f"Added {who} to the group {group.name}.")
            return {"group": group.name, "user": user.username, "already": already}

        done = ctx.step("add_member", add_member)
        return Done(f"{who[0].upper() + who[1:]} {'are' if you else 'is'} now a member of {done['group']}.")


# --- software_install ----------------------------------------------------------------------------------

REQUEST_TIMEOUT_SECONDS = 10
DEFAULT_TIMEOUT_MINUTES = 60
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def software_secret(settings: dict) -> str:
    if settings.get("secret"):
        return settings["secret"]
    return os.environ.get(settings.get("secret_env") or "", "")


class SoftwareInstall(FulfilmentHandler):
    """Asks an outside deployment tool to install software: POSTs a signed JSON job, then waits for the tool
    to call back on the signed callback URL in it; fails when no callback comes within timeout_minutes.
    Settings: {"url": "https://deploy.example/jobs", "secret": "..." or "secret_env": "DEPLOY_SECRET",
    "timeout_minutes": 60, "package_field": "product"}."""

    key = "software_install"
    label = "Software installation (outside tool)"
    description = __doc__

    KNOWN = {"url", "secret", "secret_env", "timeout_minutes", "package_field"}

    def settings_errors(self, settings: dict) -> dict[str, str]:
        errors = unknown_settings(settings, self.KNOWN)
        url = settings.get("url")
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            errors["url"] = "the http(s) address of the tool's endpoint"
        if ("secret" in settings) == ("secret_env" in settings):
            errors["secret"] = ('give the shared secret ("secret") or the environment variable holding it '  # noqa: S105
                                '("secret_env"), one of them')
        elif "secret" in settings:
            if not isinstance(settings["secret"], str) or len(settings["secret"]) < 16:
                errors["secret"] = "at least 16 characters"  # noqa: S105
        else:
            name = settings["secret_env"]
            if not isinstance(name, str) or not ENV_NAME.match(name):
                errors["secret_env"] = "an environment variable name such as DEPLOY_SECRET"  # noqa: S105
            elif len(os.environ.get(name, "")) < 16:
                errors["secret_env"] = f"the environment variable {name} is not set (to at least 16 characters)"
        minutes = settings.get("timeout_minutes", DEFAULT_TIMEOUT_MINUTES)
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 60 * 24 * 30:
            errors["timeout_minutes"] = "whole minutes from 1 to 43200 (30 days)"
        if "package_field" in settings and (not isinstance(settings["package_field"], str)
                                            or not settings["package_field"]):
            errors["package_field"] = "the name of a field of the item's form"
        return errors

    def run(self, ctx: FulfilmentContext) -> Waiting:
        settings = ctx.settings
        secret = software_secret(settings)
        if not secret:
            raise Failed("no shared secret: the environment variable in secret_env is not set")
        answers = ctx.request.answers or {}
        package = answers.get(settings["package_field"]) if settings.get("package_field") else None
        requester = ctx.request.requester
        body = json.dumps({
            "request": ctx.request.number,
            "delivery": ctx.delivery_id,
            "item": ctx.item.name,
            "requester": {"username": requester.username, "email": requester.email,
                          "name": requester.get_full_name() or requester.username},
            "package": package,
            "answers": answers,
            "callback_url": ctx.callback_url(),
        }, separators=(",", ":")).encode()

        def dispatch():
            reference = self._post(settings["url"], secret, body, ctx.delivery_id)
            what = f" ({package})" if package else ""
            ctx.say(f"Sent to the installation tool{what}; waiting for it to finish.")
            ctx.say(f"Job {ctx.delivery_id} accepted by {settings['url']}"
                    + (f", reference {reference}" if reference else ""), internal=True)
            return {"reference": reference}

        sent = ctx.step("dispatch", dispatch)
        return ctx.wait(minutes=settings.get("timeout_minutes", DEFAULT_TIMEOUT_MINUTES),
                        external_ref=sent.get("reference") or "")

    @staticmethod
    def _post(url: str, secret: str, body: bytes, delivery_id: str) -> str:
        """POST the job; the tool's reference ("reference" or "id" of a JSON reply) or "". Raises Transient for
        5xx, 429 and an unreachable tool, Failed for any other refusal."""
        timestamp = str(int(time.time()))
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Servicedesk-Event": "request.fulfil",
            "X-Servicedesk-Delivery": delivery_id,
            "X-Servicedesk-Timestamp": timestamp,
            "X-Servicedesk-Signature": webhook_signature(secret, timestamp, body),
        })
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310 (admin-set URL)
                reply = response.read(65536)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf8", errors="replace").strip()
            message = f"the tool answered HTTP {exc.code}" + (f": {detail}" if detail else "")
            if exc.code >= 500 or exc.code == 429:
                raise Transient(message) from exc
            raise Failed(message) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise Transient(f"the tool could not be reached: {getattr(exc, 'reason', exc)}") from exc
        try:
            data = json.loads(reply or b"{}")
        except ValueError:
            return ""
        if not isinstance(data, dict):
            return ""
        return str(data.get("reference") or data.get("id") or "")[:200]


for _handler in (PasswordReset(), GroupAccess(), SoftwareInstall()):
    handler_register(_handler)
