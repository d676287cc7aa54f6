"""POST /api/sessions/{id}/speech: one push-to-talk utterance in, its transcript out.

A raw body (the MediaRecorder blob as-is, its MIME type in Content-Type; a multipart form with
one file works too) rather than a socket frame: the session socket's frames are JSON capped at
16 KB, a POST gets real status codes (413, 415, 422, 429, 503) and the body limit for free, the
reply goes to the one request that asked (no fan-out to filter), and the view runs on a worker
thread (Django runs each request's sync view in its own thread-sensitive context), never the
event loop. Measured: `gtw bench voice`.
"""

from __future__ import annotations

from django.conf import settings
from ninja import Router, Schema, Status

from media.speech import services

router = Router(tags=["voice"])


class TranscriptOut(Schema):
    text: str
    duration_ms: int
    elapsed_ms: int


class ErrorOut(Schema):
    error: str
    detail: str


@router.post(
    "/sessions/{session_id}/speech",
    response={200: TranscriptOut, 400: ErrorOut, 413: ErrorOut, 415: ErrorOut, 422: ErrorOut, 503: ErrorOut},
    openapi_extra={
        "requestBody": {"content": {"audio/webm": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
def speech_transcribe(request, session_id: int):
    # Refuse an oversized body by its declared length before reading it.
    declared = (
        int(request.headers.get("Content-Length") or 0)
        if (request.headers.get("Content-Length") or "0").isdigit()
        else 0
    )
    if declared > settings.GTW_SPEECH["max_bytes"]:
        services.speech_check(viewer=request.user, session_id=session_id)  # outsiders still get 404
        raise services.SpeechRefused(
            f"That recording is larger than {settings.GTW_SPEECH['max_bytes'] // 1000} KB — "
            "say it in shorter pieces.",
            code="too_large",
            status=413,
        )
    content_type = request.content_type or ""
    if content_type != "multipart/form-data":
        data = request.body
    else:
        # A form upload works too (a script, a tool): the first file, `audio` or `file` preferred.
        upload = (
            request.FILES.get("audio")
            or request.FILES.get("file")
            or next(iter(request.FILES.values()), None)
        )
        data, content_type = (upload.read(), upload.content_type or "") if upload is not None else (b"", "")
    result = services.speech_transcribe(
        viewer=request.user, session_id=session_id, data=data, content_type=content_type
    )
    return {"text": result.text, "duration_ms": result.duration_ms, "elapsed_ms": result.elapsed_ms}


@router.post("/sessions/{session_id}/voice/listening", response={204: None})
def voice_listening(request, session_id: int):
    """The page has voice on: narration of this session is spoken (for 15 minutes; the page
    says it again while voice stays on). Any member, spectators included; outsiders 404."""
    from campaigns.selectors import session_membership_get
    from media.speech import narration

    session_membership_get(viewer=request.user, session_id=session_id)
    narration.mark_listening(session_id)
    return Status(204, None)
