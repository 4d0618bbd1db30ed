from django.urls import path

from lobby import consumers

websocket_urlpatterns = [
    path("ws/lobby/<str:room>/", consumers.LobbyConsumer.as_asgi()),
    path("ws/legacy/", consumers.LegacyConsumer.as_asgi()),
]
