"""ASGI application of the chat demo, for Daphne:
HTTP -> Django (the page), WebSocket /ws/chat/<room>/ -> ChatConsumer.

PresenceListenerMiddleware is optional: without it, the listener (which
signals what pg_cron or psql change) starts with the server's first
presence call; with it, with the first request, so that the first server
started is the one that signals (the browser test relies on that)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the imports below

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from channels_presence.listener import PresenceListenerMiddleware  # noqa: E402
from chat.consumers import ChatConsumer  # noqa: E402

application = PresenceListenerMiddleware(ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": URLRouter([path("ws/chat/<str:room>/", ChatConsumer.as_asgi())]),
}))
