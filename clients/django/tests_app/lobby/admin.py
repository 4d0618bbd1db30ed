from django.contrib import admin

from channels_presence.models import Presence, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("channel_name",)


@admin.register(Presence)
class PresenceAdmin(admin.ModelAdmin):
    list_display = ("room", "channel_name", "user", "last_seen")
    list_select_related = ("room", "user")
    list_filter = ("room",)
