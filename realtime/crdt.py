"""Shared documents of a play session — notes, inventory, map — as Yjs CRDTs.

Clients edit their own Yjs copy and exchange updates with the server over the standard y-protocols
sync protocol (realtime/crdt_consumer.py). The server is a durable peer: an incoming update is
applied to the stored document and only what it actually changed (the diff) is appended as a row
(`SharedDocUpdate`) and committed before anyone hears of it; a document's content is the merge of
its rows. Updates commute, so appends need no ordering — only compaction (rebuilding the rows into
one snapshot, which drops deleted content) takes a lock, and it deletes exactly the rows it merged,
so an update appended meanwhile survives as a row of its own.

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
# What one update or sync step 2 may add to a document (its diff: new content and deletions).
MAX_UPDATE_BYTES = 256 * 1024
# A sync step 2 always carries the peer's whole delete set, so on a long-lived document it is far
# bigger than what it changes: it gets its own raw bound, a sanity limit only (the diff is capped
# above). 1 MiB is Daphne's default websocket message size, which drops anything bigger anyway;
# 64 bytes are left for the frame's header. Keep SYNC_FRAME_BYTES in static/shared-docs.js equal.
MAX_SYNC_BYTES = 1024 * 1024 - 64
# The document once rebuilt (deleted content garbage-collected); the rows stored in between are
# compacted before they pass it. A ceiling so one member cannot fill the database.
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


def _read_var_uint(data: bytes, pos: int, max_shift: int = 28) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > max_shift:  # 5 bytes: lengths and types fit in 32 bits
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
    """Merge updates losslessly (deleted content included: compaction rebuilds, see _rebuild)."""
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


@dataclass(frozen=True)
class Change:
    """What an update did to a document: `diff` is the update of what it changed (EMPTY_UPDATE if
    nothing); `pending` says part of it waits for content the server does not hold (an earlier
    update that was refused or dropped) — that part is not stored, the sender must resend it."""

    diff: bytes
    pending: bool


def _uint(data: bytes, pos: int) -> tuple[int, int]:
    return _read_var_uint(data, pos, max_shift=63)  # client ids take up to 53 bits


def _state_vector(vector: bytes) -> dict[int, int]:
    count, pos = _uint(vector, 0)
    clocks = {}
    for _ in range(count):
        client, pos = _uint(vector, pos)
        clocks[client], pos = _uint(vector, pos)
    return clocks


def _beyond(update: bytes, vector: bytes) -> bytes | None:
    """The part of `update` a doc with state `vector` could not integrate — structs past its
    clocks, or deletions of them — or None if there is none."""
    rest = get_update(update, vector)
    structs, pos = _uint(rest, 0)
    if structs:
        return rest
    clocks = _state_vector(vector)
    clients, pos = _uint(rest, pos)
    for _ in range(clients):
        client, pos = _uint(rest, pos)
        ranges, pos = _uint(rest, pos)
        for _ in range(ranges):
            clock, pos = _uint(rest, pos)
            length, pos = _uint(rest, pos)
            if clock + length > clocks.get(client, 0):
                return rest
    return None


def _too_large(limit: int) -> DocRefused:
    return DocRefused("too_large", f"One change is limited to {limit // 1024} KB; this one is bigger.")


def _changes(name: str, state: bytes, update: bytes, *, sync_step2: bool) -> tuple[Change, Doc]:
    """Apply `update` to a Doc of `state` and capture what it changed. Refuses (DocRefused) an
    update too big (raw, or its diff), one that does not decode, or one that writes a root other
    than the document's own. Returns the change and the Doc after it. Pure: no database."""
    _check_name(name)
    raw_limit = MAX_SYNC_BYTES if sync_step2 else MAX_UPDATE_BYTES
    if len(update) > raw_limit:
        raise _too_large(raw_limit)
    doc = doc_from_update(state)
    before = set(doc.keys())
    captured: list[bytes] = []
    sub = doc.observe(lambda event: captured.append(event.update))
    try:
        doc.apply_update(update)
        pending = update != EMPTY_UPDATE and _beyond(update, doc.get_state()) is not None
    except Exception as exc:  # yrs reports bad input as ValueError/RuntimeError
        raise DocRefused("malformed", "That update cannot be decoded or applied.") from exc
    finally:
        doc.unobserve(sub)
    extra = set(doc.keys()) - before - {ROOTS[name]}
    if extra:
        raise DocRefused("invalid", f"The {name} document has no {sorted(extra)[0]!r}.")
    diff = _merge(captured)
    if len(diff) > MAX_UPDATE_BYTES:
        raise _too_large(MAX_UPDATE_BYTES)
    return Change(diff, pending), doc


def update_changes(name: str, state: bytes, update: bytes, *, sync_step2: bool = False) -> Change:
    """What `update` would change on top of `state` (see _changes). Pure: no database."""
    return _changes(name, state, update, sync_step2=sync_step2)[0]


def shared_doc_changes(*, session_id: int, name: str, update: bytes, sync_step2: bool = False) -> Change:
    """What `update` would change in the stored document; stores nothing."""
    _check_name(name)
    if update == EMPTY_UPDATE:
        return Change(EMPTY_UPDATE, False)
    state = shared_doc_state(session_id=session_id, name=name)
    return update_changes(name, state, update, sync_step2=sync_step2)


def shared_doc_write(
    *, session_id: int, name: str, update: bytes, user=None, sync_step2: bool = False
) -> Change:
    """Validate one client update (or sync step 2) and durably append what it changed. Nothing
    is stored when it changes nothing (a step 2 with nothing new, a repeat); raises DocRefused for
    one that must not be stored. Broadcast `diff`, never the incoming update.

    The size cap applies to the document rebuilt with deleted content dropped: when the rows
    would pass MAX_DOC_BYTES, they are compacted first, and only a rebuilt document that is still
    too big refuses the change.

    Trusted: the caller has checked that `user` may write this session's documents. Compacts the
    document afterwards, in its own transaction, once it holds more than COMPACT_AFTER rows.
    """
    from realtime.models import SharedDoc, SharedDocUpdate

    _check_name(name)
    if update == EMPTY_UPDATE:
        return Change(EMPTY_UPDATE, False)
    raw_limit = MAX_SYNC_BYTES if sync_step2 else MAX_UPDATE_BYTES
    if len(update) > raw_limit:  # before loading anything
        raise _too_large(raw_limit)
    state = shared_doc_state(session_id=session_id, name=name)
    change, after = _changes(name, state, update, sync_step2=sync_step2)
    if change.diff == EMPTY_UPDATE:
        return change
    _moderate(session_id, name, after, user)  # issue 18: content settings
    if len(state) + len(change.diff) > MAX_DOC_BYTES:
        if len(after.get_update()) > MAX_DOC_BYTES:  # the rebuilt document, this change included
            raise DocRefused("doc_full", f"This document has reached its {MAX_DOC_BYTES // 2**20} MB limit.")
        doc_id = SharedDoc.objects.only("pk").get(session_id=session_id, name=name).pk
        shared_doc_compact(doc_id=doc_id, force=True)  # drops deleted content: room again
    with transaction.atomic():
        doc, _ = SharedDoc.objects.get_or_create(session_id=session_id, name=name)
        # Taking the row lock orders this append after a running compaction (which holds it).
        SharedDoc.objects.filter(pk=doc.pk).update(updated_at=timezone.now())
        SharedDocUpdate.objects.create(doc=doc, data=change.diff, by=user if user and user.pk else None)
        count = SharedDocUpdate.objects.filter(doc=doc).count()
    if count > COMPACT_AFTER:
        shared_doc_compact(doc_id=doc.pk)
    return change


def _moderate(session_id: int, name: str, after: Doc, user) -> None:
    """A shared doc is checked as it is saved (issue 18): text that crosses the campaign's
    content settings (block) is refused; held text is stored — a CRDT can't keep part of a
    document back — and goes to the GM's review queue, once per distinct flagged text."""
    import hashlib

    from campaigns.errors import Invalid
    from campaigns.models import PlaySession
    from campaigns.safety.services import check_text

    data = doc_json(name, after)
    if name == "notes":
        text = data["text"]
    elif name == "inventory":
        text = "\n".join(item["name"] for item in data["items"])
    else:
        text = "\n".join(marker["label"] for marker in data["markers"])
    if not text.strip():
        return
    session = PlaySession.objects.select_related("campaign", "campaign__pack").get(pk=session_id)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    try:
        check_text(
            campaign=session.campaign,
            text=text,
            source="doc",
            author=user if user is not None and user.pk else None,
            session=session,
            key=f"doc:{session_id}:{name}:{digest}",
        )
    except Invalid as exc:
        raise DocRefused("content_blocked", exc.message) from exc


def shared_doc_apply(
    *, session_id: int, name: str, update: bytes, user=None, sync_step2: bool = False
) -> bool:
    """shared_doc_write, answering only whether anything was stored."""
    change = shared_doc_write(
        session_id=session_id, name=name, update=update, user=user, sync_step2=sync_step2
    )
    return change.diff != EMPTY_UPDATE


def _rebuild(merged: bytes) -> tuple[bytes, bytes | None]:
    """The document rebuilt through a Doc — deleted content garbage-collected, only the deleted
    structure kept, as Yjs does — and the part still waiting for a missing dependency (a Doc
    would silently drop it), or None."""
    doc = doc_from_update(merged)
    vector = doc.get_state()
    pending = _beyond(merged, vector) if merged != EMPTY_UPDATE else None
    return doc.get_update(), pending


def shared_doc_compact(*, doc_id: int, force: bool = False) -> int:
    """Rebuild a document's rows into one snapshot row, dropping deleted content. Returns how many
    rows it replaced. A single row is rebuilt only with `force`, and kept if that gains nothing.

    Holds the document row lock, so two compactions never merge the same rows; deletes by the ids
    it read, so a row appended concurrently (not yet visible to it) is kept, never lost. Content
    still waiting for a missing dependency is kept as a row of its own.
    """
    from realtime.models import SharedDoc, SharedDocUpdate

    with transaction.atomic():
        doc = SharedDoc.objects.select_for_update().get(pk=doc_id)
        rows = list(SharedDocUpdate.objects.filter(doc=doc).order_by("id").values_list("id", "data"))
        if not rows or (len(rows) == 1 and not force):
            return 0
        merged = _merge([bytes(data) for _, data in rows])
        snapshot, pending = _rebuild(merged)
        if len(rows) == 1 and len(snapshot) + len(pending or b"") >= len(merged):
            return 0
        SharedDocUpdate.objects.create(doc=doc, data=snapshot, is_snapshot=True)
        if pending is not None:
            SharedDocUpdate.objects.create(doc=doc, data=pending)
        SharedDocUpdate.objects.filter(id__in=[pk for pk, _ in rows]).delete()
        SharedDoc.objects.filter(pk=doc.pk).update(compacted_at=timezone.now())
    logger.info(
        "compacted shared doc %s: %d rows (%d bytes) into %d bytes",
        doc_id,
        len(rows),
        len(merged),
        len(snapshot),
    )
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
