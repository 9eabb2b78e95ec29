"""``manage.py ensure_admin``: make sure a superuser exists so a fresh site can be logged into.

Username from ``MAP_ADMIN_USER`` (default ``admin``). The password comes from
``MAP_ADMIN_PASSWORD``; without it a random one is generated and printed once, when the user is
created. An existing user keeps its password unless ``MAP_ADMIN_PASSWORD`` is set. The user's API
token is printed every time, for an analyst's first ``Authorization: Token <key>`` call.
"""

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Create or update the superuser MAP_ADMIN_USER (default 'admin'); password from "
        "MAP_ADMIN_PASSWORD or generated and printed once. Prints the user's API token."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("MAP_ADMIN_USER", "").strip() or "admin"
        password = os.environ.get("MAP_ADMIN_PASSWORD", "")
        User = get_user_model()  # noqa: N806 - Django's idiom for the user class

        with transaction.atomic():
            user = User.objects.select_for_update().filter(username=username).first()
            created = user is None
            generated = None
            if created:
                user = User(username=username)
                if not password:
                    generated = password = secrets.token_urlsafe(18)
            if password:
                self._warn_if_weak(password, user)
                user.set_password(password)
            flags_changed = not (user.is_staff and user.is_superuser and user.is_active)
            user.is_staff = user.is_superuser = user.is_active = True
            if created or password or flags_changed:
                user.save()
            token, _ = Token.objects.get_or_create(user=user)

        if created and generated:
            self.stdout.write(
                f"Created superuser '{username}' with generated password: {generated}\n"
                "  (shown only this once; set MAP_ADMIN_PASSWORD to choose it yourself)"
            )
        elif created:
            self.stdout.write(f"Created superuser '{username}' (password from MAP_ADMIN_PASSWORD)")
        elif password:
            self.stdout.write(f"Superuser '{username}' exists; password set to MAP_ADMIN_PASSWORD")
        else:
            self.stdout.write(
                f"Superuser '{username}' already exists; password left unchanged "
                "(set MAP_ADMIN_PASSWORD to reset it)"
            )
        self.stdout.write(f"API token for '{username}': {token.key}")

    def _warn_if_weak(self, password: str, user: Any) -> None:
        """Accept the operator's choice, but say so if Django's validators would reject it."""
        if not password.strip():
            raise CommandError("MAP_ADMIN_PASSWORD is blank")
        try:
            validate_password(password, user)
        except ValidationError as exc:
            self.stderr.write("Warning: MAP_ADMIN_PASSWORD is weak: " + " ".join(exc.messages))
