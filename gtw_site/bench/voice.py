"""`gtw bench voice`: push-to-talk and the GM's voice, timed where the player sits.

A throw-away `gtw up` (own data folder var/bench-voice, local faster-whisper tiny.en and piper, one
thread each, the offline narrator at its default pacing) and one player on loopback in this
process: a bearer token for the API and the socket, a session cookie for the audio files.

The same fixed set of spoken game actions every run (ACTIONS), each said by the bundled piper
voice (three of its offline variations, in turn, noise off so the audio is the same every run)
and encoded as webm/opus — what a browser's MediaRecorder sends.

- **stt**: end of speech (the client has the recording) → the transcript back at the client:
  upload, PyAV decode, loudness gate, VAD, Whisper. Every action of the set.
- **wer**: word error rate of those transcripts against the text said (lower case, no
  punctuation), summed over the set.
- **tts first audio**: the text of the first spoken piece (a sentence, or the first clause of a
  long first sentence) complete at the client (the delta that completed it has arrived) → its
  audio fetched and playable at the client (the file's GET done).
- **speech → audio**: end of speech → transcript → the action sent → the first sentence of the
  GM's answer fetched and playable at the client (the whole loop a player hears).

Prints percentiles, a final JSON line, and (unless --no-write) its row in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gtw_site.bench.common import (
    BASE_DIR,
    DATA_DIR,
    DOC,
    HTTP,
    UNSET_ENV,
    json_ms,
    machine_text,
    percentile,
    server_failed,
    start_server,
    stop_server,
    update_section,
    wait_healthy,
)

SECTION = "## gtw bench voice"
# Its own data folder (own embedded PostgreSQL + Redis): never a game's, nor another bench's.
VOICE_DIR = DATA_DIR.parent / "bench-voice"
TURN_TIMEOUT_S = 40.0
QUIET_S = 1.5  # after a turn's Narration and first audio, wait until no audio arrived for this long
BENCH_ENV = {
    "GTW_DATA_DIR": str(VOICE_DIR),
    "GTW_NARRATOR_PROVIDER": "offline",
    "GTW_STT_PROVIDER": "local",
    "GTW_TTS_PROVIDER": "local",
    "GTW_TTS_NARRATION": "always",
    # A fresh audio store every run: sentences cached by an earlier run would cost nothing.
    "GTW_TTS_AUDIO_DIR": str(VOICE_DIR / "speech"),
    # One player sends back to back, faster than a player is allowed to: latency, not quota.
    "GTW_ACTION_RATE_LIMIT": "0",
    "GTW_SPEECH_RATE_LIMIT": "0",
    # Scene pictures paint on their own cluster at every scene change; here they would only add
    # noise to the voice figures on a 2-core machine.
    "GTW_IMAGE_AUTO": "0",
}

# The fixed set: things players say at the table (no digits: "two" vs "2" is not an error).
ACTIONS = (
    "I open the airlock and step outside.",
    "Scan the derelict freighter for survivors.",
    "I hack the door panel.",
    "Ask the quartermaster about the missing cargo.",
    "I draw my pistol and take cover behind the crates.",
    "Check the reactor readings for anything strange.",
    "I climb up the maintenance shaft.",
    "Tell the captain we need to leave now.",
    "I search the body for a keycard.",
    "Patch the hull breach before the air runs out.",
    "I sneak past the guards in the shadows.",
    "Fire the forward cannons at the pirate ship.",
    "I try to persuade the smuggler to help us.",
    "Reroute power from the shields to the engines.",
    "Look for another way into the vault.",
    "I pick the lock on the storage locker.",
    "Warn the others that someone is following us.",
    "I run a diagnostic on the navigation computer.",
    "Offer the merchant a fair price for the map.",
    "Jump the gap to the next platform.",
    "I listen at the door before opening it.",
    "Signal the relay station on an open channel.",
    "Bandage the wounded pilot and keep her awake.",
    "I examine the strange symbols on the wall.",
)
VOICES = ("narrator", "low", "bright")
_WORD = re.compile(r"[a-z']+")


# ---- audio, made in this process ----------------------------------------------------------------


def recordings() -> list[tuple[str, bytes]]:
    """(text, webm/opus bytes) for every action, said by the bundled piper voice."""
    import numpy as np

    from media.speech import voices
    from media.speech.tts_local import LocalTextToSpeech

    tts = LocalTextToSpeech()
    made = []
    for i, text in enumerate(ACTIONS):
        # No noise: piper samples it at random, and the same set must be the same audio every run.
        voice = dataclasses.replace(voices.CATALOGUE[VOICES[i % len(VOICES)]], noise_scale=0.0, noise_w=0.0)
        speech = tts.synthesize(text, voice)
        import wave

        with wave.open(io.BytesIO(speech.audio), "rb") as wav:
            rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32) / 32768
        pad = np.zeros(int(rate * 0.3), dtype=np.float32)  # a press starts and ends a little apart
        made.append((text, webm_opus(np.concatenate([pad, pcm, pad]), rate)))
    return made


def webm_opus(samples, rate: int) -> bytes:
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as box:
        stream = box.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=48000)
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for resampled in resampler.resample(frame):
            for packet in stream.encode(resampled):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("-", " "))


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


# ---- the game, made through the services ----------------------------------------------------------


def _setup() -> tuple[int, str, str]:
    """A fresh campaign and session, one player with a character: (session id, token, cookie)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model

    from campaigns import services
    from campaigns.models import Membership, PlaySession
    from gtw_site.models import ApiToken

    for old in PlaySession.objects.filter(status=PlaySession.Status.ACTIVE):
        services.session_end(session=old, membership=Membership.objects.get(campaign=old.campaign, role="gm"))
    users = get_user_model().objects
    gm, _ = users.get_or_create(username="bench-gm", defaults={"password": "!"})
    player, _ = users.get_or_create(username="bench-voice", defaults={"password": "!"})
    run = secrets.token_hex(3)
    campaign = services.campaign_create(user=gm, name=f"voice bench {run}", pack_slug="starter")
    gm_membership = Membership.objects.get(campaign=campaign, user=gm)
    membership = services.invite_accept(
        code=services.invite_create(membership=gm_membership).code, user=player
    )
    services.character_create(membership=membership, name="Kira Vance", archetype="netrunner")
    ApiToken.objects.filter(user=player, name="bench").delete()
    token = ApiToken.issue(user=player, name="bench")[1]
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(player.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = player.get_session_auth_hash()
    store.save()
    session = services.session_open(membership=gm_membership, title=f"voice bench {run}")
    return session.pk, token, store.session_key


# ---- the client ------------------------------------------------------------------------------------


@dataclass
class Turn:
    sent: float = 0.0  # end of speech: the recording is in hand
    seq: int | None = None
    text: str = ""  # the narration so far, at the client
    first_sentence_at: float | None = None  # the first spoken piece's text complete at the client
    seen: list = field(default_factory=list)  # (arrival, the narration so far) per delta
    first_audio: dict | None = None
    first_audio_at: float | None = None  # its file fetched
    done_at: float | None = None
    last_audio_at: float = 0.0
    audio_count: int = 0


@dataclass
class Results:
    stt: list[float] = field(default_factory=list)
    errors: int = 0
    distance: int = 0
    reference: int = 0
    tts_first: list[float] = field(default_factory=list)
    speech_to_audio: list[float] = field(default_factory=list)
    unavailable: int = 0
    timeouts: int = 0
    misheard: list[tuple[str, str]] = field(default_factory=list)


def _post_speech(port: int, session_id: int, token: str, audio: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/sessions/{session_id}/speech",
        method="POST",
        data=audio,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "audio/webm"},
    )
    try:
        with HTTP.open(request, timeout=TURN_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _post_action(port: int, session_id: int, token: str, text: str, key: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/sessions/{session_id}/actions",
        method="POST",
        data=json.dumps({"text": text, "idempotency_key": key}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with HTTP.open(request, timeout=TURN_TIMEOUT_S) as resp:
        return json.loads(resp.read())["seq"]


def _get_audio(port: int, url: str, cookie: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{url}", headers={"Cookie": f"sessionid={cookie}"}
    )
    with HTTP.open(request, timeout=TURN_TIMEOUT_S) as resp:
        return len(resp.read())


def _plain(text: str) -> str:
    """The narration as the voice reads it (media.speech.sentences.clean): no markdown marks."""
    return " ".join(re.sub(r"[*_`#>]+", "", text).split())


async def _read(
    ws, turns: dict[int, Turn], by_order: list[Turn], tick: asyncio.Event, port: int, cookie: str
):
    async for raw in ws:
        now = time.perf_counter()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind in ("delta", "audio", "event"):
            seq = (
                frame.get("action_seq")
                if kind != "event"
                else (frame["event"]["payload"] or {}).get("action_seq")
            )
            turn = turns.get(seq) if seq is not None else None
            if turn is None and seq is not None and by_order and by_order[-1].seq is None:
                turn = by_order[-1]  # the socket outran the POST's reply: it is the turn in flight
                turn.seq = seq
                turns[seq] = turn
            if turn is None:
                continue
            if kind == "delta":
                turn.text += frame["text"]
                turn.seen.append((now, _plain(turn.text)))
            elif kind == "audio":
                turn.audio_count += 1
                turn.last_audio_at = now
                if turn.first_audio is None:
                    turn.first_audio = frame
                    if frame.get("ok"):
                        await asyncio.to_thread(_get_audio, port, frame["url"], cookie)
                        turn.first_audio_at = time.perf_counter()
                    # When the client had the whole first piece of text the voice speaks (a
                    # sentence, or the first clause of a long one): the delta that completed it.
                    piece = _plain(frame.get("text", ""))
                    turn.first_sentence_at = next((at for at, text in turn.seen if piece in text), now)
            elif frame["event"]["type"] in ("Narration", "TurnFailed"):
                turn.done_at = now
            tick.set()


async def _run(port: int, session_id: int, token: str, cookie: str, made, turns_wanted: int) -> Results:
    from websockets.asyncio.client import connect

    results = Results()
    url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/?format=json"
    options = dict(origin=f"http://127.0.0.1:{port}", compression=None, proxy=None, max_queue=None)
    ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, **options)
    turns: dict[int, Turn] = {}
    order: list[Turn] = []
    tick = asyncio.Event()
    reader = asyncio.create_task(_read(ws, turns, order, tick, port, cookie))
    run = secrets.token_hex(4)
    try:
        # Warm-up: the web process loads Whisper, the worker loads piper. Not counted.
        await asyncio.to_thread(_post_speech, port, session_id, token, made[0][1])
        await _turn(port, session_id, token, "I look around.", f"{run}-warm", turns, order, tick)
        for text, audio in made:
            sent = time.perf_counter()
            status, body = await asyncio.to_thread(_post_speech, port, session_id, token, audio)
            results.stt.append((time.perf_counter() - sent) * 1000)
            heard = body.get("text", "") if status == 200 else ""
            if status != 200:
                results.errors += 1
            said = words(text)
            distance = edit_distance(said, words(heard))
            results.distance += distance
            results.reference += len(said)
            if distance:
                results.misheard.append((text, heard or f"<{status} {body.get('error')}>"))
        for i, (text, audio) in enumerate(made[:turns_wanted]):
            sent = time.perf_counter()
            status, body = await asyncio.to_thread(_post_speech, port, session_id, token, audio)
            heard = body.get("text") if status == 200 else None
            turn = await _turn(port, session_id, token, heard or text, f"{run}-{i}", turns, order, tick, sent)
            if turn is None or turn.first_audio is None:
                results.timeouts += 1
                continue
            if not turn.first_audio.get("ok"):
                results.unavailable += 1
                continue
            if turn.first_audio_at is not None:
                results.speech_to_audio.append((turn.first_audio_at - turn.sent) * 1000)
                if turn.first_sentence_at is not None:
                    results.tts_first.append(max(0.0, turn.first_audio_at - turn.first_sentence_at) * 1000)
    finally:
        reader.cancel()
        with contextlib.suppress(Exception):
            await ws.close()
    return results


async def _turn(port, session_id, token, text, key, turns, order, tick, sent=None) -> Turn | None:
    turn = Turn(sent=sent if sent is not None else time.perf_counter())
    order.append(turn)
    seq = await asyncio.to_thread(_post_action, port, session_id, token, text, key)
    if turn.seq is None:
        turn.seq = seq
        turns[seq] = turn
    deadline = time.perf_counter() + TURN_TIMEOUT_S
    # Until the Narration is in and its sentences have all been spoken (no audio for QUIET_S):
    # the next turn must not queue behind this one's synthesis.
    while time.perf_counter() < deadline:
        spoken = turn.first_audio is not None and (turn.first_audio_at or not turn.first_audio.get("ok"))
        quiet = time.perf_counter() - max(turn.last_audio_at, turn.done_at or 0.0) > QUIET_S
        if turn.done_at is not None and spoken and quiet:
            return turn
        tick.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tick.wait(), 0.2)
    return turn if turn.first_audio else None


# ---- reporting --------------------------------------------------------------------------------------

TABLE_HEADER = (
    "| utterances | turns | STT p50 / p95 (ms) | WER | TTS first audio p50 / p95 (ms) "
    "| speech → audio p50 / p95 (ms) "
    "| machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---:|---:|---|---:|---|---|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench voice` starts its own `gtw up` (data in var/bench-voice; local
faster-whisper tiny.en int8 and piper en_US joe medium, one thread each; the offline narrator at
its default 25 ms a word) and one player on loopback. The same 24 spoken game actions every run
(`gtw_site/bench/voice.py` ACTIONS), said by the bundled piper voice in three of its offline
variations with piper's noise off (the same audio every run) and encoded as webm/opus like a
browser's MediaRecorder. **STT**: the client has the recording → the transcript is back at the
client (`POST /api/sessions/{id}/speech`: upload, PyAV decode, loudness gate, VAD, Whisper), every
action of the set. **WER**: word error rate of those
transcripts (lower case, punctuation dropped). **TTS first audio**: the text of the first spoken
piece (the first sentence, or the first clause of a long one) complete at the client (the delta
that completed it arrived) → its audio file fetched (`GET /speech/…`, playable). **speech →
audio**: end of speech → transcript → action sent → the GM's first piece fetched — what a player
hears. Targets 800 / 400 / 1,500 ms. Warm-up (model loads) not counted; scene pictures off
(`GTW_IMAGE_AUTO=0`), so their painting does not compete; the audio store starts empty, so no
sentence is found already spoken. For scale: LiveKit's cascaded voice
agents measure p50 1.4 s from end of speech to the first reply audio; ours is a 2-core CPU box
with no GPU and no network, the offline narrator writing at a human reading pace."""


def table_row(n: int, turns: int, r: Results, machine: str, command: str) -> str:
    def pair(samples):
        return f"{percentile(samples, 50):.0f} / {percentile(samples, 95):.0f}"

    wer = r.distance / r.reference if r.reference else float("nan")
    return (
        f"| {n} | {turns} | {pair(r.stt)} | {wer:.3f} | {pair(r.tts_first)} | {pair(r.speech_to_audio)} "
        f"| {machine} | {datetime.now(UTC).date()} | `{command}` |"
    )


def main(args) -> int:
    turns_wanted = max(1, min(args.turns, len(ACTIONS)))
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"gtw bench: note: 1-minute load is {load:.1f} before we start; expect noisy numbers.")
    os.environ.update(BENCH_ENV)
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    VOICE_DIR.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(VOICE_DIR / "speech", ignore_errors=True)
    print(f"gtw bench voice: saying {len(ACTIONS)} actions with the piper voice…", flush=True)
    made = recordings()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = VOICE_DIR / "server.log"
    print(f"gtw bench voice: server on 127.0.0.1:{port} (log: {log_path})", flush=True)
    with open(log_path, "w") as log:
        proc = start_server(port, log)
        try:
            wait_healthy(port, proc, timeout=180)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
            import django

            django.setup()
            from django.db import connections

            session_id, token, cookie = _setup()
            connections.close_all()
            results = asyncio.run(_run(port, session_id, token, cookie, made, turns_wanted))
        except (RuntimeError, OSError) as exc:
            return server_failed(exc, log_path, "gtw bench voice")
        except KeyboardInterrupt:
            sys.stderr.write("gtw bench: interrupted\n")
            return 130
        finally:
            stop_server(proc)
    command = f"gtw bench voice --turns {turns_wanted}"
    row = table_row(len(made), turns_wanted, results, machine_text(load), command)
    print(f"\n{TABLE_HEADER}\n{row}")
    wer = results.distance / results.reference if results.reference else float("nan")
    print(
        f"STT errors: {results.errors} · turns without audio: {results.timeouts} · "
        f"first sentence unavailable: {results.unavailable}"
    )
    for said, heard in results.misheard:
        print(f"  said {said!r} → heard {heard!r}")
    if not args.no_write:
        DOC.parent.mkdir(exist_ok=True)
        text = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=0))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    summary = {
        "stt_p50_ms": json_ms(percentile(results.stt, 50)),
        "stt_p95_ms": json_ms(percentile(results.stt, 95)),
        "tts_first_audio_p95_ms": json_ms(percentile(results.tts_first, 95)),
        "speech_to_audio_p50_ms": json_ms(percentile(results.speech_to_audio, 50)),
        "wer": round(wer, 4) if wer == wer else None,
    }
    print(json.dumps(summary))
    ok = results.stt and results.speech_to_audio and not results.errors and not results.timeouts
    return 0 if ok else 1
