"""The missions API: the catalogue, a mission's source (operators only: hidden objectives and
twists) and installing one. The engine's controls that run missions in a session (run, override,
the director's beat, decks, personalities) are narrative/engine_api.py."""

from __future__ import annotations

from typing import Any

from ninja import Router, Schema, Status
from pydantic import Field

from gtw_site.ratelimit import rate_check
from missions.models import Mission
from missions.services import (
    check_can_install_missions,
    check_can_read_mission_source,
    mission_get,
    mission_install,
    missions_latest,
)

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
