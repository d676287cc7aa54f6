"""The narrator's `image_request` tool: ask for a picture of the scene, a character or an item.

It appends no event (a picture is not game state); the picture's progress reaches the table on
the session socket. A refusal (a banned word, named; an unknown type) is the tool's result."""

from __future__ import annotations

from typing import Any

from campaigns.errors import DomainError
from campaigns.models import Character


def request(*, session, arguments: dict[str, Any]) -> dict[str, Any]:
    """{"ok", "image_id", "status"} or {"error": why} for the model."""
    from media.images import services

    kind = arguments["type"]
    subject = arguments.get("subject", "")
    character = None
    if kind == "portrait" and arguments.get("character"):
        character = Character.objects.filter(
            campaign_id=session.campaign_id, name=arguments["character"]
        ).first()
        if character is None:
            return {"error": f"no player character named '{arguments['character']}'"}
    try:
        image, _created = services.image_request(
            campaign=session.campaign, kind=kind, subject=subject, session=session, character=character
        )
    except DomainError as exc:
        return {"error": exc.message}
    return {
        "ok": True,
        "image_id": image.pk,
        "status": image.status,
        "note": "the picture appears in the scene panel when it is painted; do not describe it as shown yet",
    }
