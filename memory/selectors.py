from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from campaigns.errors import NotFound
from campaigns.models import Membership, PlaySession
from memory.folding import Fold, fold
from memory.models import Memory
from memory.retrieval import scope_filter
from memory.summaries import SUMMARY_TAG, summary_body


def memory_get(*, viewer, memory_id: int) -> Memory:
    """404 for anything the viewer may not see — another player's private memory included."""
    campaign_id = Memory.objects.filter(pk=memory_id).values_list("campaign_id", flat=True).first()
    membership = (
        Membership.objects.filter(campaign_id=campaign_id, user=viewer).first()
        if campaign_id and viewer.is_authenticated
        else None
    )
    memory = None
    if membership is not None:
        scope = scope_filter(
            campaign_id=campaign_id, user_id=viewer.pk, is_gm=membership.role == Membership.Role.GM
        )
        memory = Memory.objects.filter(scope, pk=memory_id).first()
    if memory is None:
        raise NotFound("No such memory.")
    return memory


def memory_list(*, viewer, membership: Membership, limit: int = 200, related: bool = False) -> list[Memory]:
    scope = scope_filter(
        campaign_id=membership.campaign_id, user_id=viewer.pk, is_gm=membership.role == Membership.Role.GM
    )
    rows = Memory.objects.filter(scope).defer("embedding", "search").order_by("-created_at", "-id")
    if related:
        rows = rows.select_related("created_by")
    return list(rows[:limit])


# ---- the memory page: readable entries, grouped by session, repeats folded ------------------

# What a memory is, for the reader, by the event it was recorded from (memory.policy).
_KINDS = {
    "Action": "action",
    "Narration": "narration",
    "Opening": "narration",
    "DiceRolled": "dice",
    "Whisper": "whisper",
    "SessionOpened": "scene",
    "SceneChanged": "scene",
    "ObjectiveSet": "objective",
    "ObjectiveCompleted": "objective",
    "ObjectiveRevealed": "objective",
    "NpcSpoke": "NPC",
    "CardDrawn": "twist",
    "TwistTriggered": "twist",
    "RewardGranted": "loot",
    "MissionCompleted": "mission",
    "MissionFailed": "mission",
}
# "Kira acted: …", "Ossian whispered: …", "Sister Ameline said: …" (memory.policy's wording).
_SPOKEN = {"Action": " acted: ", "Whisper": " whispered: ", "NpcSpoke": " said: "}


@dataclass
class Entry:
    """One memory as the page shows it: who, what kind, when, where from, and its text."""

    memory: Memory
    who: str
    kind: str
    text: str
    session: str
    private: bool


@dataclass
class Group:
    """The memories of one session (or the notes and imports, `session_id` None)."""

    session_id: int | None
    title: str
    summaries: list[Entry]
    entries: list[Fold[Entry]]


def entry(memory: Memory, session_titles: dict[int, str]) -> Entry:
    event_type = (memory.metadata or {}).get("event_type", "")
    text, who = memory.text, "GM"
    if memory.created_by_id is not None:
        kind, who = "note", memory.created_by.username if memory.created_by else "someone"
    elif SUMMARY_TAG in (memory.tags or []) and memory.source_seq is not None:
        kind, who, text = "summary", "Summary", summary_body(memory)
    else:
        kind = _KINDS.get(event_type, "memory")
        marker = _SPOKEN.get(event_type)
        if marker and marker in text:
            who, text = text.split(marker, 1)
    return Entry(
        memory=memory,
        who=who,
        kind=kind,
        text=text,
        session=session_titles.get(memory.source_session_id or 0, ""),
        private=memory.is_private,
    )


def _titles(campaign_id: int, memories: list[Memory]) -> dict[int, str]:
    ids = {m.source_session_id for m in memories if m.source_session_id}
    return {s.pk: str(s) for s in PlaySession.objects.filter(campaign_id=campaign_id, pk__in=ids)}


def memory_page_groups(*, viewer, membership: Membership, limit: int = 500) -> list[Group]:
    """What the viewer may see, newest first, grouped by the session it came from (notes and
    imports together), each group's summaries on top and its repeats folded (memory.folding)."""
    memories = memory_list(viewer=viewer, membership=membership, limit=limit, related=True)
    titles = _titles(membership.campaign_id, memories)
    by_session: dict[int | None, list[Entry]] = {}
    for m in memories:
        by_session.setdefault(m.source_session_id, []).append(entry(m, titles))
    groups = []
    for session_id, entries in by_session.items():
        summaries = [e for e in entries if e.kind == "summary"]
        rest = [e for e in entries if e.kind != "summary"]
        groups.append(
            Group(
                session_id=session_id,
                title=titles.get(session_id or 0, "Session") if session_id else "Notes and imports",
                summaries=summaries,
                entries=fold(rest, text=lambda e: e.memory.text, kind=lambda e: e.private),
            )
        )
    return groups


def search_entries(*, campaign_id: int, hits: list) -> list[Fold]:
    """Search hits (memory.retrieval.Recalled, best first) as readable entries, repeats folded
    under the best-ranked one. Each fold's items are (entry, hit) pairs."""
    memories = [h.memory for h in hits]
    titles = _titles(campaign_id, memories)
    creator_ids = {m.created_by_id for m in memories if m.created_by_id}
    creators = {u.pk: u for u in get_user_model().objects.filter(pk__in=creator_ids)}
    for m in memories:
        if m.created_by_id:
            m.created_by = creators.get(m.created_by_id)
    pairs = [(entry(h.memory, titles), h) for h in hits]
    return fold(pairs, text=lambda p: p[1].memory.text, kind=lambda p: p[0].private)
