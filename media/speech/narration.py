"""The narration listener: the GM speaks as the narration streams.

`realtime.broadcast.DeltaStream` tells each listener every delta (on the turn's thread). The
listener splits the deltas into sentences as they arrive and hands each complete sentence to
one synthesis thread per process, so the turn never waits on a voice. Each sentence is stored
content-addressed (store.py) and announced to the session's sockets as `session.audio`
{action_seq, i, url, text, voice}; a sentence that could not be spoken is announced too, with
`ok: false` and "audio unavailable" — the text is already on screen and the turn goes on.

An NPC's line (an NpcSpoke event everyone sees) is spoken in that NPC's voice, in its place
among the GM's sentences when its turn is still streaming.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from gtw_site.providers import ProviderError
from media.speech import store, voices
from media.speech.base import Voice
from media.speech.sentences import SentenceSplitter, split_all
from realtime import broadcast

logger = logging.getLogger(__name__)

UNAVAILABLE = "audio unavailable"
# After a failed synthesis, sentences are announced unavailable at once for this long instead of
# each waiting out the provider's timeout (a dead voice server must not delay the captions).
BREAKER_S = 30.0
VOICE_CACHE_S = 30.0

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_pending: set[Future] = set()
_active: OrderedDict[tuple[int, int], Narration] = OrderedDict()
_active_lock = threading.Lock()
_voices: dict[int, tuple[float, Voice]] = {}
_broken_until = 0.0
ACTIVE_MAX = 256


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # One thread: the local voice runs one sentence at a time anyway (its lock), and
            # sentences then reach the browser in the order they are spoken.
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gtw-tts")
        return _pool


class Narration:
    """One turn's (or opening's, or stage beat's) spoken narration."""

    def __init__(self, session_id: int, action_seq: int, voice: Voice) -> None:
        self.session_id = session_id
        self.action_seq = action_seq
        self.voice = voice
        self.splitter = SentenceSplitter(eager_first=True)
        self.index = 0
        self.generation = 0
        self.silenced = False
        self.lock = threading.Lock()

    def push(self, text: str) -> None:
        with self.lock:
            if self.silenced:
                return
            for sentence in self.splitter.feed(text):
                self._say(sentence, self.voice)

    def flush(self) -> None:
        with self.lock:
            if self.silenced:
                return
            for sentence in self.splitter.end():
                self._say(sentence, self.voice)

    def reset(self) -> None:
        """The preview is discarded (the provider is retried): its queued sentences are dropped
        and the retry is spoken from its start."""
        with self.lock:
            self.splitter = SentenceSplitter(eager_first=True)
            self.generation += 1
            self.index = 0

    def silence(self) -> None:
        """The X-card: nothing more of this narration is spoken, queued sentences included."""
        with self.lock:
            self.silenced = True
            self.splitter.reset()
            self.generation += 1

    def say(self, text: str, voice: Voice) -> None:
        """A whole line in another voice (an NPC), after what the GM has said so far."""
        with self.lock:
            if self.silenced:
                return
            for sentence in self.splitter.end():
                self._say(sentence, self.voice)
            for sentence in split_all(text):
                self._say(sentence, voice)

    def _say(self, sentence: str, voice: Voice) -> None:
        job = (self.session_id, self.action_seq, self.index, self.generation, sentence, voice)
        self.index += 1
        future = _executor().submit(_speak, self, *job, time.monotonic())
        _pending.add(future)
        future.add_done_callback(_pending.discard)


# Someone at the table has voice on: the page says so (POST /api/sessions/{id}/voice/listening)
# when voice is turned on and every few minutes while it stays on. A narration nobody listens to
# is not synthesised — on a 2-core laptop each sentence costs the turns CPU.
LISTENING_TTL_S = 15 * 60


def _listening_key(session_id: int) -> str:
    return f"gtw:voice-listening:{session_id}"


def mark_listening(session_id: int) -> None:
    from django.core.cache import cache

    cache.set(_listening_key(session_id), 1, timeout=LISTENING_TTL_S)


def is_listened(session_id: int) -> bool:
    """GTW_SPEECH["narration"]: "always" speaks every narration (benchmarks, tests); True (the
    default) speaks while someone at the session has voice on; False never."""
    mode = settings.GTW_SPEECH.get("narration", True)
    if mode == "always":
        return True
    if not mode:
        return False
    from django.core.cache import cache

    try:
        return bool(cache.get(_listening_key(session_id)))
    except Exception:  # noqa: BLE001 - Redis away: the text goes on, the voice sits this one out
        return False


def listener(session_id: int, action_seq: int) -> Narration | None:
    """The DeltaStream listener factory (registered in media's ready): a Narration for the turn,
    or None when narration voice is off or nobody at the session listens."""
    if not is_listened(session_id):
        return None
    narration = Narration(session_id, action_seq, gm_voice(session_id))
    with _active_lock:
        _active[(session_id, action_seq)] = narration
        while len(_active) > ACTIVE_MAX:
            _active.popitem(last=False)
    return narration


def gm_voice(session_id: int) -> Voice:
    """The session's GM voice: the campaign's choice (settings["voice"]["gm"]), else its
    personality's tts_profile. Cached briefly: a turn asks once, a burst of turns once."""
    now = time.monotonic()
    cached = _voices.get(session_id)
    if cached and now - cached[0] < VOICE_CACHE_S:
        return cached[1]
    from campaigns.models import PlaySession

    row = (
        PlaySession.objects.filter(pk=session_id)
        .values("campaign__personality__data", "campaign__settings")
        .first()
    ) or {}
    profile = (row.get("campaign__personality__data") or {}).get("tts_profile") or {}
    chosen = ((row.get("campaign__settings") or {}).get("voice") or {}).get("gm")
    voice = voices.gm_voice(profile, override=chosen if isinstance(chosen, str) else None)
    _voices[session_id] = (now, voice)
    return voice


def npc_spoke(session_id: int, events: list) -> None:
    """Event-store listener (types NpcSpoke): speak each public NPC line in the NPC's voice."""
    if not is_listened(session_id):
        return
    for event in events:
        if event.audience is not None:
            continue  # a line only some may see is never spoken to the whole table
        payload = event.payload or {}
        line = str(payload.get("line") or "").strip()
        if not line:
            continue
        action_seq = int(payload.get("action_seq") or event.seq)
        with _active_lock:
            narration = _active.get((session_id, action_seq))
        if narration is None:
            narration = Narration(session_id, action_seq, gm_voice(session_id))
            narration.index = 1000  # after anything the GM's own stream may still say
        gm = narration.voice.key
        voice = voices.npc_voice(
            str(payload.get("npc") or payload.get("name") or ""), payload.get("voice"), gm_key=gm
        )
        narration.say(line, voice)


def xcard_tapped(session_id: int, events: list) -> None:
    """Event-store listener (types XCardTapped): the table stops the scene, so the voice stops —
    every narration of the session still speaking says nothing more (the page stops what it has
    already scheduled)."""
    with _active_lock:
        speaking = [n for (sid, _seq), n in _active.items() if sid == session_id]
    for narration in speaking:
        narration.silence()


def _speak(
    narration: Narration,
    session_id: int,
    action_seq: int,
    i: int,
    generation: int,
    sentence: str,
    voice: Voice,
    queued_at: float,
) -> dict[str, Any] | None:
    """On the synthesis thread: speak one sentence (or find it already spoken) and announce it."""
    global _broken_until
    if narration.generation != generation:
        return None  # the preview was reset before this sentence's turn came
    message: dict[str, Any] = {
        "action_seq": action_seq,
        "i": i,
        "text": sentence,
        "voice": voice.key,
    }
    try:
        if time.monotonic() < _broken_until:
            raise ProviderError("the voice failed moments ago", retryable=True)
        message.update(synthesize(session_id, sentence, voice))
        message["ok"] = True
    except Exception as exc:  # noqa: BLE001 - whatever breaks the voice, the turn's text stands
        if isinstance(exc, ProviderError) and time.monotonic() >= _broken_until:
            _broken_until = time.monotonic() + BREAKER_S
        logger.warning("narration audio for session %s failed: %s", session_id, exc)
        message.update(ok=False, notice=UNAVAILABLE)
    finally:
        close_old_connections()  # telemetry used this thread's connection
    message["queued_ms"] = round((time.monotonic() - queued_at) * 1000, 1)
    if narration.generation != generation:
        return None
    broadcast.audio_ready(session_id, message)
    return message


def synthesize(session_id: int, sentence: str, voice: Voice) -> dict[str, Any]:
    """Speak `sentence` for `session_id` (from the store when spoken before) and grant the
    session its file. {url, key, duration}."""
    from media.speech import registry

    tts = registry.tts()
    key = store.audio_key(tts.name, tts.model, voice, sentence)
    path = store.find(key)
    duration = None
    if path is None:
        speech = tts.synthesize(sentence, voice)
        store.save(key, speech.audio, speech.extension)
        duration = round(speech.duration_s, 3)
    store.grant(session_id, key)
    return {"url": store.url_for(session_id, key), "key": key, "duration": duration}


def drain(timeout: float = 30.0) -> bool:
    """Wait until every queued sentence is spoken (tests, the benchmark). True if all were."""
    deadline = time.monotonic() + timeout
    while _pending:
        if time.monotonic() > deadline:
            return False
        for future in list(_pending):
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                logger.debug("a narration job failed", exc_info=True)
    return True


def reset_state() -> None:
    """Forget active narrations, cached voices and the breaker (tests)."""
    global _broken_until
    with _active_lock:
        _active.clear()
    _voices.clear()
    _broken_until = 0.0
