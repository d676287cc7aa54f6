"""The missions API: the catalogue, a mission's source (operators only: hidden objectives and
twists) and installing one. The engine's controls that run missions in a session (run, override,
the director's beat, decks, personalities) are narrative/engine_api.py."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpResponse
from ninja import Router, Schema, Status
from pydantic import Field

from gtw_site.ratelimit import rate_check
from missions import simulation_services, techtree_services
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


# ---- tech trees (missions/techtree*.py; issue 19) --------------------------------------------


class ResearchIn(Schema):
    campaign_id: int
    tree: str = Field(max_length=60)
    node: str = Field(max_length=60)
    action: Literal["start", "complete"] = "start"
    character_id: int | None = None  # a player tree: the GM names whose; a player, their own
    alliance_id: int | None = None  # an alliance tree: whose (its leader or the GM decides)


class ResearchOut(Schema):
    seq: int
    type: str
    payload: dict[str, Any]


@router.get("/tech-trees", response=dict[str, Any])
def tech_trees(request, campaign: int):
    """The campaign's trees and the research the viewer may see (own character, own alliances;
    the GM: everyone's): each node done, in progress (beats left), available or locked."""
    return techtree_services.techtrees_for(viewer=request.user, campaign_id=campaign)


@router.post("/tech-trees/research", response={201: list[ResearchOut]})
def tech_tree_research(request, data: ResearchIn):
    rate_check(scope="gm_control", ident=request.user.pk)
    start = data.action == "start"
    service = techtree_services.research_start if start else techtree_services.research_complete
    result = service(
        viewer=request.user,
        campaign_id=data.campaign_id,
        tree=data.tree,
        node=data.node,
        character_id=data.character_id,
        alliance_id=data.alliance_id,
    )
    return Status(201, [{"seq": e.seq, "type": e.type, "payload": e.payload} for e in result.events])


# ---- the world simulation (missions/simulation*; issue 19): the GM's controls -----------------


class SimulationIn(Schema):
    campaign_id: int


class SimulationStartIn(SimulationIn):
    entities: int | None = Field(default=None, ge=1, le=5000)


class SimulationStepIn(SimulationIn):
    budget: int = Field(default=10, ge=1, le=200)


class SnapshotImportIn(SimulationIn):
    snapshot: str = Field(max_length=16 * 1024 * 1024)  # an exported snapshot's text


class SimulationProviderIn(SimulationIn):
    provider: str = Field(default="", max_length=40)  # "": back to the site's choice
    base_url: str = Field(default="", max_length=300)
    model: str = Field(default="", max_length=120)


def _events_out(result) -> list[dict]:
    return [{"seq": e.seq, "type": e.type, "payload": e.payload} for e in result.events]


@router.get("/simulation", response=dict[str, Any])
def simulation_get(request, campaign: int):
    """The campaign's simulation (GM only): status, provider, latest snapshot, budget."""
    return simulation_services.simulation_status(viewer=request.user, campaign_id=campaign)


@router.post("/simulation/start", response={201: list[ResearchOut]})
def simulation_start(request, data: SimulationStartIn):
    rate_check(scope="gm_control", ident=request.user.pk)
    result = simulation_services.simulation_start(
        viewer=request.user, campaign_id=data.campaign_id, entities=data.entities
    )
    return Status(201, _events_out(result))


@router.post("/simulation/step", response={201: list[ResearchOut]})
def simulation_step(request, data: SimulationStepIn):
    rate_check(scope="gm_control", ident=request.user.pk)
    result = simulation_services.simulation_step(
        viewer=request.user, campaign_id=data.campaign_id, budget=data.budget
    )
    return Status(201, _events_out(result))


@router.post("/simulation/stop", response={201: list[ResearchOut]})
def simulation_stop(request, data: SimulationIn):
    result = simulation_services.simulation_stop(viewer=request.user, campaign_id=data.campaign_id)
    return Status(201, _events_out(result))


@router.post("/simulation/verify", response=dict[str, Any])
def simulation_verify(request, data: SimulationIn):
    """Replay the session's simulation from its log; a mismatch quarantines it."""
    rate_check(scope="gm_control", ident=request.user.pk)
    return simulation_services.simulation_verify(viewer=request.user, campaign_id=data.campaign_id)


@router.get("/simulation/snapshots/export")
def simulation_export(request, campaign: int, snapshot: int | None = None):
    """A snapshot (the latest, or `snapshot`) as a JSON file, its checksum inside."""
    row = simulation_services.snapshot_export(viewer=request.user, campaign_id=campaign, snapshot_id=snapshot)
    response = HttpResponse(bytes(row.blob), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="world-{campaign}-{row.pk}.json"'
    return response


@router.post("/simulation/snapshots/import", response={201: dict[str, Any]})
def simulation_import(request, data: SnapshotImportIn):
    """Load an exported snapshot (refused: tampered, truncated, another campaign's)."""
    rate_check(scope="gm_control", ident=request.user.pk)
    row = simulation_services.snapshot_import(
        viewer=request.user, campaign_id=data.campaign_id, blob=data.snapshot.encode()
    )
    return Status(201, {"snapshot": row.pk, "step": row.step, "state_hash": row.state_hash})


@router.post("/simulation/provider", response=dict[str, Any])
def simulation_provider(request, data: SimulationProviderIn):
    """Choose the campaign's simulation provider (GM only; "" = the site's)."""
    rate_check(scope="gm_control", ident=request.user.pk)
    simulation_services.simulation_provider_set(
        viewer=request.user,
        campaign_id=data.campaign_id,
        provider=data.provider,
        base_url=data.base_url,
        model=data.model,
    )
    return simulation_services.simulation_status(viewer=request.user, campaign_id=data.campaign_id)
