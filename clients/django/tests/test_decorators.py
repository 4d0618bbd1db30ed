"""touch_presence and remove_presence on real consumers (sync, as in
django-channels-presence's README, and async) through Channels'
WebsocketCommunicator: connect joins, a '"heartbeat"' touches without
reaching receive(), other messages touch and reach it, a pruned channel
re-joins on its next message (presence_pruned), disconnect leaves."""

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import TransactionTestCase

from .consumers import ROOM, AsyncPresenceConsumer, SyncPresenceConsumer


# Not thread-sensitive (database_sync_to_async is): with asgiref 3.6, a
# thread-sensitive helper hung in the second async test of a run.  Each call
# gets a thread and a connection of its own, closed after use.
@sync_to_async(thread_sensitive=False)
def presences():
    """{channel: seconds since last_seen} of the test room."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT channel, extract(epoch FROM now() - last_seen) "
                           "FROM presence.presences WHERE room = %s", [ROOM])
            return {channel: float(age) for channel, age in cursor.fetchall()}
    finally:
        connection.close()  # this thread's: the test database is dropped at the end


@sync_to_async(thread_sensitive=False)
def admin_sql(query):
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, [ROOM])
    finally:
        connection.close()


class DecoratorTests(TransactionTestCase):
    async def check_consumer(self, consumer):
        await admin_sql("DELETE FROM presence.rooms WHERE name = %s")  # earlier runs
        communicator = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
        connected, _ = await communicator.connect(timeout=5)
        self.assertTrue(connected)
        [channel] = (await presences()).keys()

        # A heartbeat touches and stops there: receive() would echo it.
        await admin_sql("UPDATE presence.presences SET last_seen = now() - interval '1 hour' "
                        "WHERE room = %s")
        await communicator.send_to(text_data='"heartbeat"')
        self.assertTrue(await communicator.receive_nothing(timeout=0.5))
        self.assertLess((await presences())[channel], 60)

        # Any other message touches and reaches receive().
        await admin_sql("UPDATE presence.presences SET last_seen = now() - interval '1 hour' "
                        "WHERE room = %s")
        await communicator.send_to(text_data="hello")
        self.assertEqual(await communicator.receive_from(timeout=5), "hello")
        self.assertLess((await presences())[channel], 60)

        # Pruned while silent: the next heartbeat finds no presence and the
        # consumer's presence_pruned() joins again.
        await admin_sql("DELETE FROM presence.presences WHERE room = %s")
        await communicator.send_to(text_data='"heartbeat"')
        self.assertTrue(await communicator.receive_nothing(timeout=0.5))
        self.assertEqual(list(await presences()), [channel])

        # Disconnect leaves every room.
        await communicator.disconnect()
        self.assertEqual(await presences(), {})

    async def test_sync_consumer(self):
        await self.check_consumer(SyncPresenceConsumer)

    async def test_async_consumer(self):
        await self.check_consumer(AsyncPresenceConsumer)
