"""Tech trees at the table: installing a pack's trees, reading a campaign's research, and the
research services (start, complete, and what a beat does). The rules are missions.techtree's
(pure); this loads, locks, decides who may, appends and keeps inventories.

Research is campaign-wide and lives in the event log: ResearchStarted / ResearchCompleted /
ResearchDripped are appended to the campaign's running session, and the campaign's progress is
the fold of every session's research and BeatChanged events (`research_progress`), with the
same function the session reducer uses. Who decides: a character's research is its player's
(or the GM's); an alliance's is its leader's — the member who joined it first — or the GM's.
Spectators and non-members never research.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q

from campaigns import events, selectors
from campaigns.errors import Conflict, Forbidden, Invalid, NotFound
from campaigns.models import (
    Alliance,
    AllianceMember,
    Campaign,
    Character,
    ContentPack,
    Event,
    Membership,
    PlaySession,
)
from missions import techtree
from missions.models import TechTree

logger = logging.getLogger(__name__)

RESEARCH_EVENTS = ("ResearchStarted", "ResearchCompleted")
FOLDED = (*RESEARCH_EVENTS, "BeatChanged")


# ---- installing ------------------------------------------------------------------------------


def techtree_install(*, pack: ContentPack, document: Any) -> tuple[TechTree, bool]:
    """Validate and install (or update) one tree of `pack`. Invalid (with the JSON path) if bad."""
    try:
        tree = techtree.parse_tree(document)
    except techtree.TechTreeError as exc:
        raise Invalid(str(exc)) from exc
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    row = TechTree.objects.filter(pack=pack, slug=tree.slug).first()
    if row is not None and row.sha256 == digest:
        return row, False
    row = row or TechTree(pack=pack, slug=tree.slug)
    row.name, row.kind, row.document, row.sha256 = tree.name, tree.kind, document, digest
    row.save()
    return row, True


def on_pack_loaded(sender, *, pack: ContentPack, folder: Path, **kwargs) -> list[str]:
    """The pack's trees (techtrees/*.json). A tree that doesn't validate is reported, not installed."""
    changed = []
    for path in sorted(folder.glob("techtrees/*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            row, was_changed = techtree_install(pack=pack, document=document)
        except Invalid as exc:
            changed.append(f"tech tree {path.name} NOT installed: {exc.message}")
            continue
        except ValueError as exc:  # not JSON, not UTF-8
            changed.append(f"tech tree {path.name} NOT installed: {exc}")
            continue
        if was_changed:
            changed.append(f"tech tree {row.slug} ({row.kind})")
    return changed


# ---- reading ---------------------------------------------------------------------------------


def campaign_trees(campaign: Campaign) -> list[techtree.Tree]:
    """The campaign's pack trees, parsed (a row edited into nonsense is logged and skipped)."""
    trees = []
    for row in TechTree.objects.filter(pack_id=campaign.pack_id).order_by("kind", "slug"):
        try:
            trees.append(techtree.parse_tree(row.document))
        except techtree.TechTreeError:
            logger.warning("tech tree %s of pack %s is invalid; skipped", row.slug, campaign.pack_id)
    return trees


def research_progress(campaign_id: int, *, upto: tuple[int, int] | None = None) -> dict[str, Any]:
    """The campaign's research: every session's research and BeatChanged events folded in
    (session, seq) order. `upto` (session id, seq): only the events up to that one."""
    rows = Event.objects.filter(session__campaign_id=campaign_id, type__in=FOLDED)
    if upto is not None:
        session_id, seq = upto
        rows = rows.filter(Q(session_id__lt=session_id) | Q(session_id=session_id, seq__lte=seq))
    rows = rows.order_by("session_id", "seq").values_list("type", "payload")
    return techtree.fold(rows.iterator())


def alliance_leader_id(alliance_id: int) -> int | None:
    """The membership id of the alliance's leader: the member who joined first."""
    return (
        AllianceMember.objects.filter(alliance_id=alliance_id)
        .order_by("joined_at", "pk")
        .values_list("membership_id", flat=True)
        .first()
    )


def _held(items: list | None) -> dict[str, int]:
    return {e["item"]: e["qty"] for e in items or [] if isinstance(e, dict) and "item" in e and "qty" in e}


def _owners(membership: Membership) -> list[dict[str, Any]]:
    """Who the viewer sees research for: their own character and their alliances (the GM: all)."""
    campaign_id = membership.campaign_id
    gm = membership.role == Membership.Role.GM
    chars = Character.objects.filter(campaign_id=campaign_id).order_by("pk")
    alliances = Alliance.objects.filter(campaign_id=campaign_id).order_by("name")
    if not gm:
        chars = chars.filter(owner_id=membership.user_id)
        alliances = alliances.filter(memberships__membership=membership)
    owners = [
        {
            "kind": "player",
            "id": c.pk,
            "label": c.name,
            "xp": c.xp,
            "held": _held(c.inventory),
            "owner_user": c.owner_id,
        }
        for c in chars
    ]
    for a in alliances:
        owners.append(
            {
                "kind": "alliance",
                "id": a.pk,
                "label": a.name,
                "reputation": a.reputation,
                "leader": alliance_leader_id(a.pk),
            }
        )
    return owners


def _entry_view(tree, owner, research) -> dict[str, Any]:
    key = techtree.owner_key("character" if owner["kind"] == "player" else "alliance", owner["id"], tree.slug)
    entry = techtree.entry_of(research, key)
    earned = techtree.points_earned(
        owner["kind"], xp=owner.get("xp", 0), reputation=owner.get("reputation", 0)
    )
    return {
        "owner": key,
        "owner_kind": "character" if owner["kind"] == "player" else "alliance",
        "owner_id": owner["id"],
        "label": owner["label"],
        "points_earned": earned,
        "points_left": max(0, earned - entry["spent"]),
        "tree": techtree.view(tree, entry),
    }


def techtrees_for(*, viewer, campaign_id: int) -> dict[str, Any]:
    """The campaign's trees and the research the viewer may see (members only; NotFound else)."""
    membership = selectors.membership_get(viewer=viewer, campaign_id=campaign_id)
    campaign = membership.campaign
    trees = campaign_trees(campaign)
    research = research_progress(campaign.pk)
    progress = []
    for owner in _owners(membership):
        for tree in trees:
            if tree.kind == owner["kind"]:
                progress.append(_entry_view(tree, owner, research))
    leaders = {o["id"]: o.get("leader") for o in _owners(membership) if o["kind"] == "alliance"}
    for p in progress:
        if p["owner_kind"] == "alliance":
            p["you_decide"] = (
                membership.role == Membership.Role.GM or leaders.get(p["owner_id"]) == membership.pk
            )
        else:
            p["you_decide"] = membership.role == Membership.Role.GM or any(
                o["kind"] == "player" and o["id"] == p["owner_id"] and o["owner_user"] == membership.user_id
                for o in _owners(membership)
            )
    return {
        "campaign_id": campaign.pk,
        "trees": [{"slug": t.slug, "name": t.name, "kind": t.kind, "nodes": len(t.nodes)} for t in trees],
        "progress": progress,
    }


def character_research(*, campaign_id: int, character_id: int, owner_user_id: int) -> list[dict[str, Any]]:
    """The character sheet's view: the character's player trees. The caller has already
    checked the viewer may see the sheet."""
    campaign = Campaign.objects.get(pk=campaign_id)
    character = Character.objects.filter(pk=character_id, campaign_id=campaign_id).first()
    if character is None:
        return []
    research = research_progress(campaign_id)
    owner = {"kind": "player", "id": character.pk, "label": character.name, "xp": character.xp}
    return [_entry_view(t, owner, research) for t in campaign_trees(campaign) if t.kind == "player"]


# ---- the rules engine's view -----------------------------------------------------------------


def research_effects(campaign: Campaign) -> tuple[dict[int, techtree.Effects], techtree.Effects]:
    """What completed research adds to the rules: per character id (their own tree plus their
    alliances'), and for the whole table (the DDA cap and the story-deck pools of every
    alliance's research)."""
    trees = {t.slug: t for t in campaign_trees(campaign)}
    if not trees:
        return {}, techtree.Effects()
    research = research_progress(campaign.pk)
    done: dict[str, list[tuple[techtree.Tree, list[str]]]] = {}
    for key, entry in research.items():
        kind, _, rest = key.partition(":")
        owner_id, _, slug = rest.partition(":")
        if slug in trees and entry["done"]:
            done.setdefault(f"{kind}:{owner_id}", []).append((trees[slug], entry["done"]))
    alliance_of: dict[int, list[int]] = {}
    for membership_user, alliance_id in AllianceMember.objects.filter(
        alliance__campaign_id=campaign.pk
    ).values_list("membership__user_id", "alliance_id"):
        alliance_of.setdefault(membership_user, []).append(alliance_id)
    per_character = {}
    for c in Character.objects.filter(campaign_id=campaign.pk).only("pk", "owner_id"):
        parts = list(done.get(f"character:{c.pk}", []))
        for alliance_id in alliance_of.get(c.owner_id, []):
            parts += done.get(f"alliance:{alliance_id}", [])
        if parts:
            per_character[c.pk] = techtree.effects_for(parts)
    table = techtree.effects_for(p for k, v in done.items() if k.startswith("alliance:") for p in v)
    return per_character, table


# ---- research --------------------------------------------------------------------------------


def _running_session(campaign_id: int) -> PlaySession:
    session = (
        PlaySession.objects.filter(campaign_id=campaign_id, status=PlaySession.Status.ACTIVE)
        .order_by("-number")
        .first()
    )
    if session is None:
        raise Conflict("Research happens at the table: open a session first.")
    return session


def _lock(session_id: int) -> Campaign:
    """Lock the session row, then its campaign's (one research decision per campaign at a time).
    The order matters: an engine append locks its session and then the campaign (the party's
    stash, narrative.engine.apply_projections), so research takes them in the same order."""
    PlaySession.objects.select_for_update(of=("self",)).filter(pk=session_id).values_list("pk").first()
    return Campaign.objects.select_for_update(of=("self",)).get(sessions__pk=session_id)


def _owner_for(
    membership: Membership, *, tree: techtree.Tree, character_id: int | None, alliance_id: int | None
):
    """(owner key, Character or Alliance) the member may decide research for, or Forbidden."""
    if membership.role == Membership.Role.SPECTATOR:
        raise Forbidden("Spectators watch; they don't research.")
    gm = membership.role == Membership.Role.GM
    if tree.kind == "player":
        chars = Character.objects.select_for_update().filter(campaign_id=membership.campaign_id)
        character = (
            chars.filter(pk=character_id).first()
            if character_id
            else chars.filter(owner_id=membership.user_id).first()
        )
        if character is None:
            raise NotFound("No such character in this campaign.")
        if character.owner_id != membership.user_id and not gm:
            raise Forbidden("Only the character's player (or the GM) decides its research.")
        return techtree.owner_key("character", character.pk, tree.slug), character
    if not alliance_id:
        raise Invalid("Name the alliance (alliance_id) whose research this is.")
    alliance = Alliance.objects.filter(pk=alliance_id, campaign_id=membership.campaign_id).first()
    if alliance is None:
        raise NotFound("No such alliance in this campaign.")
    if not gm:
        if not AllianceMember.objects.filter(alliance=alliance, membership=membership).exists():
            raise Forbidden(f"You are not in {alliance.name}.")
        if alliance_leader_id(alliance.pk) != membership.pk:
            raise Forbidden(
                f"Only {alliance.name}'s leader (its first member) or the GM decides its research."
            )
    return techtree.owner_key("alliance", alliance.pk, tree.slug), alliance


def _tree(campaign: Campaign, slug: str) -> techtree.Tree:
    tree = next((t for t in campaign_trees(campaign) if t.slug == slug), None)
    if tree is None:
        raise NotFound(f"No tech tree {slug!r} in this campaign's pack.")
    return tree


def _take(holder, items: list[dict[str, Any]]) -> None:
    field = "inventory" if isinstance(holder, Character) else "stash"
    totals = _held(getattr(holder, field))
    for e in items:
        totals[e["item"]] = totals.get(e["item"], 0) - e["qty"]
    setattr(holder, field, [{"item": k, "qty": v} for k, v in sorted(totals.items()) if v > 0])
    holder.save(update_fields=[field])


def _give(holder_kind: str, holder_id: int, items: list[dict[str, Any]]) -> None:
    model, field = (Character, "inventory") if holder_kind == "character" else (Campaign, "stash")
    holder = model.objects.select_for_update().filter(pk=holder_id).first()
    if holder is None or not items:
        return
    totals = _held(getattr(holder, field))
    for e in items:
        totals[e["item"]] = totals.get(e["item"], 0) + e["qty"]
    setattr(holder, field, [{"item": k, "qty": v} for k, v in sorted(totals.items())])
    holder.save(update_fields=[field])


def _grant_target(key: str, campaign_id: int) -> dict[str, Any]:
    kind, _, rest = key.partition(":")
    owner_id = int(rest.partition(":")[0])
    if kind == "character":
        return {"to": "character", "character_id": owner_id}
    return {"to": "party", "campaign_id": campaign_id}


def _grant(payload: dict[str, Any]) -> None:
    if payload.get("to") == "character":
        _give("character", payload["character_id"], payload.get("items") or [])
    elif payload.get("to") == "party":
        _give("campaign", payload["campaign_id"], payload.get("items") or [])


def _completed(
    tree: techtree.Tree, node: techtree.Node, key: str, campaign_id: int, by: str, who: str
) -> events.NewEvent:
    items = [{"item": e["item"], "qty": e["qty"]} for e in node.effects if e["kind"] == "unlock_item"]
    payload = {
        "owner": key,
        "owner_label": who,
        "tree": tree.slug,
        "node": node.id,
        "name": node.name,
        "by": by,
        # Always a list: the play log's template would otherwise resolve `payload.items` to the
        # dict's own items() method and print a "Received" line per payload key.
        "items": items,
        **(_grant_target(key, campaign_id) if items else {}),
    }
    return events.NewEvent(type="ResearchCompleted", payload=payload)


def research_start(
    *,
    viewer,
    campaign_id: int,
    tree: str,
    node: str,
    character_id: int | None = None,
    alliance_id: int | None = None,
) -> events.AppendResult:
    """Start research on `node` of `tree` for the viewer's character (or `character_id`, the
    GM) or `alliance_id` (its leader or the GM). Refused (nothing appended) when locked, done,
    busy, unaffordable; its points and items are spent now."""
    membership = selectors.membership_get(viewer=viewer, campaign_id=campaign_id)
    if membership.role == Membership.Role.SPECTATOR:
        raise Forbidden("Spectators watch; they don't research.")
    with transaction.atomic():
        session = _running_session(campaign_id)
        campaign = _lock(session.pk)
        the_tree = _tree(campaign, tree)
        if the_tree.node(node) is None:
            raise NotFound(f"No node {node!r} in {the_tree.name}.")
        key, owner = _owner_for(membership, tree=the_tree, character_id=character_id, alliance_id=alliance_id)
        entry = techtree.entry_of(research_progress(campaign_id), key)
        if isinstance(owner, Character):
            earned = techtree.points_earned("player", xp=owner.xp)
            held, holder = _held(owner.inventory), owner
        else:
            earned = techtree.points_earned("alliance", reputation=owner.reputation)
            held, holder = _held(campaign.stash), campaign
        try:
            chosen = techtree.check_start(the_tree, entry, node, points=earned - entry["spent"], held=held)
        except techtree.ResearchRefused as exc:
            raise Conflict(str(exc)) from exc
        items = [{"item": i, "qty": q} for i, q in chosen.items]
        started = events.NewEvent(
            type="ResearchStarted",
            actor_id=viewer.pk,
            payload={
                "owner": key,
                "owner_label": str(owner),
                "tree": the_tree.slug,
                "node": chosen.id,
                "name": chosen.name,
                "beats": chosen.beats,
                "points": chosen.points,
                "items": items,
            },
        )
        new = [started]
        if chosen.beats == 0:  # instant research completes with its start
            new.append(_completed(the_tree, chosen, key, campaign_id, "instant", str(owner)))
        result = events.append(session, new)
        if items:
            _take(holder, items)
        for event in result.events:
            if event.type == "ResearchCompleted":
                _grant(event.payload)
    return result


def research_complete(
    *,
    viewer,
    campaign_id: int,
    tree: str,
    node: str,
    character_id: int | None = None,
    alliance_id: int | None = None,
) -> events.AppendResult:
    """Complete the research on `node`: its owner's decider once its beats have run out; the
    GM at any time (finishing it early)."""
    membership = selectors.membership_get(viewer=viewer, campaign_id=campaign_id)
    if membership.role == Membership.Role.SPECTATOR:
        raise Forbidden("Spectators watch; they don't research.")
    with transaction.atomic():
        session = _running_session(campaign_id)
        campaign = _lock(session.pk)
        the_tree = _tree(campaign, tree)
        if the_tree.node(node) is None:
            raise NotFound(f"No node {node!r} in {the_tree.name}.")
        key, owner = _owner_for(membership, tree=the_tree, character_id=character_id, alliance_id=alliance_id)
        entry = techtree.entry_of(research_progress(campaign_id), key)
        gm = membership.role == Membership.Role.GM
        try:
            chosen = techtree.check_complete(the_tree, entry, node, by_gm=gm)
        except techtree.ResearchRefused as exc:
            raise Conflict(str(exc)) from exc
        by = "gm" if gm and entry["active"]["beats_left"] > 0 else "beats"
        result = events.append(session, [_completed(the_tree, chosen, key, campaign_id, by, str(owner))])
        for event in result.events:
            _grant(event.payload)
    return result


def on_beat_changed(session_id: int, created: list) -> None:
    """After a BeatChanged commits: research whose beats have run out completes, and completed
    research pays its drips. Idempotent per beat event (its seq is the idempotency key)."""
    session = PlaySession.objects.filter(pk=session_id).only("pk", "campaign_id").first()
    if session is None:
        return
    for beat in created:
        with transaction.atomic():
            campaign = _lock(session_id)
            trees = {t.slug: t for t in campaign_trees(campaign)}
            if not trees:
                return
            # Drips are paid for this very beat; what is due is judged on everything committed
            # (a completion an earlier beat of the same append already appended is not due again).
            research = research_progress(campaign.pk, upto=(session_id, beat.seq))
            latest = research_progress(campaign.pk)
            new = []
            for key, entry in sorted(research.items()):
                tree = trees.get(key.rsplit(":", 1)[-1])
                if tree is None:
                    continue
                for drip in techtree.drips_due(tree, entry):
                    new.append(
                        events.NewEvent(
                            type="ResearchDripped",
                            payload={
                                "owner": key,
                                "tree": tree.slug,
                                "node": drip["node"],
                                "name": tree.by_id[drip["node"]].name,
                                "items": [{"item": drip["item"], "qty": drip["qty"]}],
                                **_grant_target(key, campaign.pk),
                            },
                        )
                    )
                node_id = techtree.due(latest.get(key) or entry)
                if node_id and tree.node(node_id):
                    new.append(_completed(tree, tree.by_id[node_id], key, campaign.pk, "beats", _label(key)))
            if not new:
                continue
            result = events.append(session_id, new, idempotency_key=f"research-beat:{beat.seq}")
            if not result.replayed:
                for event in result.events:
                    _grant(event.payload)


def _label(key: str) -> str:
    kind, _, rest = key.partition(":")
    owner_id = int(rest.partition(":")[0])
    model = Character if kind == "character" else Alliance
    return str(model.objects.filter(pk=owner_id).first() or key)


def research_views(campaign: Campaign) -> dict[str, Any]:
    """Every character's and alliance's research as the table sees it (one fold, one query per
    kind): {"characters": {character id: [views]}, "alliances": [views]}. Research is announced
    in the play log, so it is no secret from the table; who may *decide* is checked on research."""
    trees = campaign_trees(campaign)
    if not trees:
        return {"characters": {}, "alliances": []}
    research = research_progress(campaign.pk)
    characters: dict[int, list[dict[str, Any]]] = {}
    for c in Character.objects.filter(campaign_id=campaign.pk).only("pk", "name", "xp").order_by("pk"):
        owner = {"kind": "player", "id": c.pk, "label": c.name, "xp": c.xp}
        characters[c.pk] = [_entry_view(t, owner, research) for t in trees if t.kind == "player"]
    alliances = []
    for a in (
        Alliance.objects.filter(campaign_id=campaign.pk).only("pk", "name", "reputation").order_by("name")
    ):
        owner = {"kind": "alliance", "id": a.pk, "label": a.name, "reputation": a.reputation}
        alliances += [_entry_view(t, owner, research) for t in trees if t.kind == "alliance"]
    return {"characters": characters, "alliances": alliances}
