"""django-channels-presence's tables, as its own first migration made them,
so that databases where it ran and new ones follow the same history: 0002
then hands presence over to the extension (and replaces these tables with
views)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="Room",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False,
                                        verbose_name="ID")),
                ("channel_name", models.CharField(help_text="Group channel name for this room",
                                                  max_length=255, unique=True)),
            ],
        ),
        migrations.CreateModel(
            name="Presence",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False,
                                        verbose_name="ID")),
                ("channel_name", models.CharField(
                    help_text="Reply channel for connection that is present", max_length=255)),
                ("last_seen", models.DateTimeField(default=django.utils.timezone.now)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           to="channels_presence.room")),
                ("user", models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE,
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={"unique_together": {("room", "channel_name")}},
        ),
    ]
