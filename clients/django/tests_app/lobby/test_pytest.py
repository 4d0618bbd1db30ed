"""The same kind of test with pytest-django and pytest-asyncio, as many
projects write them: each test runs in an event loop of its own, which the
presence listener follows (it stops with each loop and closes its
connection, so the test database can be dropped at the end).

    python3 -m pytest -p pytest_django --ds=legacyproject.settings lobby/test_pytest.py
"""

import json

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from lobby.auth import QueryStringUserMiddleware
from lobby.routing import websocket_urlpatterns


async def join(room):
    communicator = WebsocketCommunicator(QueryStringUserMiddleware(URLRouter(websocket_urlpatterns)),
                                         "/ws/lobby/%s/" % room)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("room", ["first-loop", "second-loop"])
async def test_each_join_and_leave_is_broadcast_once(room):
    watcher = await join(room)
    assert json.loads(await watcher.receive_from(timeout=5))["payload"]["lurkers"] == 1
    other = await join(room)
    for communicator in (watcher, other):
        assert json.loads(await communicator.receive_from(timeout=5))["payload"]["lurkers"] == 2
    await other.disconnect()
    assert json.loads(await watcher.receive_from(timeout=5))["payload"]["lurkers"] == 1
    assert await watcher.receive_nothing(timeout=0.5)  # once, not twice
    await watcher.disconnect()
