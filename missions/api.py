"""The game engine's API: missions (list, install, run, override), the director's beat, story
decks (list, install — signature checked) and GM personalities (for a designer UI)."""

from __future__ import annotations

from typing import Any

from ninja import Body, Router, Schema, Status
from pydantic import Field

from campaigns.models import PersonalityPreset
from campaigns.selectors import session_gm_get, session_membership_get
from gtw_site.ratelimit import rate_check
from missions.models import Mission
from missions.services import (
    check_can_install_missions,
    check_can_read_mission_source,
    mission_get,
    mission_install,
    missions_latest,
    override_from_fields,
)
from narrative import director, engine
from narrative.services import check_can_install_decks, deck_install, deck_list

router = Router(tags=["game"])


class MissionOut(Schema):
    slug: str
    title: str
    biome: str
    summary: str
    content_hash: str
    installed_at: str


class MissionDetail(MissionOut):
    source: str
    ast: dict[str, Any]


class MissionIn(Schema):
    source: str = Field(max_length=256 * 1024)
    filename: str = Field(default="mission.mission", max_length=200)


class MissionInstalled(MissionOut):
    created: bool


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


def _mission_out(m: Mission, **extra) -> dict:
    return {
        "slug": m.slug,
        "title": m.title,
        "biome": m.biome,
        "summary": m.summary,
        "content_hash": m.content_hash,
        "installed_at": m.installed_at.isoformat(),
        **extra,
    }


def _game(session) -> dict:
    state = session.state or {}
    beat = (state.get("director") or {}).get("beat") or "inciting"
    return {
        "seq": session.version,
        "mission": engine.mission_view(state),
        "beat": beat,
        "beat_label": director.BEAT_LABELS.get(beat, beat),
        "initiative": state.get("initiative"),
    }


@router.get("/missions", response=list[MissionOut])
def mission_list(request):
    # A catalogue for every signed-in user (a GM picks from it): titles and summaries are no
    # secret; the source (hidden objectives, twists) is, and is only in the detail.
    return [_mission_out(m) for m in missions_latest()]


@router.get("/missions/{slug}", response=MissionDetail)
def mission_detail(request, slug: str):
    check_can_read_mission_source(request.user)
    mission = mission_get(slug)
    return _mission_out(mission, source=mission.source, ast=mission.ast)


@router.post("/missions", response={200: MissionInstalled, 201: MissionInstalled})
def mission_create(request, data: MissionIn):
    check_can_install_missions(request.user)
    rate_check(scope="content_install", ident=request.user.pk)
    mission, created = mission_install(source=data.source, filename=data.filename, user=request.user)
    return Status(201 if created else 200, _mission_out(mission, created=created))


@router.get("/sessions/{session_id}/game", response=GameOut)
def game_get(request, session_id: int):
    session, _ = session_membership_get(viewer=request.user, session_id=session_id)
    return _game(session)


@router.post("/sessions/{session_id}/mission", response=GameOut)
def mission_run(request, session_id: int, data: MissionRunIn):
    session = session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.mission_start(
        session=session, slug=data.slug, content_hash=data.content_hash, actor_id=request.user.pk
    )
    session.refresh_from_db()
    return _game(session)


@router.post("/sessions/{session_id}/mission/override", response=GameOut)
def mission_override(request, session_id: int, data: OverrideIn):
    session = session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    change = override_from_fields({k: v for k, v in data.dict().items() if v is not None})
    engine.gm_override(session=session, actor_id=request.user.pk, change=change)
    session.refresh_from_db()
    return _game(session)


@router.get("/sessions/{session_id}/director", response=GameOut)
def director_get(request, session_id: int):
    return game_get(request, session_id)


@router.post("/sessions/{session_id}/director", response=GameOut)
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


@router.get("/decks", response=list[DeckOut])
def decks_get(request):
    return [_deck_out(d) for d in deck_list()]


@router.post("/decks", response={200: DeckInstalled, 201: DeckInstalled})
def deck_create(request, data: dict[str, Any] = Body(...)):  # noqa: B008 — ninja's body marker
    check_can_install_decks(request.user)
    rate_check(scope="content_install", ident=request.user.pk)
    row, changed = deck_install(document=data, user=request.user)
    return Status(201 if changed else 200, _deck_out(row, changed=changed))


@router.get("/personalities", response=list[PersonalityOut])
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
