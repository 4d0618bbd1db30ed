"""presence_changed, as in django-channels-presence: sent with the keyword
arguments room, added, removed and bulk_change, exactly once per change in
the whole deployment.

- A change made through this package (Room.objects.add/remove,
  Presence.objects.leave_all, prune_presences, the decorators, ORM creates
  and deletes) is signalled by the call itself, in the calling thread, before
  it returns, even inside a transaction that later rolls back.
- A change made elsewhere (pg_cron's prune, psql, a service in another
  language) is signalled by the one process of the deployment whose listener
  holds the election lock (channels_presence.listener), after it commits.

sender is the Room class; room a Room; added / removed Presence instances
(with user_joined / user_left); a prune is one bulk_change=True per room, as
before.  Receivers must accept **kwargs (Django's rule): bulk changes that
the listener signals also carry added_count and removed_count, and a change
of a presence's meta (new) comes with updated=<Presence> and no added or
removed."""

from django.dispatch import Signal

# providing_args (removed in Django 4.0): room, added, removed, bulk_change
presence_changed = Signal()
