"""Back-channel logout deliveries left to the worker, kept in the database for the admin and /-/metrics."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("provider", "0004_grant_use_in_grant_session"),
        migrations.swappable_dependency(settings.OAUTH2_PROVIDER_APPLICATION_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="BackchannelDelivery",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "Pending"), ("failed", "Failed"), ("delivered", "Delivered")],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("last_error", models.CharField(blank=True, max_length=200, verbose_name="last error")),
                ("created", models.DateTimeField(default=django.utils.timezone.now, verbose_name="signed out")),
                ("last_attempt", models.DateTimeField(blank=True, null=True)),
                (
                    "next_attempt",
                    models.DateTimeField(
                        blank=True, help_text="When the worker tries again (pending deliveries).", null=True
                    ),
                ),
                ("job_id", models.CharField(blank=True, max_length=64)),
                (
                    "application",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="backchannel_deliveries",
                        to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
                    ),
                ),
                (
                    "login_session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="backchannel_deliveries",
                        to="provider.loginsession",
                    ),
                ),
            ],
            options={
                "verbose_name": "back-channel logout delivery",
                "verbose_name_plural": "back-channel logout deliveries",
                "indexes": [models.Index(fields=["status", "application"], name="backchannel_delivery_status")],
                "constraints": [
                    models.UniqueConstraint(fields=("application", "login_session"), name="backchannel_delivery_once")
                ],
            },
        ),
    ]
