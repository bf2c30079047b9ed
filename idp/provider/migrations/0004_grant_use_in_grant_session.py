"""GrantUse folds into GrantSession: one row per code, read with the code, marked used by one UPDATE."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def copy_uses(apps, schema_editor):
    GrantSession = apps.get_model("provider", "GrantSession")
    GrantUse = apps.get_model("provider", "GrantUse")
    for use in GrantUse.objects.all().iterator():
        GrantSession.objects.update_or_create(
            grant_id=use.grant_id,
            defaults={"used": use.created, "refresh_token_id": use.refresh_token_id, "access_token_id": use.access_token_id},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("provider", "0003_reauthentication_and_code_replay"),
        migrations.swappable_dependency(settings.OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="grantsession",
            name="login_session",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, to="provider.loginsession"
            ),
        ),
        migrations.AddField(
            model_name="grantsession",
            name="used",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="grantsession",
            name="refresh_token",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="grantsession",
            name="access_token_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(copy_uses, migrations.RunPython.noop),
        migrations.DeleteModel(name="GrantUse"),
    ]
