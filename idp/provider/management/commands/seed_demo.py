"""`manage.py seed_demo`: the demo users and the two client sites, idempotently."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from provider.services import application_register, user_ensure


class Command(BaseCommand):
    help = "Create the demo users (alice, admin) and register client sites A and B. Safe to run again."

    def handle(self, *args, **options) -> None:
        missing = [
            name
            for name, value in [
                ("DEMO_PASSWORD", settings.DEMO_PASSWORD),
                ("ADMIN_PASSWORD", settings.ADMIN_PASSWORD),
                *((client["secret_variable"], client["secret"]) for client in settings.DEMO_CLIENTS),
            ]
            if not value
        ]
        if missing:
            raise CommandError(f"Set {', '.join(missing)} to seed the demo data with DJANGO_DEBUG off.")

        for username, variable, password, email, full_name, superuser in [
            ("alice", "DEMO_PASSWORD", settings.DEMO_PASSWORD, "alice@example.com", "Alice Liddell", False),
            ("admin", "ADMIN_PASSWORD", settings.ADMIN_PASSWORD, "admin@example.com", "Site Administrator", True),
        ]:
            try:
                changed = user_ensure(
                    username=username, password=password, email=email, full_name=full_name, superuser=superuser
                )
            except ValidationError as error:
                raise CommandError(f"{variable} is too weak for user {username}: {' '.join(error.messages)}") from None
            self.stdout.write(f"user {username}: {'created or updated' if changed else 'unchanged'}")

        for client in settings.DEMO_CLIENTS:
            registered = application_register(
                name=client["name"],
                client_id=client["client_id"],
                client_secret=client["secret"],
                redirect_uris=[f"{client['url']}/sso/callback/"],
                post_logout_redirect_uris=[f"{client['url']}/sso/signed-out/"],
                backchannel_logout_uri=f"{client['url']}/sso/backchannel-logout/",
                confidential=True,
                trusted=True,
            )
            state = "created or updated" if registered.changed else "unchanged"
            self.stdout.write(f"application {client['name']}: client id {registered.application.client_id} ({state})")
