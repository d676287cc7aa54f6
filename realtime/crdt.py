"""Shared documents of a play session — notes, inventory, map — as Yjs CRDTs.

Clients edit their own Yjs copy and exchange updates with the server over the standard y-protocols
sync protocol (realtime/crdt_consumer.py). The server is a durable peer: every accepted update is
appended as a row (`SharedDocUpdate`) and committed before anyone hears of it; a document's content
is the merge of its rows. Updates commute, so appends need no ordering — only compaction (folding
the rows into one snapshot) takes a lock, and it deletes exactly the rows it merged, so an update
appended meanwhile survives as a row of its own.

Document shapes (one fixed root per document; others are refused):
    notes      Y.Text  "text"
    inventory  Y.Array "items"   of Y.Map {id, name, qty, holder}
    map        Y.Map   "markers" id -> {x, y, label, kind} on a 12 x 8 grid
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from pycrdt import (
    Array,
    Doc,
    Map,
    Text,
    YMessageType,
    YSyncMessageType,
    get_update,
    merge_updates,
    write_message,
)

logger = logging.getLogger(__name__)

ROOTS = {"notes": "text", "inventory": "items", "map": "markers"}
DOC_NAMES = tuple(ROOTS)
MAX_UPDATE_BYTES = 256 * 1024
# All rows of one document together; a cheap ceiling so one member cannot fill the database.
MAX_DOC_BYTES = 4 * 1024 * 1024
COMPACT_AFTER = 200
MAP_COLS, MAP_ROWS = 12, 8
MARKER_KINDS = ("ally", "enemy", "objective", "hazard", "poi")
# What Yjs encodes for "nothing new" (no structs, empty delete set).
EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"


class DocRefused(Exception):
    """An update the server will not store; `code` goes to the client in an error frame."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def doc_group(session_id: int, name: str) -> str:
    return f"doc.{session_id}.{name}"


# ---- wire (y-protocols) ------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One y-protocols message: `kind` is YMessageType; `sync` the YSyncMessageType for SYNC."""

    kind: int
    sync: int | None
    payload: bytes


def _read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 28:  # at most 5 bytes: lengths and types fit in 32 bits
            raise DocRefused("malformed", "Truncated or oversized integer in the frame.")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def frame_parse(data: bytes) -> Frame:
    """Parse one binary frame strictly (pycrdt's Decoder silently truncates); DocRefused if bad."""
    kind, pos = _read_var_uint(data, 0)
    if kind == YMessageType.AWARENESS:
        return Frame(kind, None, data[pos:])
    if kind != YMessageType.SYNC:
        raise DocRefused("malformed", f"Unknown message type {kind}.")
    sync, pos = _read_var_uint(data, pos)
    if sync not in (YSyncMessageType.SYNC_STEP1, YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
        raise DocRefused("malformed", f"Unknown sync message type {sync}.")
    length, pos = _read_var_uint(data, pos)
    if pos + length != len(data):
        raise DocRefused("malformed", "The frame's length prefix does not match its size.")
    return Frame(kind, sync, data[pos:])


def _sync_frame(sync: int, payload: bytes) -> bytes:
    return bytes([YMessageType.SYNC, sync]) + write_message(payload)


def step1_frame(state_vector: bytes) -> bytes:
    return _sync_frame(YSyncMessageType.SYNC_STEP1, state_vector)


def step2_frame(update: bytes) -> bytes:
    return _sync_frame(YSyncMessageType.SYNC_STEP2, update)


def update_frame(update: bytes) -> bytes:
    return _sync_frame(YSyncMessageType.SYNC_UPDATE, update)


# ---- reading -------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in ROOTS:
        raise DocRefused("unknown_doc", f"Unknown document {name!r}; expected one of {list(DOC_NAMES)}.")


def _rows(session_id: int, name: str) -> list[bytes]:
    from realtime.models import SharedDocUpdate

    data = SharedDocUpdate.objects.filter(doc__session_id=session_id, doc__name=name).order_by("id")
    return [bytes(d) for d in data.values_list("data", flat=True)]


def _merge(updates: list[bytes]) -> bytes:
    """Merge updates losslessly. Rebuilding through a Doc would also drop deleted text, but it
    silently loses structs still waiting for a missing dependency (and deletions of them)."""
    if not updates:
        return EMPTY_UPDATE
    if len(updates) == 1:
        return updates[0]
    return merge_updates(*updates)


def shared_doc_state(*, session_id: int, name: str) -> bytes:
    """The document as one Yjs update: every persisted row merged (snapshot + appended updates)."""
    _check_name(name)
    return _merge(_rows(session_id, name))


def doc_from_update(update: bytes) -> Doc:
    doc: Doc = Doc()
    if update != EMPTY_UPDATE:
        doc.apply_update(update)
    return doc


def shared_doc_load(*, session_id: int, name: str) -> Doc:
    """A pycrdt Doc holding the persisted document."""
    return doc_from_update(shared_doc_state(session_id=session_id, name=name))


def shared_doc_diff(*, session_id: int, name: str, state_vector: bytes) -> bytes:
    """What a peer with `state_vector` lacks (the payload of a sync step 2)."""
    state = shared_doc_state(session_id=session_id, name=name)
    try:
        return get_update(state, state_vector)
    except Exception as exc:  # yrs reports bad input as ValueError/RuntimeError
        raise DocRefused("malformed", "That state vector cannot be decoded.") from exc


def _text(value: Any, limit: int) -> str:
    return str(value).strip()[:limit] if isinstance(value, str | int | float) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def doc_json(name: str, doc: Doc) -> dict[str, Any]:
    """Plain JSON of a document, for server-side rendering and the API. Entries that do not fit
    the shape (a hostile client can write anything into a CRDT) are left out, never raised on."""
    _check_name(name)
    if name == "notes":
        return {"text": str(doc.get("text", type=Text))}
    if name == "inventory":
        items = []
        for raw in doc.get("items", type=Array).to_py() or []:
            if not isinstance(raw, dict):
                continue
            item_name, qty = _text(raw.get("name"), 80), _int(raw.get("qty"))
            if not item_name or qty is None:
                continue
            items.append(
                {
                    "id": _text(raw.get("id"), 40),
                    "name": item_name,
                    "qty": max(0, min(qty, 9999)),
                    "holder": _text(raw.get("holder"), 40),
                }
            )
        return {"items": items}
    markers = []
    for marker_id, raw in (doc.get("markers", type=Map).to_py() or {}).items():
        if not isinstance(raw, dict):
            continue
        x, y, label = _int(raw.get("x")), _int(raw.get("y")), _text(raw.get("label"), 40)
        if x is None or y is None or not (0 <= x < MAP_COLS and 0 <= y < MAP_ROWS) or not label:
            continue
        kind = raw.get("kind") if raw.get("kind") in MARKER_KINDS else "poi"
        markers.append({"id": str(marker_id)[:40], "x": x, "y": y, "label": label, "kind": kind})
    markers.sort(key=lambda m: (m["label"].lower(), m["id"]))
    return {"markers": markers}


def shared_doc_json(*, session_id: int, name: str) -> dict[str, Any]:
    """Trusted read (the caller checked membership)."""
    return doc_json(name, shared_doc_load(session_id=session_id, name=name))


def shared_docs_for(*, viewer, session_id: int) -> dict[str, dict[str, Any]]:
    """All three documents of a session as JSON, for a member; NotFound for anyone else."""
    from campaigns.selectors import session_membership_get

    session_membership_get(viewer=viewer, session_id=session_id)
    return {name: shared_doc_json(session_id=session_id, name=name) for name in DOC_NAMES}


# ---- writing -------------------------------------------------------------------------------


def update_validate(name: str, state: bytes, update: bytes) -> None:
    """Refuse an update that is too big, does not decode and apply on top of `state`, or writes
    a root other than the document's own. Pure: no database."""
    _check_name(name)
    if len(update) > MAX_UPDATE_BYTES:
        raise DocRefused("too_large", f"Updates are limited to {MAX_UPDATE_BYTES // 1024} KB.")
    if len(state) + len(update) > MAX_DOC_BYTES:
        raise DocRefused("doc_full", f"This document has reached its {MAX_DOC_BYTES // 2**20} MB limit.")
    doc = doc_from_update(state)
    try:
        doc.apply_update(update)
    except Exception as exc:  # yrs reports bad input as ValueError/RuntimeError
        raise DocRefused("malformed", "That update cannot be decoded or applied.") from exc
    extra = set(doc.keys()) - {ROOTS[name]}
    if extra:
        raise DocRefused("invalid", f"The {name} document has no {sorted(extra)[0]!r}.")


def shared_doc_apply(*, session_id: int, name: str, update: bytes, user=None) -> bool:
    """Validate and durably append one client update. Returns False for an empty update (nothing
    stored, nothing to broadcast); raises DocRefused for one that must not be stored.

    Trusted: the caller has checked that `user` may write this session's documents. Compacts the
    document afterwards, in its own transaction, once it holds more than COMPACT_AFTER rows.
    """
    from realtime.models import SharedDoc, SharedDocUpdate

    _check_name(name)
    if update == EMPTY_UPDATE:
        return False
    if len(update) > MAX_UPDATE_BYTES:  # before loading anything
        raise DocRefused("too_large", f"Updates are limited to {MAX_UPDATE_BYTES // 1024} KB.")
    update_validate(name, shared_doc_state(session_id=session_id, name=name), update)
    with transaction.atomic():
        doc, _ = SharedDoc.objects.get_or_create(session_id=session_id, name=name)
        # Taking the row lock orders this append after a running compaction (which holds it).
        SharedDoc.objects.filter(pk=doc.pk).update(updated_at=timezone.now())
        SharedDocUpdate.objects.create(doc=doc, data=update, by=user if user and user.pk else None)
        count = SharedDocUpdate.objects.filter(doc=doc).count()
    if count > COMPACT_AFTER:
        shared_doc_compact(doc_id=doc.pk)
    return True


def shared_doc_compact(*, doc_id: int) -> int:
    """Fold a document's rows into one snapshot row. Returns how many rows it replaced.

    Holds the document row lock, so two compactions never merge the same rows; deletes by the ids
    it read, so a row appended concurrently (not yet visible to it) is kept, never lost.
    """
    from realtime.models import SharedDoc, SharedDocUpdate

    with transaction.atomic():
        doc = SharedDoc.objects.select_for_update().get(pk=doc_id)
        rows = list(SharedDocUpdate.objects.filter(doc=doc).order_by("id").values_list("id", "data"))
        if len(rows) <= 1:
            return 0
        merged = _merge([bytes(data) for _, data in rows])
        SharedDocUpdate.objects.create(doc=doc, data=merged, is_snapshot=True)
        SharedDocUpdate.objects.filter(id__in=[pk for pk, _ in rows]).delete()
        SharedDoc.objects.filter(pk=doc.pk).update(compacted_at=timezone.now())
    logger.info("compacted shared doc %s: %d rows into one", doc_id, len(rows))
    return len(rows)


# ---- broadcast -----------------------------------------------------------------------------


async def send_doc_update(session_id: int, name: str, update: bytes, *, sender: str | None) -> None:
    """Fan a persisted update out to the document's sockets (the sender's own skips it).
    Call only after the update's transaction committed. Base64 keeps the payload JSON-safe."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    await layer.group_send(
        doc_group(session_id, name),
        {"type": "doc.update", "update": base64.b64encode(update).decode("ascii"), "sender": sender},
    )
