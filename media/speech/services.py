"""Transcribing one push-to-talk utterance for the player who recorded it.

`speech_transcribe` checks (member who may act, rate limit, size), decodes with PyAV, gates
silence, and asks the `stt` role. The audio is never stored: it lives in this call's memory and
the transcript goes back to the caller only (the HTTP response), so no audio of one player can
reach another's transcript. The action the player then sends is stored as text, as typed ones.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from campaigns.errors import DomainError, Forbidden, Invalid
from campaigns.models import Campaign, Membership, PlaySession
from campaigns.selectors import session_membership_get
from gtw_site.providers import ProviderError
from gtw_site.ratelimit import rate_check
from media.speech import voices
from media.speech.audio import AudioRefused, decode, is_silent, loudness_dbfs
from media.speech.base import SAMPLE_RATE_STT, Utterance

logger = logging.getLogger(__name__)

NOT_HEARD = "Didn't catch that — hold the button and speak, then let go."
UNAVAILABLE = "Voice input is unavailable right now — type your action instead."


class SpeechRefused(DomainError):
    """An utterance that cannot become a transcript; `status` per cause (400/413/415/422/503)."""

    def __init__(self, message: str, *, code: str, status: int) -> None:
        super().__init__(message, code=code)
        self.status = status


@dataclass(frozen=True)
class TranscriptResult:
    text: str
    duration_ms: int
    elapsed_ms: int
    provider: str


def speech_check(*, viewer, session_id: int) -> tuple[PlaySession, Membership]:
    """The session, if the viewer may speak in it: NotFound for outsiders (no existence leak),
    Forbidden for spectators and, on a stage, for the audience (only speakers act there)."""
    session, membership = session_membership_get(viewer=viewer, session_id=session_id)
    if not membership.can_act:
        raise Forbidden("Spectators can listen, not speak.")
    if session.kind == PlaySession.Kind.STAGE and membership.role != Membership.Role.GM:
        from campaigns.stage.selectors import stage_roster

        seat = stage_roster(session)["seats"].get(viewer.username) or {}
        if (
            seat.get("spectator")
            or seat.get("muted")
            or (seat.get("role") not in ("speaker", "moderator") and seat.get("team") is None)
        ):
            raise Forbidden("Only speakers talk on the stage — raise your hand to be called up.")
    return session, membership


def speech_transcribe(*, viewer, session_id: int, data: bytes, content_type: str) -> TranscriptResult:
    started = time.monotonic()
    _session, membership = speech_check(viewer=viewer, session_id=session_id)
    rate_check(scope="speech", ident=viewer.pk)
    conf = settings.GTW_SPEECH
    if len(data) > conf["max_bytes"]:
        raise SpeechRefused(
            f"That recording is larger than {conf['max_bytes'] // 1000} KB — say it in shorter pieces.",
            code="too_large",
            status=413,
        )
    try:
        samples = decode(data, max_seconds=conf["max_seconds"])
    except AudioRefused as exc:
        raise SpeechRefused(exc.message, code=exc.code, status=exc.status) from exc
    if is_silent(samples):
        raise SpeechRefused(NOT_HEARD, code="no_speech", status=422)
    utterance = Utterance(
        data=data,
        content_type=content_type or "audio/webm",
        samples=samples,
        duration_s=samples.size / SAMPLE_RATE_STT,
        level_dbfs=loudness_dbfs(samples),
    )
    from media.speech import registry

    try:
        stt = registry.stt()
        transcript = stt.transcribe(utterance)
    except ProviderError as exc:
        logger.warning("speech-to-text failed for session %s: %s", session_id, exc)
        # The GM may fix the setup; players only learn that voice is out for now.
        detail = f" ({exc})" if membership.role == Membership.Role.GM else ""
        raise SpeechRefused(UNAVAILABLE + detail, code="stt_unavailable", status=503) from exc
    if not transcript.text:
        raise SpeechRefused(NOT_HEARD, code="no_speech", status=422)
    return TranscriptResult(
        text=transcript.text[: settings.GTW_ACTION_MAX_CHARS],
        duration_ms=round(utterance.duration_s * 1000),
        elapsed_ms=round((time.monotonic() - started) * 1000),
        provider=stt.name,
    )


# ---- the campaign's GM voice (shown and chosen on the campaign page) ---------------------------

VOICE_LABELS = {
    "narrator": "Narrator — the bundled voice as it is",
    "low": "Low — deeper and slower",
    "bright": "Bright — higher and quicker",
    "dry": "Dry — flat, little colour",
    "quick": "Quick — fast talker",
    "gravel": "Gravel — deep and rough",
    "soft": "Soft — gentle and quiet",
}


def voice_choices() -> list[tuple[str, str]]:
    """The GM voices a campaign may pick: the offline catalogue, then any piper voice file in
    GTW_TTS_VOICES_DIR (by file name)."""
    from pathlib import Path

    choices = [(key, VOICE_LABELS.get(key, key)) for key in voices.CATALOGUE]
    folder = settings.GTW_SPEECH.get("voices_dir")
    if folder and Path(folder).is_dir():
        for model in sorted(Path(folder).glob("*.onnx")):
            if model.stem not in voices.CATALOGUE:
                choices.append((model.stem, f"{model.stem} — piper voice file"))
    return choices


def campaign_voice_set(*, membership: Membership, voice: str) -> Campaign:
    """The GM picks the campaign's narrator voice ("" = the personality's own)."""
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM can choose the campaign's voice.")
    voice = (voice or "").strip()
    if voice and voice not in dict(voice_choices()):
        raise Invalid(f"Unknown voice {voice[:40]!r}; pick one of the list.")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=membership.campaign_id)
        current = dict(campaign.settings or {})
        chosen = dict(current.get("voice") or {})
        if voice:
            chosen["gm"] = voice
        else:
            chosen.pop("gm", None)
        current["voice"] = chosen
        campaign.settings = current
        campaign.save(update_fields=["settings"])
    return campaign
