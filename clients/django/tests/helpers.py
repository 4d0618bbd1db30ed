"""What the tests share: a presence_changed recorder and SQL as an admin."""

import threading

from django.db import connection, connections

from channels_presence.signals import presence_changed


def sql(query, params=(), using="default"):
    """Run SQL on the test's (superuser) connection: an admin's statement."""
    with connections[using].cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def make_stale(channel, age="1 hour", using="default"):
    """What a vanished connection looks like later: an old last_seen."""
    sql("UPDATE presence.presences SET last_seen = now() - %s::interval WHERE channel = %s",
        [age, channel], using)


class Signals:
    """Records presence_changed calls (keyword arguments, thread); wait()
    blocks until one matches.  Use as a context manager."""

    def __init__(self):
        self.calls = []
        self.cond = threading.Condition()

    def __call__(self, sender, **kwargs):
        with self.cond:
            self.calls.append(dict(kwargs, sender=sender, thread=threading.get_ident()))
            self.cond.notify_all()

    def __enter__(self):
        presence_changed.connect(self, weak=False)
        return self

    def __exit__(self, *exc):
        presence_changed.disconnect(self)

    def of(self, room):
        with self.cond:
            return [c for c in self.calls if c["room"].channel_name == room]

    def wait(self, predicate, timeout=5):
        with self.cond:
            if not self.cond.wait_for(lambda: any(predicate(c) for c in self.calls), timeout):
                raise AssertionError("no matching presence_changed within %ss; got %r"
                                     % (timeout, self.calls))
            return next(c for c in self.calls if predicate(c))


def other_connection(using="default"):
    """A psycopg2 connection of its own: another server, psql, pg_cron."""
    import psycopg2
    conn = psycopg2.connect(**connections[using].get_connection_params())
    conn.autocommit = True
    return conn


def listener_backends(using="default"):
    return [pid for (pid,) in sql(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'channels_presence listener%%' "
        "AND datname = current_database()", using=using)]


__all__ = ["sql", "make_stale", "Signals", "other_connection", "listener_backends", "connection"]
