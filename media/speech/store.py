"""Synthesised sentences on disk, content-addressed: the file name is the SHA-256 of the voice
(provider, model, voice parameters) and the text, so 50 spectators fetch one file, a replayed
turn synthesises nothing, and a changed voice never serves a stale file.

Which session may fetch which file is kept in the shared cache (Redis), per session: a member
of one session cannot probe for sentences spoken in another by guessing hashes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

from media.speech.base import Voice

GRANT_TTL_S = 30 * 24 * 3600
_HASH = re.compile(r"^[0-9a-f]{64}$")


def audio_key(provider: str, model: str, voice: Voice, text: str) -> str:
    material = f"{provider}\n{model}\n{voice.key}\n{voice.fingerprint()}\n{text}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def audio_dir() -> Path:
    return Path(settings.GTW_SPEECH["audio_dir"])


def audio_path(key: str, extension: str = "wav") -> Path:
    if not _HASH.match(key) or not extension.isalnum():
        raise ValueError("not an audio key")
    return audio_dir() / key[:2] / f"{key}.{extension}"


def find(key: str) -> Path | None:
    """The stored file for `key` (any extension a provider wrote), or None."""
    if not _HASH.match(key):
        return None
    folder = audio_dir() / key[:2]
    for extension in ("wav", "mp3", "ogg", "flac"):
        path = folder / f"{key}.{extension}"
        if path.is_file():
            return path
    return None


def save(key: str, audio: bytes, extension: str) -> Path:
    """Write atomically (a reader never sees half a file; two writers of one key both win)."""
    path = audio_path(key, extension)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(audio)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _grant_key(session_id: int, key: str) -> str:
    return f"speech:grant:{session_id}:{key}"


def grant(session_id: int, key: str) -> None:
    cache.set(_grant_key(session_id, key), 1, timeout=GRANT_TTL_S)


def granted(session_id: int, key: str) -> bool:
    return bool(_HASH.match(key)) and cache.get(_grant_key(session_id, key)) is not None


def url_for(session_id: int, key: str) -> str:
    from django.urls import reverse

    return reverse("speech-audio", kwargs={"session_id": session_id, "key": key})
