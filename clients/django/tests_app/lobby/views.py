from django.contrib.auth import get_user_model
from django.http import JsonResponse

from channels_presence.models import Presence


def online(request, room):
    """Who is in a room, with the ORM."""
    User = get_user_model()
    users = User.objects.filter(presence__room__channel_name=room).distinct().order_by("username")
    return JsonResponse({
        "users": [u.username for u in users],
        "anonymous": Presence.objects.filter(room__channel_name=room, user__isnull=True).count(),
    })
