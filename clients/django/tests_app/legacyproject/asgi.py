"""HTTP to Django, websockets to the lobby's consumers.  Nothing about
presence here: the drop-in starts its listener by itself."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacyproject.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from lobby.auth import QueryStringUserMiddleware  # noqa: E402
from lobby.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": QueryStringUserMiddleware(URLRouter(websocket_urlpatterns)),
})
