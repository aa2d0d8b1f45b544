from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from tests.oidc_provider.idp.models import Person


class Command(BaseCommand):
    help = "Create or update a person of the provider's directory: password, email, name, groups."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="")
        parser.add_argument("--groups", default="", help="comma-separated group names (the groups claim)")
        parser.add_argument("--unverified", action="store_true", help="email_verified is false")

    def handle(self, *args, username, password, email, name, groups, unverified, **options):
        user, _ = User.objects.get_or_create(username=username)
        user.first_name, _, user.last_name = name.partition(" ")
        user.email = email
        user.set_password(password)
        user.save()
        Person.objects.update_or_create(user=user, defaults={"email_verified": not unverified})
        user.groups.set([Group.objects.get_or_create(name=g.strip())[0] for g in groups.split(",") if g.strip()])
