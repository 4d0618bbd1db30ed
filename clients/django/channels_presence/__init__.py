"""django-channels-presence's API (package channels_presence), backed by the
PostgreSQL extension presence.  See clients/django/README.md."""

__version__ = "2.0.0"
