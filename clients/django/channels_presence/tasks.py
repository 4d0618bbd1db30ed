"""django-channels-presence's celery tasks (celery shared tasks when celery
is installed, plain functions otherwise).  pg_cron makes them unnecessary
(manage.py presence_schedule_prune), but beat schedules that name them keep
working.  Like the original, they return None."""

from .models import Room

try:
    from celery import shared_task
except ImportError:  # no celery: plain functions
    def shared_task(*args, **kwargs):
        return lambda func: func


@shared_task(name="channels_presence.tasks.prune_presence")
def prune_presence():
    Room.objects.prune_presences()


# The name the original's documentation gives the task.
@shared_task(name="channels_presence.tasks.prune_presences")
def prune_presences():
    Room.objects.prune_presences()


@shared_task(name="channels_presence.tasks.prune_rooms")
def prune_rooms():
    Room.objects.prune_rooms()
