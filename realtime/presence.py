"""Who is connected to a session, kept in Redis (a hash of user → open sockets)."""

from __future__ import annotations

from django.conf import settings
from redis import asyncio as aioredis

_clients: dict[int, aioredis.Redis] = {}


def _key(session_id: int) -> str:
    return f"gtw:presence:session:{session_id}"


def _client() -> aioredis.Redis:
    import asyncio

    loop_id = id(asyncio.get_running_loop())
    client = _clients.get(loop_id)
    if client is None:
        client = aioredis.from_url(settings.REDIS_URL, decode_responses=True)
        _clients[loop_id] = client
    return client


async def join(session_id: int, username: str) -> list[str]:
    r = _client()
    await r.hincrby(_key(session_id), username, 1)
    await r.expire(_key(session_id), 86400)
    return await online(session_id)


async def leave(session_id: int, username: str) -> list[str]:
    r = _client()
    left = await r.hincrby(_key(session_id), username, -1)
    if left <= 0:
        await r.hdel(_key(session_id), username)
    return await online(session_id)


async def online(session_id: int) -> list[str]:
    r = _client()
    return sorted(await r.hkeys(_key(session_id)))
