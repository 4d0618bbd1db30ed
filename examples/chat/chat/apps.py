from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self):
        from . import receivers  # noqa: F401 (connects the presence_changed receiver)
