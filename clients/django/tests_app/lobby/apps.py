from django.apps import AppConfig


class LobbyConfig(AppConfig):
    name = "lobby"

    def ready(self):
        from . import signals  # noqa: F401 (connects the receivers)
