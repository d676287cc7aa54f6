"""API tokens: `Authorization: Bearer gtw_…` for the HTTP API and the websocket."""

from __future__ import annotations

from datetime import timedelta

from channels.db import database_sync_to_async
from django.utils import timezone
from ninja.security import HttpBearer

from gtw_site.models import ApiToken, hash_token

LAST_USED_PRECISION = timedelta(seconds=60)


def user_for_token(raw: str):
    if not raw or not raw.startswith(ApiToken.PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
    if token is None or not token.user.is_active:
        return None
    # Tells the owner which token is still in use; a minute's precision is plenty, and skipping
    # the write keeps a commit off every scripted request.
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request, token):
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


class TokenAuthMiddleware:
    """Lets scripts open the session socket with a bearer token instead of a cookie."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        value = headers.get(b"authorization", b"").decode("latin-1")
        if value.lower().startswith("bearer "):
            user = await database_sync_to_async(user_for_token)(value[7:].strip())
            if user is not None:
                scope = {**scope, "user": user}
        return await self.inner(scope, receive, send)
