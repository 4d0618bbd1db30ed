"""The app config.  Its class keeps django-channels-presence's name,
RoomsConfig, which projects import; INSTALLED_APPS may name
"channels_presence" or "channels_presence.apps.RoomsConfig"."""

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_delete


class RoomsConfig(AppConfig):
    name = "channels_presence"
    label = "channels_presence"
    verbose_name = "Channels presence"
    default = True
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from . import models  # noqa: F401 (the models' module)
        from .forward import connect_forwarding

        post_delete.connect(models._user_deleted, sender=settings.AUTH_USER_MODEL,
                            dispatch_uid="channels_presence.user_deleted")
        connect_forwarding()
