"""API tokens (django-rest-knox): issue, list, revoke, and revoke them all when the password changes.

A token is shown once, when it is issued; the database keeps only its SHA-512 digest and its first
15 characters (`token_key`), which identify it in lists and in revoke calls. Every token expires
API_TOKEN_TTL_HOURS after it was issued.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from knox.models import AuthToken

from servicedesk.services import audit_record


def api_tokens_of(user) -> QuerySet:
    """The user's tokens that still work, newest first."""
    return AuthToken.objects.filter(user=user, expiry__gt=timezone.now()).order_by("-created")


@transaction.atomic
def api_token_issue(*, user) -> tuple[AuthToken, str]:
    """A new token for the user: (the stored row, the plain token to hand over once)."""
    AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
    return AuthToken.objects.create(user=user)


@transaction.atomic
def api_token_revoke(*, user, token_key: str, actor=None) -> bool:
    """Revoke one of the user's own tokens; False when the user has no such token."""
    deleted, _ = AuthToken.objects.filter(user=user, token_key=token_key).delete()
    if deleted:
        audit_record(actor=actor or user, action="api_token.revoked", obj=user, changes={"token": token_key})
    return bool(deleted)


@transaction.atomic
def api_tokens_revoke_all(*, user, actor=None, reason: str = "revoked by owner") -> int:
    """Revoke every token of the user; returns how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    if deleted:
        audit_record(actor=actor, action="api_token.revoked_all", obj=user,
                     changes={"count": deleted, "reason": reason})
    return deleted


# --- a changed password revokes every token --------------------------------------------------------
# By comparing the stored hash, not by hooking one view: the password form, admin, `create_user` and a
# plain set_password() + save() all end here. (QuerySet.update() of the password bypasses signals.)


def _note_password_change(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    # set_password() keeps the new raw password until save; Django's re-hash at login (a stronger hasher,
    # more iterations) clears it first: the same password in a new hash is not a change.
    if getattr(instance, "_password", None) is None:
        instance._sd_password_changed = False
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._sd_password_changed = stored is not None and stored != instance.password


def _revoke_tokens_on_password_change(sender, instance, raw=False, **kwargs):
    if instance.__dict__.pop("_sd_password_changed", False):
        api_tokens_revoke_all(user=instance, reason="password changed")


def connect_signals():
    user_model = get_user_model()
    pre_save.connect(_note_password_change, sender=user_model, dispatch_uid="sd-token-password-pre")
    post_save.connect(_revoke_tokens_on_password_change, sender=user_model, dispatch_uid="sd-token-password-post")
