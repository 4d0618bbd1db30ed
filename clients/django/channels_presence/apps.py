"""App config: maps CHANNELS_PRESENCE_MAX_AGE (seconds) to the extension's
presence.max_age on every new database connection, so prune_presences()
without an age uses it, as django-channels-presence did."""

from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created


def set_max_age(sender, connection, **kwargs):
    """connection_created receiver: SET presence.max_age for this session."""
    max_age = getattr(settings, "CHANNELS_PRESENCE_MAX_AGE", None)
    if max_age is None or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_catalog.set_config('presence.max_age', %s, false)",
                       ["%ds" % int(max_age)])


class ChannelsPresenceConfig(AppConfig):
    name = "channels_presence"
    verbose_name = "Channels presence (PostgreSQL extension presence)"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        connection_created.connect(set_max_age, dispatch_uid="channels_presence.set_max_age")
