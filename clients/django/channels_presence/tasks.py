"""django-channels-presence's celery tasks, kept for import compatibility.
With the extension, pg_cron prunes (manage.py presence_schedule_prune) and
these are not needed; they are celery shared tasks when celery is installed,
plain functions otherwise."""

from .models import Room

try:
    from celery import shared_task
except ImportError:  # no celery: plain functions
    def shared_task(*args, **kwargs):
        return lambda func: func


@shared_task(name="channels_presence.tasks.prune_presence")
def prune_presence():
    return Room.objects.prune_presences()


@shared_task(name="channels_presence.tasks.prune_rooms")
def prune_rooms():
    return Room.objects.prune_rooms()
