from django.core.management.base import BaseCommand
from oauth2_provider.models import Application


class Command(BaseCommand):
    help = "Register (or update) the service desk as a confidential OIDC client of this provider."

    def add_arguments(self, parser):
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--client-secret", required=True)
        parser.add_argument("--redirect-uri", action="append", required=True)
        parser.add_argument("--post-logout-redirect-uri", action="append", default=[])
        parser.add_argument("--name", default="Servicedesk")

    def handle(self, *args, **options):
        app = Application.objects.filter(client_id=options["client_id"]).first() or Application(
            client_id=options["client_id"])
        app.name = options["name"]
        app.client_type = Application.CLIENT_CONFIDENTIAL
        app.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
        app.algorithm = Application.RS256_ALGORITHM
        app.client_secret = options["client_secret"]  # hashed on save
        app.redirect_uris = " ".join(options["redirect_uri"])
        app.post_logout_redirect_uris = " ".join(options["post_logout_redirect_uri"])
        app.skip_authorization = False  # people are asked once for their consent, as most providers do
        app.save()
