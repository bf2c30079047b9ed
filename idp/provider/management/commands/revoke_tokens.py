"""`manage.py revoke_tokens alice [--client site-a]`: end a person's grants at the IdP."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from provider.services import tokens_revoke


class Command(BaseCommand):
    help = (
        "Revoke a person's access and refresh tokens, at every client or at one. Sites notice at "
        "their next token refresh and send the person to sign in again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--client", dest="client_id", help="Only the tokens of this client id")

    def handle(self, *args, username: str, client_id: str | None, **options) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"No user {username!r}.") from None
        count = tokens_revoke(user=user, client_id=client_id)
        self.stdout.write(f"Revoked {count} grant(s) of {username}" + (f" at {client_id}." if client_id else "."))
