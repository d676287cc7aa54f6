"""API tokens: `Authorization: Bearer gtw_…` for the HTTP API and the websocket."""

from __future__ import annotations

from datetime import timedelta

from channels.db import database_sync_to_async
from django.utils import timezone
from ninja.security import HttpBearer

from gtw_site.models import ApiToken, hash_token

LAST_USED_PRECISION = timedelta(seconds=60)


def token_for(raw: str) -> ApiToken | None:
    """The live token (with its user) for a raw bearer value, or None."""
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
    return token


def token_alive(token_id: int) -> bool:
    """Whether a token a socket was opened with still stands (not revoked, its user active)."""
    return ApiToken.objects.filter(pk=token_id, user__is_active=True).exists()


def tokens_alive(token_ids) -> set[int]:
    """token_alive for many tokens in one query (realtime.tokenwatch.SignInBatch): the ids of
    those that still stand."""
    return set(ApiToken.objects.filter(pk__in=token_ids, user__is_active=True).values_list("pk", flat=True))


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request, token):
        api_token = token_for(token)
        if api_token is None:
            return None
        request.user = api_token.user
        # Which requests came with a token rather than a signed-in session (see tokens_api).
        request.api_token = api_token
        return api_token.user


class TokenAuthMiddleware:
    """Lets scripts open the session socket with a bearer token instead of a cookie. The token's
    id rides in the scope (`api_token_id`): sockets re-check it while open (see
    realtime.tokenwatch.AuthWatch), so revoking a token also ends its live connections."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        value = headers.get(b"authorization", b"").decode("latin-1")
        if value.lower().startswith("bearer "):
            token = await database_sync_to_async(token_for)(value[7:].strip())
            if token is not None:
                scope = {**scope, "user": token.user, "api_token_id": token.pk}
        return await self.inner(scope, receive, send)
