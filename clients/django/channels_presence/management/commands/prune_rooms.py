"""manage.py prune_rooms: delete the rooms that have no presences, as
django-channels-presence's command did (presence.prune_rooms)."""

from django.core.management.base import BaseCommand

from channels_presence.models import Room


class Command(BaseCommand):
    help = "Delete rooms without presences (presence.prune_rooms)."

    def handle(self, *args, **options):
        Room.objects.prune_rooms()
