"""The engine's controls over the API: run a mission or override it, get or set the director's
beat, a session's game view, story decks (list, install — signature checked) and GM
personalities (for a designer UI). The missions themselves (list, detail, install: the DSL's
own data) are missions/api.py.

Moved here from missions/api.py with the same paths, shapes and operation ids (clients
generated from the OpenAPI schema keep working)."""

from __future__ import annotations

import json
from typing import Any

from ninja import Body, Router, Schema, Status
from pydantic import Field, ValidationError

from campaigns.errors import Invalid
from campaigns.models import PersonalityPreset
from campaigns.selectors import session_gm_get, session_membership_get
from gtw_site.ratelimit import rate_check
from missions.services import override_from_fields
from narrative import director, engine
from narrative.services import check_can_install_decks, deck_install, deck_list

router = Router(tags=["game"])


def _op(name: str) -> str:
    """The operation id these had in missions/api.py."""
    return f"missions_api_{name}"


class MissionRunIn(Schema):
    slug: str = Field(max_length=80)
    # A specific installed version; without it the campaign's pinned version of its pinned
    # mission, or the newest version of another mission.
    content_hash: str | None = Field(default=None, max_length=64)


class OverrideIn(Schema):
    objective: str | None = Field(default=None, max_length=60)
    status: str | None = Field(default=None, max_length=20)
    clock: str | None = Field(default=None, max_length=60)
    value: int | None = Field(default=None, ge=-100, le=100)
    scene: str | None = Field(default=None, max_length=60)


class GameOut(Schema):
    seq: int
    mission: dict[str, Any] | None
    beat: str
    beat_label: str
    initiative: dict[str, Any] | None
    # The GM set the mission aside after it ended (or during it): play goes on with no mission.
    free_play: bool = False


class MissionNextIn(Schema):
    # One of the other missions of the campaign's pack; without it, the one after the current.
    slug: str | None = Field(default=None, max_length=80)


class BeatIn(Schema):
    beat: str = Field(max_length=20)


class DeckOut(Schema):
    slug: str
    name: str
    version: str
    key_id: str
    cards: int


class DeckInstalled(DeckOut):
    changed: bool


class PersonalityOut(Schema):
    slug: str
    name: str
    description: str
    tone: str
    verbosity: int
    system_prompt: str
    director: dict[str, Any]
    deck_weights: dict[str, float]
    tts_profile: dict[str, Any]


def _game(session) -> dict:
    state = session.state or {}
    beat = (state.get("director") or {}).get("beat") or "inciting"
    return {
        "seq": session.version,
        "mission": engine.mission_view(state),
        "beat": beat,
        "beat_label": director.BEAT_LABELS.get(beat, beat),
        "initiative": state.get("initiative"),
        "free_play": engine.free_play_on(state),
    }


@router.get("/sessions/{session_id}/game", response=GameOut, operation_id=_op("game_get"))
def game_get(request, session_id: int):
    session, _ = session_membership_get(viewer=request.user, session_id=session_id)
    return _game(session)


@router.post("/sessions/{session_id}/mission", response=GameOut, operation_id=_op("mission_run"))
def mission_run(request, session_id: int, data: MissionRunIn):
    session = session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.mission_start(
        session=session, slug=data.slug, content_hash=data.content_hash, actor_id=request.user.pk
    )
    session.refresh_from_db()
    return _game(session)


@router.post(
    "/sessions/{session_id}/mission/override", response=GameOut, operation_id=_op("mission_override")
)
def mission_override(request, session_id: int, data: OverrideIn):
    session = session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    change = override_from_fields({k: v for k, v in data.dict().items() if v is not None})
    engine.gm_override(session=session, actor_id=request.user.pk, change=change)
    session.refresh_from_db()
    return _game(session)


@router.post("/sessions/{session_id}/mission/retry", response=GameOut, operation_id="mission_retry")
def mission_retry(request, session_id: int):
    """After a mission's end (or at any time): play it again from the start. GM only."""
    session = session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.mission_retry(session=session, actor_id=request.user.pk)
    session.refresh_from_db()
    return _game(session)


@router.post("/sessions/{session_id}/mission/next", response=GameOut, operation_id="mission_next")
def mission_next(request, session_id: int):
    """Start another mission of the campaign's pack: the JSON body's `{"slug": ...}` (one of
    `MissionNextIn`), or with no (JSON) body the one after the current mission. GM only."""
    session = session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    slug = _next_slug(request.body) if request.content_type == "application/json" else None
    engine.mission_next(session=session, actor_id=request.user.pk, slug=slug)
    session.refresh_from_db()
    return _game(session)


def _next_slug(body: bytes) -> str | None:
    """The optional body of "next mission", read after the GM check (so a player or an outsider
    learns nothing from a malformed one)."""
    if not body.strip():
        return None
    try:
        data = MissionNextIn.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise Invalid('The body is optional; when given, it is {"slug": "<mission id>"}.') from exc
    return data.slug


@router.post("/sessions/{session_id}/mission/free-play", response=GameOut, operation_id="mission_free_play")
def mission_free_play(request, session_id: int):
    """Set the mission aside: the story goes on with no mission until one starts. GM only."""
    session = session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.free_play(session=session, actor_id=request.user.pk)
    session.refresh_from_db()
    return _game(session)


@router.get("/sessions/{session_id}/director", response=GameOut, operation_id=_op("director_get"))
def director_get(request, session_id: int):
    return game_get(request, session_id)


@router.post("/sessions/{session_id}/director", response=GameOut, operation_id=_op("director_set"))
def director_set(request, session_id: int, data: BeatIn):
    session = session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.beat_set(session=session, beat=data.beat, actor_id=request.user.pk)
    session.refresh_from_db()
    return _game(session)


def _deck_out(row, **extra) -> dict:
    return {
        "slug": row.slug,
        "name": row.name,
        "version": row.version,
        "key_id": row.key_id,
        "cards": len(row.cards),
        **extra,
    }


@router.get("/decks", response=list[DeckOut], operation_id=_op("decks_get"))
def decks_get(request):
    return [_deck_out(d) for d in deck_list()]


@router.post("/decks", response={200: DeckInstalled, 201: DeckInstalled}, operation_id=_op("deck_create"))
def deck_create(request, data: dict[str, Any] = Body(...)):  # noqa: B008 — ninja's body marker
    check_can_install_decks(request.user)
    rate_check(scope="content_install", ident=request.user.pk)
    row, changed = deck_install(document=data, user=request.user)
    return Status(201 if changed else 200, _deck_out(row, changed=changed))


@router.get("/personalities", response=list[PersonalityOut], operation_id=_op("personalities"))
def personalities(request):
    return [
        {
            "slug": p.slug,
            "name": p.name,
            "description": p.description,
            "tone": p.tone,
            "verbosity": p.verbosity,
            "system_prompt": p.system_prompt,
            "director": (p.data or {}).get("director") or {},
            "deck_weights": (p.data or {}).get("deck_weights") or {},
            "tts_profile": (p.data or {}).get("tts_profile") or {},
        }
        for p in PersonalityPreset.objects.all()
    ]
