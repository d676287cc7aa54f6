"""A picture's state, rendered and sent to its session's sockets (through realtime.broadcast,
the one sender). Players never see why a picture failed; the GM reads that in the gallery."""

from __future__ import annotations

from django.template.loader import render_to_string

from media.models import Image
from realtime import broadcast

EVENTS = {
    Image.Status.QUEUED: "image-queued",
    Image.Status.RUNNING: "image-progress",
    Image.Status.READY: "image-available",
    Image.Status.FAILED: "image-failed",
}


def public_fields(image: Image) -> dict:
    from django.urls import reverse

    return {
        "event": EVENTS[image.status],
        "image_id": image.pk,
        "kind": image.kind,
        "subject": image.subject,
        "status": image.status,
        "progress": image.percent,
        "hidden": image.hidden,
        "url": reverse("image-file", args=[image.pk]) if image.status == Image.Status.READY else None,
    }


def render_oob(image: Image) -> str:
    """The htmx fragment: the scene panel's figure (the session's newest visible scene picture)
    for a scene picture; for a portrait or item, its figure in the strip (added, swapped or
    removed when hidden)."""
    from media.images.services import scene_image

    if image.kind == Image.Kind.SCENE:
        shown = scene_image(session=image.session) if image.session_id else None
        return render_to_string("media/_scene_figure.html", {"image": shown, "oob": True})
    return render_to_string("media/_strip_oob.html", {"image": image})


def send(image: Image) -> None:
    broadcast.image_changed(image.session_id, public_fields(image), render_oob(image))
