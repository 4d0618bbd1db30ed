"""The chat page.  No login in this demo: ?name= picks (or creates) the
Django user of that name; without a name, the visitor is anonymous."""

import re

from django.conf import settings
from django.shortcuts import render


def clean(value, default):
    """Room and user names: letters, digits, '-', '_', '.' (group names)."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "", value or "")[:50]
    return value or default


def index(request):
    return render(request, "chat/index.html", {
        "room": clean(request.GET.get("room"), "lobby"),
        "name": clean(request.GET.get("name"), ""),
        "heartbeat_ms": int(settings.CHAT_HEARTBEAT * 1000),
        "heartbeat_s": "%g" % round(settings.CHAT_HEARTBEAT, 1),
        "max_age": settings.CHANNELS_PRESENCE_MAX_AGE,
    })
