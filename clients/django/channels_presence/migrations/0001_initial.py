"""Creates the extension (IF NOT EXISTS: a no-op where an admin created it,
which a role that is not superuser needs) and registers the unmanaged
models, which create no tables: the extension owns them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.RunSQL("CREATE EXTENSION IF NOT EXISTS presence",
                          reverse_sql=migrations.RunSQL.noop),
        migrations.CreateModel(
            name="Room",
            fields=[
                ("channel_name", models.CharField(max_length=255, primary_key=True,
                                                  db_column="name", serialize=False)),
                ("created_at", models.DateTimeField(null=True)),
            ],
            options={"managed": False, "db_table": 'presence"."rooms'},
        ),
        migrations.CreateModel(
            name="Presence",
            fields=[
                ("room", models.ForeignKey("channels_presence.Room", on_delete=models.DO_NOTHING,
                                           db_column="room", db_constraint=False)),
                ("channel_name", models.CharField(max_length=255, primary_key=True,
                                                  db_column="channel", serialize=False)),
                ("user_id", models.CharField(max_length=255, null=True)),
                ("meta", models.JSONField(null=True)),
                ("joined_at", models.DateTimeField(null=True)),
                ("last_seen", models.DateTimeField(null=True)),
            ],
            options={"managed": False, "db_table": 'presence"."presences'},
        ),
    ]
