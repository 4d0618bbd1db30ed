"""presence_changed, sent as in django-channels-presence with the keyword
arguments room, added, removed and bulk_change (plus updated, and
added_count / removed_count on bulk changes).

Unlike the original it is not sent by the process that made the change but
by the NOTIFY listener (channels_presence.listener), once per event the
database announces after commit: changes made by another server, by pg_cron's
prune or by an admin's SQL reach every server that runs a listener.
sender is the Room class; room is a Room; added / removed / updated are
unsaved Presence instances built from the event (see Presence.from_event)."""

from django.dispatch import Signal

# providing_args (deprecated since Django 3.1): room, added, removed, bulk_change
presence_changed = Signal()
