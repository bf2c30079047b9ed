"""`manage.py register_app`: register an OAuth application from the shell."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from provider.services import application_register


class Command(BaseCommand):
    help = (
        "Register an OAuth2/OIDC application (authorization code flow with PKCE). "
        "Prints its client id and, for a confidential client, its secret: shown this once only."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Name shown to people and administrators")
        parser.add_argument(
            "--redirect-uri",
            action="append",
            required=True,
            dest="redirect_uris",
            help="Exact redirect URI; repeat for several",
        )
        parser.add_argument(
            "--post-logout-redirect-uri",
            action="append",
            default=[],
            dest="post_logout_redirect_uris",
            help="Where the IdP may send people after signing out; repeat for several",
        )
        parser.add_argument(
            "--backchannel-logout-uri",
            default="",
            help="Where the IdP posts a logout token when a person signs out (OIDC Back-Channel Logout)",
        )
        kind = parser.add_mutually_exclusive_group()
        kind.add_argument(
            "--confidential",
            dest="confidential",
            action="store_true",
            default=True,
            help="A server-side client with a secret (the default)",
        )
        kind.add_argument(
            "--public",
            dest="confidential",
            action="store_false",
            help="A client that cannot keep a secret (native or browser app)",
        )
        parser.add_argument("--trusted", action="store_true", help="First-party application: skip the consent page")
        parser.add_argument("--client-id", help="Choose the client id instead of generating one")

    def handle(
        self,
        *args,
        name: str,
        redirect_uris,
        post_logout_redirect_uris,
        backchannel_logout_uri,
        confidential,
        trusted,
        client_id,
        **options,
    ) -> None:
        from oauth2_provider.models import get_application_model

        if client_id and get_application_model().objects.filter(client_id=client_id).exists():
            raise CommandError(f"An application with client id {client_id!r} already exists.")
        try:
            registered = application_register(
                name=name,
                redirect_uris=redirect_uris,
                post_logout_redirect_uris=post_logout_redirect_uris,
                backchannel_logout_uri=backchannel_logout_uri,
                confidential=confidential,
                trusted=trusted,
                client_id=client_id,
            )
        except ValidationError as error:
            messages = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in error.message_dict.items())
            raise CommandError(f"Not registered: {messages}") from None
        self.stdout.write(f"client_id: {registered.application.client_id}")
        if registered.client_secret:
            self.stdout.write(f"client_secret: {registered.client_secret}")
            self.stdout.write("Keep the secret now: it is stored hashed and cannot be shown again.")
