"""Token-in-the-query-string authentication for websockets (?user=NAME),
as mobile clients often do; good enough for tests, not for production."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def user_named(name):
    return get_user_model().objects.get_or_create(username=name)[0]


class QueryStringUserMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        name = parse_qs(scope.get("query_string", b"").decode()).get("user", [""])[0]
        scope = dict(scope, user=await user_named(name) if name else AnonymousUser())
        return await self.app(scope, receive, send)
