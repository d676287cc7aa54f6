"""A whole campaign as one file, and back (issue 16 part 5): the save file a self-hoster keeps.

The file is JSON, format "gtw-campaign", version 1:

    {"format": "gtw-campaign", "version": 1, "exported_at": "...",
     "campaign": {name, pack, pack_version, personality, mission_slug, mission_hash, stash, settings},
     "people": [{"ref": "u1", "username": "..."}],          # users named by ref, never by id
     "members": [{"person": "u1", "role": "gm"}],
     "characters": [{"ref": 7, "owner": "u2", name, archetype, attributes, xp, level, inventory}],
     "sessions": [{number, title, status, kind, opened_by, created_at, version, state_hash,
                   snapshots: [seq, ...],
                   events: [{seq, type, actor, payload, seed, idempotency_key, audience, created_at}]}],
     "schedules": [{title, notes, start, time_zone, duration_minutes, rrule, exdates,
                    overrides: [{original, cancelled, start, duration_minutes}]}],
     "sections": {"memories": [...]},                       # what other apps keep (signals)
     "sha256": "<SHA-256 of the canonical JSON of everything above>"}

Import always makes a NEW campaign, in one transaction: a file that is too big, not JSON, of
another format or version, malformed, or whose checksum or event log does not add up (each
session's events must replay to the state hash the file records) is refused with a clear error
and nothing is written. The importer is the new campaign's GM; the file's other people are
matched to this site's accounts by username — to attribute their events and keep their
characters — but become members only through the GM's invites (an import never adds anyone to
a campaign). A character whose player has no account here is left out (the report says so).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jsonschema
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from campaigns import lifecycle
from campaigns.branching import BATCH, _remap, keep_created_at
from campaigns.errors import DomainError, Invalid
from campaigns.models import (
    Campaign,
    Character,
    ContentPack,
    Event,
    Membership,
    PersonalityPreset,
    PlaySession,
    Snapshot,
)
from campaigns.services import _require_gm
from campaigns.state import state_hash
from gtw_site import ratelimit
from gtw_site.text import check_storable_json, clean_text

FORMAT = "gtw-campaign"
VERSION = 1


class TooLarge(DomainError):
    status = 413
    code = "too_large"


def max_bytes() -> int:
    return int(getattr(settings, "GTW_CAMPAIGN_IMPORT_MAX_BYTES", 25 * 1024 * 1024))


def canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(body: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in body.items() if k != "sha256"})).hexdigest()


class People:
    """User id <-> the file's person refs ("u1", "u2", ...), handed out on first sight."""

    def __init__(self):
        self.refs: dict[int, str] = {}

    def ref(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in self.refs:
            self.refs[user_id] = f"u{len(self.refs) + 1}"
        return self.refs[user_id]


# ---- export -----------------------------------------------------------------------------------


def campaign_export(*, membership: Membership) -> dict[str, Any]:
    """The campaign as the file's JSON body (GM only)."""
    _require_gm(membership)
    campaign = membership.campaign
    people = People()
    members = [
        {"person": people.ref(m.user_id), "role": m.role} for m in campaign.memberships.order_by("joined_at")
    ]
    characters = [
        {
            "ref": c.pk,
            "owner": people.ref(c.owner_id),
            "name": c.name,
            "archetype": c.archetype,
            "attributes": c.attributes,
            "xp": c.xp,
            "level": c.level,
            "inventory": c.inventory,
        }
        for c in campaign.characters.order_by("pk")
    ]
    sessions = [_export_session(s, people) for s in campaign.sessions.order_by("number")]
    numbers = dict(campaign.sessions.values_list("pk", "number"))
    sections: dict[str, Any] = {}
    for _receiver, reply in lifecycle.campaign_exporting.send(
        sender=Campaign, campaign=campaign, people=people, sessions=numbers
    ):
        if reply:
            name, data = reply
            sections[name] = data
    users = dict(get_user_model().objects.filter(pk__in=list(people.refs)).values_list("pk", "username"))
    body = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now().isoformat(),
        "campaign": {
            "name": campaign.name,
            "pack": campaign.pack.slug,
            "pack_version": campaign.pack.version,
            "personality": campaign.personality.slug if campaign.personality else None,
            "mission_slug": campaign.mission_slug,
            "mission_hash": campaign.mission_hash,
            "stash": campaign.stash,
            "settings": campaign.settings or {},
        },
        "people": [{"ref": ref, "username": users.get(uid, "")} for uid, ref in people.refs.items()],
        "members": members,
        "characters": characters,
        "sessions": sessions,
        "schedules": _export_schedules(campaign),
        "sections": sections,
    }
    body["sha256"] = checksum(body)
    return body


def _export_session(session: PlaySession, people: People) -> dict[str, Any]:
    events = Event.objects.filter(session=session).order_by("seq")
    rows = [
        {
            "seq": e.seq,
            "type": e.type,
            "actor": people.ref(e.actor_id),
            "payload": _people_out(e.payload, people),
            "seed": e.seed,
            "idempotency_key": e.idempotency_key,
            "audience": None if e.audience is None else [people.ref(u) for u in e.audience],
            "created_at": e.created_at.isoformat(),
        }
        for e in events.iterator(chunk_size=BATCH)
    ]
    return {
        "number": session.number,
        "title": session.title,
        "status": session.status,
        "kind": session.kind,
        "opened_by": people.ref(session.opened_by_id),
        "created_at": session.created_at.isoformat(),
        "version": session.version,
        "state_hash": session.state_hash,
        # The hash of the log as written here (people as refs): what an import checks it against.
        "file_state_hash": _as_written_hash(rows),
        "snapshots": list(session.snapshots.order_by("seq").values_list("seq", flat=True)),
        "events": rows,
    }


def _as_written_hash(rows: list[dict]) -> str:
    from campaigns.lifecycle import replay_with_snapshots

    state, _ = replay_with_snapshots([_event(e, _ref_id, lambda p: p) for e in rows], [])
    return state_hash(state)


# Payload fields that hold a user id (a whisper's addressee): named by person ref in the file.
USER_FIELDS = ("to_user_id", "user_id")


def _people_out(value: Any, people: People) -> Any:
    if isinstance(value, list):
        return [_people_out(v, people) for v in value]
    if not isinstance(value, dict):
        return value
    return {
        k: (
            people.ref(v)
            if k in USER_FIELDS and isinstance(v, int) and not isinstance(v, bool)
            else _people_out(v, people)
        )
        for k, v in value.items()
    }


def _people_in(value: Any, users: dict[str, int | None]) -> Any:
    if isinstance(value, list):
        return [_people_in(v, users) for v in value]
    if not isinstance(value, dict):
        return value
    return {
        k: (users.get(v) if k in USER_FIELDS and isinstance(v, str) else _people_in(v, users))
        for k, v in value.items()
    }


def _export_schedules(campaign: Campaign) -> list[dict[str, Any]]:
    from campaigns.scheduling import recurrence
    from campaigns.scheduling.models import SessionSchedule

    out = []
    for s in SessionSchedule.objects.filter(campaign=campaign).prefetch_related("overrides").order_by("pk"):
        tz = recurrence.zone(s.time_zone)
        out.append(
            {
                "title": s.title,
                "notes": s.notes,
                "start": s.dtstart.isoformat(),
                "time_zone": s.time_zone,
                "duration_minutes": s.duration_minutes,
                "rrule": s.rrule,
                "exdates": s.exdates,
                "overrides": [
                    {
                        "original": o.original,
                        "cancelled": o.cancelled,
                        "start": recurrence.to_local(o.start, tz).isoformat() if o.start else None,
                        "duration_minutes": o.duration_minutes,
                    }
                    for o in s.overrides.all()
                ],
            }
        )
    return out


def export_filename(campaign: Campaign) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in campaign.name.lower()).strip("-")[:40] or "campaign"
    return f"{safe}-{timezone.now():%Y%m%d}.gtw.json"


# ---- the file's shape ---------------------------------------------------------------------------

_REF = {"type": ["string", "null"], "maxLength": 20}
_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_ITEMS = {
    "type": "array",
    "maxItems": 1000,
    "items": {
        "type": "object",
        "required": ["item", "qty"],
        "properties": {"item": {"type": "string", "maxLength": 120}, "qty": _INT32},
    },
}
_EVENT = {
    "type": "object",
    "required": ["seq", "type", "payload"],
    "properties": {
        "seq": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        "type": {"type": "string", "minLength": 1, "maxLength": 40},
        "actor": _REF,
        "payload": {"type": "object"},
        "seed": {"type": ["integer", "null"], "minimum": -(2**63), "maximum": 2**63 - 1},
        "idempotency_key": {"type": ["string", "null"], "maxLength": 120},
        "audience": {"type": ["array", "null"], "items": _REF, "maxItems": 1000},
        "created_at": {"type": ["string", "null"], "maxLength": 40},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["format", "version", "campaign", "people", "members", "characters", "sessions", "sha256"],
    "properties": {
        "campaign": {
            "type": "object",
            "required": ["name", "pack"],
            "properties": {
                "name": {"type": "string", "maxLength": 500},
                "pack": {"type": "string", "maxLength": 100},
                "personality": {"type": ["string", "null"], "maxLength": 100},
                "mission_slug": {"type": "string", "maxLength": 80},
                "mission_hash": {"type": "string", "maxLength": 64},
                "stash": _ITEMS,
                "settings": {"type": "object"},
            },
        },
        "people": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["ref", "username"],
                "properties": {
                    "ref": {"type": "string", "maxLength": 20},
                    "username": {"type": "string", "maxLength": 150},
                },
            },
        },
        "members": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["person", "role"],
                "properties": {"person": _REF, "role": {"enum": ["gm", "player", "spectator"]}},
            },
        },
        "characters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["ref", "owner", "name", "archetype"],
                "properties": {
                    "ref": {"type": "integer"},
                    "owner": _REF,
                    "name": {"type": "string", "maxLength": 60},
                    "archetype": {"type": "string", "maxLength": 50},
                    "attributes": {
                        "type": "object",
                        "maxProperties": 50,
                        "additionalProperties": {"type": "integer", "minimum": -1000, "maximum": 1000},
                    },
                    "xp": _INT32,
                    "level": {"type": "integer", "minimum": 1, "maximum": 32767},
                    "inventory": _ITEMS,
                },
            },
        },
        "sessions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "number",
                    "status",
                    "kind",
                    "version",
                    "state_hash",
                    "file_state_hash",
                    "events",
                ],
                "properties": {
                    "number": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    "title": {"type": "string", "maxLength": 120},
                    "status": {"enum": ["active", "ended"]},
                    "kind": {"enum": ["party", "stage"]},
                    "opened_by": _REF,
                    "version": _INT32,
                    "state_hash": {"type": "string", "maxLength": 64},
                    "file_state_hash": {"type": "string", "maxLength": 64},
                    "snapshots": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    },
                    "events": {"type": "array", "items": _EVENT},
                },
            },
        },
        "schedules": {"type": "array", "items": {"type": "object"}},
        "sections": {"type": "object"},
        "sha256": {"type": "string"},
    },
}


# ---- import -----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    campaign: Campaign
    sessions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse(data: bytes) -> dict[str, Any]:
    """The file's body, checked: size, JSON, format, version, shape, checksum. Raises the
    error a person can act on; reads nothing from the database."""
    if len(data) > max_bytes():
        raise TooLarge(
            f"The file is {len(data) / 1048576:.1f} MiB; campaign files are at most "
            f"{max_bytes() / 1048576:.0f} MiB here (GTW_CAMPAIGN_IMPORT_MAX_BYTES)."
        )
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Invalid("That is not a campaign file: it is not JSON.", code="bad_file") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise Invalid("That is not a campaign file (its format is not gtw-campaign).", code="bad_file")
    version = body.get("version")
    if version != VERSION:
        raise Invalid(
            f"This campaign file is version {version!r}; this site reads version {VERSION}.",
            code="unknown_version",
        )
    try:
        jsonschema.validate(body, SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the file"
        raise Invalid(
            f"The campaign file is malformed at {where}: {exc.message[:200]}", code="bad_file"
        ) from None
    except RecursionError:
        raise Invalid("The campaign file is nested too deeply.", code="bad_file") from None
    if checksum(body) != body["sha256"]:
        raise Invalid(
            "The campaign file was changed after it was exported (its checksum does not match); "
            "nothing was imported.",
            code="tampered",
        )
    check_storable_json(body, what="The campaign file")
    return body


def campaign_import(*, user, data: bytes, name: str = "") -> ImportReport:
    """A new campaign from a file `campaign_export` wrote. One transaction: all or nothing."""
    ratelimit.rate_check(scope="campaign_copy", ident=user.pk)
    body = parse(data)
    with transaction.atomic():
        return _import(user, body, name)


def _import(user, body: dict[str, Any], name: str) -> ImportReport:
    info = body["campaign"]
    pack = ContentPack.objects.filter(slug=info["pack"]).first()
    if pack is None:
        raise Invalid(
            f"This site has no content pack '{info['pack']}', which the campaign plays.", code="bad_file"
        )
    personality = None
    if info.get("personality"):
        personality = PersonalityPreset.objects.filter(slug=info["personality"]).first()
    personality = personality or PersonalityPreset.objects.order_by("name").first()
    campaign = Campaign.objects.create(
        name=clean_text(name or info["name"], what="The campaign name", max_len=120),
        pack=pack,
        personality=personality,
        created_by=user,
        mission_slug=info.get("mission_slug", ""),
        mission_hash=info.get("mission_hash", ""),
        stash=info.get("stash", []),
        # Provider choices may name stored keys of the exporting site's people: never carried
        # into someone else's campaign (its GM chooses providers again).
        settings={k: v for k, v in (info.get("settings") or {}).items() if k != "providers"},
    )
    report = ImportReport(campaign=campaign)
    if info.get("pack_version") and info["pack_version"] != pack.version:
        report.notes.append(
            f"The file was made with {pack.name} {info['pack_version']}; this site has {pack.version}."
        )
    numbers = [data["number"] for data in body["sessions"]]
    if len(set(numbers)) != len(numbers):
        raise Invalid("The campaign file numbers two sessions the same.", code="bad_file")
    Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.GM)
    users = _match_people(body, user)
    characters = _import_characters(campaign, body, users, report)
    sessions: dict[int, int] = {}
    for data in body["sessions"]:
        sessions[data["number"]] = _import_session(campaign, data, users, characters, user, report)
    _import_schedules(campaign, body.get("schedules") or [], user, report)
    sections = body.get("sections") or {}
    for _receiver, line in lifecycle.campaign_importing.send(
        sender=Campaign, campaign=campaign, sections=sections, people=users, sessions=sessions
    ):
        if line:
            report.notes.append(line)
    return report


def _match_people(body: dict[str, Any], importer) -> dict[str, int | None]:
    """ref -> a local user id (same username) or None. The file's GM is the importer."""
    names = {p["ref"]: p["username"] for p in body["people"]}
    found = dict(
        get_user_model().objects.filter(username__in=list(names.values())).values_list("username", "pk")
    )
    users = {ref: found.get(username) for ref, username in names.items()}
    for m in body["members"]:
        if m["role"] == Membership.Role.GM and m["person"] in users:
            users[m["person"]] = importer.pk
    return users


def _import_characters(campaign: Campaign, body, users, report: ImportReport) -> dict[int, int]:
    kept, skipped = [], 0
    owners: set[int] = set()
    for c in body["characters"]:
        owner = users.get(c["owner"])
        if owner is None or owner in owners:
            skipped += 1
            continue
        owners.add(owner)
        kept.append((c["ref"], c))
    created = Character.objects.bulk_create(
        Character(
            campaign=campaign,
            owner_id=users[c["owner"]],
            name=clean_text(c["name"], what="A character name", max_len=60),
            archetype=c["archetype"],
            attributes=c.get("attributes") or {},
            xp=c.get("xp", 0),
            level=c.get("level", 1),
            inventory=c.get("inventory") or [],
        )
        for _ref, c in kept
    )
    if skipped:
        report.notes.append(f"{skipped} character(s) left out: their players have no account here.")
    return {ref: new.pk for (ref, _c), new in zip(kept, created, strict=True)}


def _import_session(campaign, data, users, characters, importer, report: ImportReport) -> int:
    from campaigns.lifecycle import replay_with_snapshots

    number = data["number"]
    rows = data["events"]
    if [e["seq"] for e in rows] != list(range(1, len(rows) + 1)) or data["version"] != len(rows):
        raise Invalid(f"Session {number}'s events are not numbered 1 to {data['version']}.", code="bad_file")
    # The log as written (people as refs) must fold to the state hash the file records for it.
    try:
        as_written = _as_written_hash(rows)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise Invalid(f"Session {number}'s events do not replay: {exc}", code="bad_file") from None
    if as_written != data["file_state_hash"]:
        raise Invalid(
            f"Session {number}'s events do not replay to its recorded state; the file was altered. "
            "Nothing was imported.",
            code="tampered",
        )
    copies = [_event(e, users.get, lambda p: _remap(_people_in(p, users), characters)) for e in rows]
    try:
        state, snaps = replay_with_snapshots(copies, data.get("snapshots") or [])
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise Invalid(f"Session {number}'s events do not replay: {exc}", code="bad_file") from None
    session = PlaySession.objects.create(
        campaign=campaign,
        number=number,
        title=clean_text(data.get("title", ""), what="A session title", max_len=120, required=False),
        status=data["status"],
        kind=data["kind"],
        opened_by_id=users.get(data.get("opened_by")) or importer.pk,
        version=len(rows),
        state=state,
        state_hash=state_hash(state),
    )
    for e in copies:
        e.session = session
    Event.objects.bulk_create(copies, batch_size=BATCH)
    keep_created_at(copies, [_when(e.get("created_at")) for e in rows])
    Snapshot.objects.bulk_create(
        Snapshot(session=session, seq=s, state=st, sha256=state_hash(st)) for s, st in snaps
    )
    report.sessions.append(
        {
            "number": number,
            "id": session.pk,
            "version": session.version,
            "state_hash": session.state_hash,
            "same_as_file": session.state_hash == data["state_hash"],
        }
    )
    return session.pk


def _ref_id(ref: str | None) -> int | None:
    """The exporting site's ids are gone; a stable stand-in per ref for the as-written replay."""
    if ref is None:
        return None
    digits = ref[1:] if ref.startswith("u") else ""
    return int(digits) if digits.isdigit() else None


def _event(row: dict, actor, payload) -> Event:
    return Event(
        seq=row["seq"],
        type=row["type"],
        actor_id=actor(row.get("actor")),
        payload=payload(row["payload"]),
        seed=row.get("seed"),
        idempotency_key=row.get("idempotency_key"),
        audience=None
        if row.get("audience") is None
        else [u for u in (actor(r) for r in row["audience"]) if u],
    )


def _when(value) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return timezone.now()
    return moment


def _import_schedules(campaign: Campaign, schedules: list[dict], importer, report: ImportReport) -> None:
    from campaigns.scheduling import services as scheduling

    if not schedules:
        return
    membership = Membership.objects.get(campaign=campaign, user=importer)
    for i, s in enumerate(schedules, start=1):
        try:
            schedule = scheduling.schedule_create(
                membership=membership,
                title=s.get("title", ""),
                notes=s.get("notes", ""),
                start=s.get("start", ""),
                time_zone=s.get("time_zone", ""),
                duration_minutes=s.get("duration_minutes"),
                rrule=s.get("rrule", ""),
                exdates=s.get("exdates") or [],
            )
            overrides = s.get("overrides") or []
            if not isinstance(overrides, list) or len(overrides) > scheduling.max_overrides():
                raise Invalid("too many changed sessions")
            for o in overrides:
                if o.get("cancelled"):
                    scheduling.occurrence_cancel(
                        membership=membership, schedule=schedule, original=o["original"]
                    )
                else:
                    scheduling.occurrence_move(
                        membership=membership,
                        schedule=schedule,
                        original=o["original"],
                        start=o["start"],
                        duration_minutes=o.get("duration_minutes"),
                    )
        except (DomainError, KeyError, TypeError, AttributeError) as exc:
            detail = exc.message if isinstance(exc, DomainError) else "a field is missing"
            raise Invalid(f"Schedule {i} in the file is not valid: {detail}", code="bad_file") from None
    report.notes.append(f"{len(schedules)} schedule(s) restored.")
