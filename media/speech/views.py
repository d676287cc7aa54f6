"""GET /speech/<session_id>/<key>: a spoken sentence, to members of the session it was spoken in.

Files are content-addressed and never change, so the ETag is the key and browsers may keep
them; outsiders, and members asking for a sentence never spoken in their session, get 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponseNotModified
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from campaigns.errors import NotFound
from campaigns.selectors import membership_get, session_membership_get
from media.speech import services as speech_services
from media.speech import store

_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".flac": "audio/flac"}


@require_GET
def speech_audio(request, session_id: int, key: str):
    try:
        session_membership_get(viewer=request.user, session_id=session_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if not store.granted(session_id, key):
        raise Http404("No such audio.")
    path = store.find(key)
    if path is None:
        raise Http404("No such audio.")
    etag = f'"{key}"'
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
    else:
        # FileResponse owns the file and closes it when the response is done.
        handle = open(path, "rb")  # noqa: SIM115
        response = FileResponse(handle, content_type=_TYPES.get(path.suffix, "application/octet-stream"))
    response["ETag"] = etag
    # Private: members only. Immutable: the same key is always the same sound.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@login_required
@require_POST
def campaign_voice(request, campaign_id: int):
    """The GM's narrator-voice form on the campaign page."""
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    speech_services.campaign_voice_set(membership=membership, voice=request.POST.get("voice", ""))
    messages.success(request, "Voice saved: the GM speaks with it from the next narration.")
    return redirect(reverse("campaign_detail", args=[campaign_id]) + "#gm-h")
