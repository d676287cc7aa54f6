"""The campaign lifecycle API (issue 16 part 5): clone, archive/unarchive, session snapshots,
export and import. Mounted by campaigns/api.py (which also lists a campaign's sessions).
Domain errors map to HTTP once, in gtw_site/api.py."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.http import HttpResponse
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from campaigns import lifecycle, lifecycle_export, selectors

router = Router(tags=["campaign lifecycle"])


class CloneIn(Schema):
    name: str = Field(default="", max_length=500)
    # Copy the sessions, their events and the memories too (off: content, members, characters
    # as templates and settings only).
    history: bool = False


class CloneOut(Schema):
    id: int
    name: str


class ArchiveOut(Schema):
    id: int
    archived: bool


class SnapshotRowOut(Schema):
    seq: int
    sha256: str
    created_at: datetime


class SnapshotsOut(Schema):
    session: int
    version: int
    state_hash: str
    snapshots: list[SnapshotRowOut]


class SnapshotOut(Schema):
    seq: int
    sha256: str
    state: dict[str, Any]
    created_at: datetime


class ImportOut(Schema):
    id: int
    name: str
    sessions: list[dict[str, Any]]
    notes: list[str]


@router.post("/campaigns/{campaign_id}/clone", response={201: CloneOut})
def campaign_clone(request, campaign_id: int, data: CloneIn | None = None):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    data = data or CloneIn()
    clone = lifecycle.campaign_clone(membership=membership, name=data.name, history=data.history)
    return Status(201, {"id": clone.pk, "name": clone.name})


@router.post("/campaigns/{campaign_id}/archive", response=ArchiveOut)
def campaign_archive(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    campaign = lifecycle.campaign_archive(membership=membership, archived=True)
    return {"id": campaign.pk, "archived": campaign.archived}


@router.post("/campaigns/{campaign_id}/unarchive", response=ArchiveOut)
def campaign_unarchive(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    campaign = lifecycle.campaign_archive(membership=membership, archived=False)
    return {"id": campaign.pk, "archived": campaign.archived}


@router.get("/sessions/{session_id}/snapshots", response=SnapshotsOut)
def snapshot_list(request, session_id: int):
    session, rows = lifecycle.snapshot_list(viewer=request.user, session_id=session_id)
    return {
        "session": session.pk,
        "version": session.version,
        "state_hash": session.state_hash,
        "snapshots": rows,
    }


@router.get("/sessions/{session_id}/snapshots/{seq}", response=SnapshotOut)
def snapshot_get(request, session_id: int, seq: int):
    return lifecycle.snapshot_get(viewer=request.user, session_id=session_id, seq=seq)


@router.get("/campaigns/{campaign_id}/export")
def campaign_export(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    body = lifecycle_export.campaign_export(membership=membership)
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, indent=1), content_type="application/json; charset=utf-8"
    )
    name = lifecycle_export.export_filename(membership.campaign)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@router.post("/campaigns/import", response={201: ImportOut})
def campaign_import(request, file: UploadedFile = File(...), name: str = Form("")):  # noqa: B008 - ninja idiom
    report = lifecycle_export.campaign_import(user=request.user, data=read_upload(file), name=name)
    return Status(
        201,
        {
            "id": report.campaign.pk,
            "name": report.campaign.name,
            "sessions": report.sessions,
            "notes": report.notes,
        },
    )


def read_upload(file) -> bytes:
    """The upload's bytes, never more than the limit plus one (parse refuses what is over)."""
    limit = lifecycle_export.max_bytes()
    if file.size is not None and file.size > limit:
        raise lifecycle_export.TooLarge(
            f"The file is {file.size / 1048576:.1f} MiB; campaign files are at most "
            f"{limit / 1048576:.0f} MiB here (GTW_CAMPAIGN_IMPORT_MAX_BYTES)."
        )
    return file.read(limit + 1)
