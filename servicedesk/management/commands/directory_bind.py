"""Bind an existing account to the directory (LDAP) entry of the same username, so its owner signs in to it
with the directory password. For accounts made before LDAP was switched on: without a binding, a directory
sign-in under an existing account's username is refused (servicedesk.ldap_signin)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = ("Bind an existing (non-superuser) account to the directory entry of the same username; audited. "
            "--dry-run only shows the entry and the binding it would make.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--dry-run", action="store_true", help="Show the directory entry; change nothing.")

    def handle(self, *args, username, dry_run, **opts):
        if not settings.LDAP_SERVER_URI:
            raise CommandError("LDAP_SERVER_URI is not set: there is no directory to bind to")
        import ldap
        from django_auth_ldap.backend import _LDAPUser

        from servicedesk.ldap_signin import DirectoryLDAPBackend, identity_issuer, identity_subject
        from servicedesk.models import ExternalIdentity
        from servicedesk.services import audit_record

        User = get_user_model()
        matches = list(User.objects.filter(username__iexact=username.strip())[:2])
        if len(matches) != 1:
            raise CommandError(f"{'No' if not matches else 'More than one'} account is named {username!r} "
                               "(compared ignoring case)")
        user = matches[0]
        entry = _LDAPUser(DirectoryLDAPBackend(), username=username.strip())
        try:
            dn, attrs = entry.dn, entry.attrs
        except ldap.LDAPError as exc:
            raise CommandError(f"The directory {settings.LDAP_SERVER_URI} could not be searched: {exc}") from None
        if dn is None or attrs is None:
            raise CommandError(f"The directory has no entry for {username!r} under {settings.LDAP_USER_SEARCH_BASE} "
                               f"with {settings.LDAP_USER_FILTER}")
        issuer, subject = identity_issuer(), identity_subject(dn, attrs)
        self.stdout.write(f"{user.get_username()} <- {dn}\n  issuer:  {issuer}\n  subject: {subject}")
        if user.is_superuser:
            raise CommandError("A superuser is never bound by a command: if this entry really is that person, add "
                               "the binding by hand in Admin > Users > the user > single sign-on identities, with "
                               "the issuer and subject above")
        if dry_run:
            self.stdout.write("Dry run: nothing changed.")
            return
        with transaction.atomic():
            other = ExternalIdentity.objects.select_for_update().filter(issuer=issuer, subject=subject).first()
            if other is not None and other.user_id != user.id:
                raise CommandError(f"That directory entry is bound to another account already "
                                   f"({other.user.get_username()}): remove that binding first")
            if other is not None:
                self.stdout.write("Already bound: nothing changed.")
                return
            before = list(ExternalIdentity.objects.filter(user=user, issuer=issuer).values_list("subject", flat=True))
            ExternalIdentity.objects.filter(user=user, issuer=issuer).delete()  # a re-created entry replaces it
            ExternalIdentity.objects.create(user=user, issuer=issuer, subject=subject)
            audit_record(actor=None, action="user.directory_bound", obj=user,
                         changes={"source": "ldap", "via": "manage.py directory_bind", "dn": dn, "issuer": issuer,
                                  "before": {"subjects": before}, "after": {"subjects": [subject]}})
        self.stdout.write(self.style.SUCCESS(f"Bound {user.get_username()} to {dn}"))
