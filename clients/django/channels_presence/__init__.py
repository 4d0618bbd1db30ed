"""django-channels-presence's API (package channels_presence), backed by the
PostgreSQL extension presence: the models read its tables, writes go through
its SQL functions, presence_changed comes from its NOTIFY events and pg_cron
does the pruning.  See clients/django/README.md."""

default_app_config = "channels_presence.apps.ChannelsPresenceConfig"
