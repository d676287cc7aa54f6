"""Who is connected to a session: one entry per open socket (channel name), kept alive by
heartbeats, in Redis so every Daphne process sees the same roster.

Per session, three keys (the prefix is `settings.GTW_PRESENCE_KEY_PREFIX`, default shown):

    gtw:presence:<session>:beats   sorted set   channel name -> last heartbeat (unix seconds)
    gtw:presence:<session>:conns   hash         channel name -> username
    gtw:presence:<session>:teams   hash         username -> team (the stage roster's fireteam)

A socket registers on connect (`join`), beats every `heartbeat_interval()` seconds and on every
frame it receives (`heartbeat`), and unregisters on disconnect (`leave`). Every read prunes the
entries whose last beat is older than `ttl()`, so when a Daphne process dies without running its
disconnects, its sockets' entries vanish within the TTL; its clients reconnect to a live process
and register again. Presence is therefore always rebuilt from live connections, never trusted
from a previous life. Teams are kept per user, not per socket, so a reconnecting player keeps
theirs; the keys expire a day after the session's last presence write.

All writes and prunes are single Lua scripts, so two processes never see a half-made entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable

from django.conf import settings
from redis import asyncio as aioredis

logger = logging.getLogger(__name__)

# A beat on a received frame is skipped if the socket beat less than this long ago: a chatty
# client costs at most one Redis call per second.
FRAME_BEAT_MIN_S = 1.0
# Presence changes in one session are announced at most once per this window per process: 500
# sockets joining at once would otherwise cost 500 x 500 party-panel messages.
ANNOUNCE_COALESCE_S = 0.15
KEY_TTL_S = 86400
MAX_CONNECTIONS = 20  # per process; presence calls are one round trip each
PRUNE_CHUNK = 500  # Lua's unpack() has a stack limit; prune ghosts in chunks.

# Per event loop (redis-py's asyncio connections belong to the loop that made them; Daphne has
# one loop, tests one per test), weakly, so a finished loop's entries go with it.
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> (client, scripts)
# loop -> {(session, kind): task}
_announcing: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ttl() -> float:
    """settings.GTW_PRESENCE_TTL_S (default 30 s: three missed beats before an entry is a ghost,
    so one late beat from a busy event loop never drops anyone)."""
    return settings.GTW_PRESENCE_TTL_S


def heartbeat_interval() -> float:
    return settings.GTW_PRESENCE_HEARTBEAT_S


def keys(session_id: int) -> tuple[str, str, str]:
    # The prefix is a setting so test runs that share one Redis (each with its own database,
    # hence the same session ids) keep apart.
    base = f"{settings.GTW_PRESENCE_KEY_PREFIX}:{session_id}"
    return f"{base}:beats", f"{base}:conns", f"{base}:teams"


# KEYS: beats, conns, teams. Every script starts with the same prune (ARGV[1] = cutoff) and
# returns what it pruned as {channel, username, ...}.
_PRUNE = """
local pruned = {}
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for i = 1, #stale, CHUNK do
  local part = {unpack(stale, i, math.min(i + CHUNK - 1, #stale))}
  local users = redis.call('HMGET', KEYS[2], unpack(part))
  for j = 1, #part do
    pruned[#pruned + 1] = part[j]
    pruned[#pruned + 1] = users[j] or ''
  end
  redis.call('ZREM', KEYS[1], unpack(part))
  redis.call('HDEL', KEYS[2], unpack(part))
end
""".replace("CHUNK", str(PRUNE_CHUNK))

_TOUCH = """
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], KEY_TTL) end
""".replace("KEY_TTL", str(KEY_TTL_S))

# ARGV: cutoff, now, channel, username, team ('' = leave as is), set_team ('1'/'0').
# Returns {added (0/1), pruned...}. Used for join and for heartbeats (an upsert: a socket whose
# entry was pruned while its process was stalled, or whose Redis restarted, registers again).
_UPSERT = (
    _PRUNE
    + """
local added = redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
if ARGV[6] == '1' then
  if ARGV[5] == '' then redis.call('HDEL', KEYS[3], ARGV[4])
  else redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
end
"""
    + _TOUCH
    + """
table.insert(pruned, 1, added)
return pruned
"""
)

# ARGV: cutoff, channel. Returns {removed (0/1), pruned...}.
_LEAVE = (
    _PRUNE
    + """
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
table.insert(pruned, 1, removed)
return pruned
"""
)

# ARGV: cutoff. Returns {pruned_count, conns as {channel, username, ...}, teams as {...}}.
_READ = (
    _PRUNE
    + """
return {#pruned / 2, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"""
)


def _client() -> tuple[aioredis.Redis, dict]:
    loop = asyncio.get_running_loop()
    entry = _clients.get(loop)
    if entry is None:
        # Blocking: a connect storm of hundreds of sockets queues for a connection instead of
        # failing with "Too many connections" (the plain pool's behaviour at its limit).
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=MAX_CONNECTIONS, timeout=10, decode_responses=True
        )
        client = aioredis.Redis(connection_pool=pool)
        scripts = {
            name: client.register_script(src)
            for name, src in (("upsert", _UPSERT), ("leave", _LEAVE), ("read", _READ))
        }
        entry = _clients[loop] = (client, scripts)
    return entry


async def _run(name: str, session_id: int, args: list) -> list:
    _, scripts = _client()
    return await scripts[name](keys=list(keys(session_id)), args=args)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _usernames(conns: list[str]) -> list[str]:
    return sorted(set(conns[1::2]))


# ---- the API ------------------------------------------------------------------------------


async def join(
    session_id: int, username: str, channel: str, *, team: str | None = None, now: float | None = None
) -> list[str]:
    """Register one socket. With `team`, also (re)assign the user's team. Returns `online()`."""
    t = _now(now)
    await _run("upsert", session_id, [t - ttl(), t, channel, username, team or "", "1" if team else "0"])
    return await online(session_id, now=t)


async def heartbeat(session_id: int, username: str, channel: str, *, now: float | None = None) -> bool:
    """Mark one socket alive (re-registering it if its entry was pruned). True when the roster
    may have changed — this socket was missing, or ghosts were pruned — and deserves an
    announcement."""
    t = _now(now)
    result = await _run("upsert", session_id, [t - ttl(), t, channel, username, "", "0"])
    return bool(result[0]) or len(result) > 1


async def leave(session_id: int, channel: str, *, now: float | None = None) -> list[str]:
    """Unregister one socket. Returns `online()` (the user stays online while another tab is open)."""
    t = _now(now)
    await _run("leave", session_id, [t - ttl(), channel])
    return await online(session_id, now=t)


async def online(session_id: int, *, now: float | None = None) -> list[str]:
    """Usernames with at least one live socket, sorted, each once."""
    _, conns, _ = await _run("read", session_id, [_now(now) - ttl()])
    return _usernames(conns)


async def presence_snapshot(session_id: int, *, now: float | None = None) -> list[dict]:
    """The roster: `[{"user", "team", "channels"}]` sorted by user, `channels` being the live
    sockets' channel names (sorted) — what a stage moderator needs to move someone's sockets
    into a team group."""
    _, conns, teams = await _run("read", session_id, [_now(now) - ttl()])
    team_of = dict(zip(teams[::2], teams[1::2], strict=True))
    by_user: dict[str, list[str]] = {}
    for channel, username in zip(conns[::2], conns[1::2], strict=True):
        by_user.setdefault(username, []).append(channel)
    return [
        {"user": user, "team": team_of.get(user), "channels": sorted(channels)}
        for user, channels in sorted(by_user.items())
    ]


async def set_team(session_id: int, username: str, team: str | None) -> None:
    """Put a user on a team (None takes them off). Kept per user, so it holds across reconnects
    and may be set before they connect."""
    client, _ = _client()
    _, _, teams_key = keys(session_id)
    async with client.pipeline(transaction=True) as pipe:
        if team:
            pipe.hset(teams_key, username, team)
        else:
            pipe.hdel(teams_key, username)
        pipe.expire(teams_key, KEY_TTL_S)
        await pipe.execute()


def announce_soon(
    session_id: int, announce: Callable[[list[str]], Awaitable[None]], *, kind: str = "play"
) -> None:
    """Call `announce(online)` once, ANNOUNCE_COALESCE_S from now, unless a call for this
    session and `kind` is already pending in this process (it will read the roster then, so it
    includes this change). Each kind of socket (the play page's party panel, the stage's count)
    announces to its own group, so one kind's pending call never stands in for another's. The
    roster is read after the pending mark is cleared: a change that lands while we read
    schedules another announcement, so the last one sent is always current."""
    loop = asyncio.get_running_loop()
    pending = _announcing.setdefault(loop, {})
    key = (session_id, kind)
    if key in pending:
        return

    async def fire():
        try:
            await asyncio.sleep(ANNOUNCE_COALESCE_S)
        finally:
            pending.pop(key, None)
        try:
            roster = await online(session_id)
            await announce(roster)
            # Another process may have announced a newer roster before ours went out (each reads
            # then renders then sends); if the roster moved since our read, ours may be the stale
            # one to arrive last, so go again. The last announcement is then always current.
            if await online(session_id) != roster:
                announce_soon(session_id, announce, kind=kind)
        except Exception:
            logger.warning("presence announcement for session %s failed", session_id, exc_info=True)

    pending[key] = loop.create_task(fire())
