"""Table safety over HTTP (issue 18, part 4): a campaign's lines and veils, and the X-card.
The same services as the campaign and play pages (narrative/tablesafety_views.py); domain
errors map to HTTP once, in gtw_site/api.py."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Router, Schema, Status

from campaigns import selectors
from narrative import tablesafety, xcard

router = Router(tags=["table safety"])


class TableLineIn(Schema):
    kind: Literal["line", "veil"]
    text: str
    private: bool = False


class TableLineOut(Schema):
    id: int
    kind: str
    text: str
    private: bool
    mine: bool
    author: str | None  # the GMs see every author; others only their own
    created_at: datetime


class TableLinesOut(Schema):
    entries: list[TableLineOut]


class XCardIn(Schema):
    idempotency_key: str


class XCardOut(Schema):
    seq: int
    withdrawn_seq: int | None  # the narration withdrawn; None when there was none to withdraw
    replayed: bool


@router.get("/campaigns/{campaign_id}/table-lines", response=TableLinesOut)
def table_lines(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    return {"entries": [v.as_dict() for v in tablesafety.table_lines_for(membership=membership)]}


@router.post("/campaigns/{campaign_id}/table-lines", response={201: TableLineOut})
def table_line_add(request, campaign_id: int, data: TableLineIn):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    row = tablesafety.table_line_add(
        membership=membership, kind=data.kind, text=data.text, private=data.private
    )
    view = next(v for v in tablesafety.table_lines_for(membership=membership) if v.id == row.pk)
    return Status(201, view.as_dict())


@router.delete("/campaigns/{campaign_id}/table-lines/{line_id}", response={204: None})
def table_line_remove(request, campaign_id: int, line_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    tablesafety.table_line_remove(membership=membership, line_id=line_id)
    return Status(204, None)


@router.post("/sessions/{session_id}/xcard", response={201: XCardOut})
def xcard_tap(request, session_id: int, data: XCardIn):
    result = xcard.xcard_tap(session_id=session_id, user=request.user, idempotency_key=data.idempotency_key)
    tap = result.events[0]
    return Status(
        201, {"seq": tap.seq, "withdrawn_seq": tap.payload.get("narration_seq"), "replayed": result.replayed}
    )
