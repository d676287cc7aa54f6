"""The channel layer the product runs (GTW_CHANNEL_LAYER=pubsub): channels-redis's pub/sub layer,
decoding each group message once per process instead of once per socket.

How a group send reaches the sockets of one Daphne process (channels-redis 4.3, measured for
issue 20): the process holds one Redis subscription per group, whatever its number of sockets, and
its reader task puts the *same* received bytes on the queue of every local channel in the group
(an in-process hub already). What it did per socket was the rest: every consumer's `receive()`
unpacked the msgpack frame again (~1 KB with the rendered partial), and every JSON socket then
encoded the same event to JSON again. At 500 sockets and 20 events/s that is 10,000 decodes and
10,000 encodes a second for a handful of distinct messages.

Here, for the broadcasts every socket takes alike (SHARED_TYPES: events, narration deltas, the
stage roster), the first local consumer to take a message decodes it and the rest reuse the result (keyed
by the identity of the received bytes, which the hub shares; a strong reference keeps the key
from being recycled). Each consumer gets its own shallow copy — top-level keys are its own — and
a shared `FRAMES` scratch dict in which `once()` keeps what every local socket would otherwise
render or encode alike (the JSON frame of an event, a delta's partial). The nested values are
shared between the process's consumers: treat them as read-only, as the consumers already do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

# A per-delivery scratch dict carried in each consumer's copy of a group message.
FRAMES = "_frames"
# Distinct messages in flight at once in one process; far more than a burst ever holds queued
# (a stalled socket's queue keeps its own references, so an evicted entry only costs a decode).
DECODED_KEEP = 256
# The broadcasts every socket of a session takes alike: events, narration deltas, the stage
# roster. Other messages (presence, shared-document updates, notices) decode per socket as the
# plain layer does.
SHARED_TYPES = frozenset({"session.event", "session.delta", "stage.roster"})
# Smaller frames (heal ticks, presence counts) are cheaper to decode than to look up.
SHARE_FROM_BYTES = 256


class FanoutPubSubChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer, one decode per message per process (see the module docstring)."""

    def __init__(self, *args, share: bool | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # False: the plain layer's per-socket decode (settings.GTW_FANOUT_SHARE, an A/B switch).
        self.share = getattr(settings, "GTW_FANOUT_SHARE", True) if share is None else share
        self._decoded: OrderedDict[int, tuple[bytes, dict, dict]] = OrderedDict()

    def deserialize(self, message: bytes) -> dict:
        if not self.share or len(message) < SHARE_FROM_BYTES:
            return super().deserialize(message)
        key = id(message)
        entry = self._decoded.get(key)
        if entry is None or entry[0] is not message:
            decoded = super().deserialize(message)
            if decoded.get("type") not in SHARED_TYPES:
                return decoded
            entry = (message, decoded, {})
            self._decoded[key] = entry
            while len(self._decoded) > DECODED_KEEP:
                self._decoded.popitem(last=False)
        _, decoded, frames = entry
        return {**decoded, FRAMES: frames}


def once(message: dict[str, Any], name: str, make: Callable[[], Any]) -> Any:
    """`make()`, computed once per process for a message every local socket receives alike
    (`name` says which rendering: sockets that differ in what they send use different names).
    A message that came another way (the event store's catch-up, another layer) has no scratch
    dict and is rendered for this socket alone."""
    frames = message.get(FRAMES)
    if frames is None:
        return make()
    try:
        return frames[name]
    except KeyError:
        value = frames[name] = make()
        return value
