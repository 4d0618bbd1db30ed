"""manage.py prune_presences [--age SECONDS]: remove the presences not seen
for CHANNELS_PRESENCE_MAX_AGE seconds (or --age), as django-channels-presence's
command did for cron; presence_changed is sent per room that lost any.
pg_cron can do this in the database instead: manage.py presence_schedule_prune."""

from django.core.management.base import BaseCommand

from channels_presence.models import Room


class Command(BaseCommand):
    help = "Remove stale presences (presence.prune)."

    def add_arguments(self, parser):
        parser.add_argument("--age", type=float, default=None,
                            help="seconds (default: CHANNELS_PRESENCE_MAX_AGE, 60)")

    def handle(self, *args, **options):
        Room.objects.prune_presences(age=options["age"])
