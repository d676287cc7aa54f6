"""Pictures: requests, the cache, retries, hiding. Services write; selectors read.

A request is built into a prompt (media.images.prompt, pure), keyed by the SHA-256 of its
canonical form, and stored as one `Image` row per (campaign, key): 50 identical requests at once
make one row and one job (the unique constraint decides; everyone gets the same row). The job
runs on the images cluster (media.images.tasks) after the row commits.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from campaigns.errors import Conflict, Forbidden, Invalid, NotFound
from campaigns.models import Campaign, Character, Membership, PlaySession
from gtw_site import jobs
from media.images import prompt as prompts
from media.images.registry import choice_for
from media.models import BannedWord, Image

logger = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1  # every diffusion backend takes a 32-bit seed
KINDS = prompts.KINDS


# ---- settings ---------------------------------------------------------------------------


def campaign_image_settings(campaign: Campaign) -> dict[str, Any]:
    value = (campaign.settings or {}).get("images") if isinstance(campaign.settings, dict) else None
    return value if isinstance(value, dict) else {}


def _banned_rows(campaign_id) -> Any:
    """The BannedWord rows that apply to a campaign (site-wide and its own), as a queryset of
    words; `campaign_id` may be an OuterRef (read inside another query)."""
    return BannedWord.objects.filter(Q(campaign__isnull=True) | Q(campaign_id=campaign_id)).values("word")


def banned_words(campaign: Campaign, rows: list[str] | None = None) -> list[str]:
    """The built-in list, the site's (GTW_IMAGES["banned_words"] and site-wide BannedWord rows),
    and the campaign's (its BannedWord rows and the GM's list in its settings). `rows`: the
    BannedWord rows' words, when the caller read them already (`image_request_scope`)."""
    words = list(prompts.DEFAULT_BANNED)
    words += [w for w in settings.GTW_IMAGES.get("banned_words", []) if isinstance(w, str)]
    if rows is None:
        rows = list(_banned_rows(campaign.pk).values_list("word", flat=True))
    words += rows
    own = campaign_image_settings(campaign).get("banned_words") or []
    words += [w for w in own if isinstance(w, str)]
    return words


def campaign_images_configure(
    *, membership: Membership, style: str | None = None, banned: list[str] | None = None
):
    """The GM sets the campaign's style tokens and its own banned words."""
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM can change the campaign's picture settings.")
    if style is not None and len(style) > prompts.MAX_STYLE:
        raise Invalid(f"The style is too long (at most {prompts.MAX_STYLE} characters).")
    if banned is not None:
        banned = [" ".join(w.split())[:80] for w in banned if isinstance(w, str) and w.strip()][:500]
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=membership.campaign_id)
        current = dict(campaign.settings or {})
        images = dict(current.get("images") or {})
        if style is not None:
            images["style"] = " ".join(style.split())
        if banned is not None:
            images["banned_words"] = banned
        current["images"] = images
        campaign.settings = current
        campaign.save(update_fields=["settings"])
    return campaign


def _workflow_hash(provider: str, conf: Mapping[str, Any]) -> str:
    if provider != "comfyui" or not conf.get("comfyui", {}).get("workflow"):
        return ""
    try:
        with open(conf["comfyui"]["workflow"], "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return ""


# ---- building a request from the game ---------------------------------------------------


def _pack_world(campaign: Campaign) -> dict:
    data = campaign.pack.data if campaign.pack_id else {}
    return data.get("world") or {}


def _biome(campaign: Campaign, slug: str) -> dict:
    for biome in _pack_world(campaign).get("biomes") or []:
        if isinstance(biome, dict) and slug and biome.get("slug") == slug:
            return biome
    return {}


def scene_request(
    *, campaign: Campaign, session: PlaySession | None, subject: str = ""
) -> tuple[prompts.ImageRequest, str]:
    """The scene as the session's state has it (biome, location, beat, NPCs named in it)."""
    state = (session.state or {}) if session is not None else {}
    scene = state.get("scene") if isinstance(state.get("scene"), dict) else {}
    mission = state.get("mission") if isinstance(state.get("mission"), dict) else {}
    biome_slug = str(scene.get("biome") or "")
    biome = _biome(campaign, biome_slug)
    description = str(scene.get("description") or "")
    world = _pack_world(campaign)
    npcs = tuple(
        n["name"]
        for n in world.get("npcs") or []
        if isinstance(n, dict) and isinstance(n.get("name"), str) and n["name"] in description
    )
    req = prompts.ImageRequest(
        kind="scene",
        subject=subject,
        biome=biome_slug or str(biome.get("name") or ""),
        biome_description=str(biome.get("description") or ""),
        location=str(scene.get("name") or ""),
        scene_description=description,
        beat=str(state.get("beat") or ""),
        mission=str(mission.get("title") or ""),
        npcs=npcs,
        lore=str(world.get("tagline") or ""),
        style=_style(campaign),
    )
    return req, str(scene.get("slug") or "")


def portrait_request(*, campaign: Campaign, character: Character, subject: str = "") -> prompts.ImageRequest:
    arch = campaign.pack.archetype(character.archetype) or {}
    return prompts.ImageRequest(
        kind="portrait",
        subject=subject,
        character=character.name,
        archetype=character.archetype,
        archetype_name=str(arch.get("name") or character.archetype),
        lore=str(arch.get("description") or ""),
        style=_style(campaign),
    )


def item_request(*, campaign: Campaign, item: str, subject: str = "") -> prompts.ImageRequest:
    items = {i.get("slug"): i for i in (campaign.pack.data.get("items") or []) if isinstance(i, dict)}
    found = items.get(item) or {}
    kind = str(found.get("kind") or ("currency" if item == "credits" else ""))
    return prompts.ImageRequest(
        kind="item",
        subject=subject,
        item=item,
        item_name=str(found.get("name") or item.replace("-", " ").capitalize()),
        item_kind=kind,
        item_description=str(found.get("description") or ""),
        style=_style(campaign),
    )


def _style(campaign: Campaign) -> str:
    return str(campaign_image_settings(campaign).get("style") or settings.GTW_IMAGES.get("style") or "")


def _guess_item(campaign: Campaign, subject: str) -> str:
    """An item slug named in `subject` ("the relay key" → relay-key), else ""."""
    folded = prompts.fold(subject)
    for item in campaign.pack.data.get("items") or []:
        if not isinstance(item, dict):
            continue
        for name in (item.get("slug", ""), item.get("name", "")):
            if name and prompts.fold(name.replace("-", " ")) in folded.replace("-", " "):
                return item["slug"]
    return ""


# ---- requests ---------------------------------------------------------------------------


def check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise Invalid(f"The seed must be a whole number from 0 to {MAX_SEED}.")
    return seed


def image_request(
    *,
    campaign: Campaign,
    kind: str,
    subject: str = "",
    seed: int | None = None,
    session: PlaySession | None = None,
    user=None,
    character: Character | None = None,
    item: str = "",
    banned_rows: list[str] | None = None,
) -> tuple[Image, bool]:
    """The picture for this request: the cached row (created False) or a new queued one whose
    job starts after commit. Invalid for an unknown kind, an over-long subject, a seed out of
    range, or a banned word (named). `banned_rows`: the campaign's BannedWord words, if the
    caller read them with its membership (`image_request_scope`)."""
    if kind not in KINDS:
        raise Invalid(f"Unknown picture type '{kind}' (choose one of: {', '.join(KINDS)}).")
    if not isinstance(subject, str):
        raise Invalid("The subject must be text.")
    if len(subject) > prompts.MAX_SUBJECT:
        raise Invalid(f"The subject is too long ({len(subject)} characters; at most {prompts.MAX_SUBJECT}).")
    seed = check_seed(seed)
    ref = ""
    if kind == "scene":
        req, ref = scene_request(campaign=campaign, session=session, subject=subject)
    elif kind == "portrait":
        if character is None and user is not None:
            character = Character.objects.filter(campaign=campaign, owner=user).first()
        if character is None:
            req = prompts.ImageRequest(kind="portrait", subject=subject, style=_style(campaign))
        else:
            req = portrait_request(campaign=campaign, character=character, subject=subject)
            ref = f"character:{character.pk}"
    else:
        item = item or _guess_item(campaign, subject)
        req = (
            item_request(campaign=campaign, item=item, subject=subject)
            if item
            else prompts.ImageRequest(kind="item", subject=subject, style=_style(campaign))
        )
        ref = f"item:{item}" if item else ""
    try:
        built = prompts.build_prompt(req, banned=banned_words(campaign, banned_rows))
    except prompts.PromptError as exc:
        raise Invalid(str(exc)) from None
    return _image_for(campaign=campaign, built=built, seed=seed, session=session, user=user, ref=ref)


def _image_for(*, campaign, built: prompts.BuiltPrompt, seed, session, user, ref) -> tuple[Image, bool]:
    conf = settings.GTW_IMAGES
    # The runtime choice (campaign, A/B variant, site) else GTW_IMAGE_PROVIDER; both in the key.
    provider, model, _chosen = choice_for(campaign.pk, session.pk if session is not None else None)
    width, height = conf["sizes"][built.kind]
    steps = 3 if provider == "procedural" else int(conf["steps"])
    if seed is None:
        # The same request paints the same picture: a seed derived from what it shows.
        seed = int(hashlib.sha256(f"{campaign.pk}\n{built.prompt}".encode()).hexdigest()[:8], 16)
    canonical = {
        "v": 1,
        "provider": provider,
        "model": model,
        "prompt": built.prompt,
        "negative": built.negative,
        "seed": seed,
        "size": [width, height],
        "steps": steps,
        "workflow": _workflow_hash(provider, conf),
        "parts": built.parts if provider == "procedural" else {},
    }
    key = prompts.request_hash(canonical)
    defaults = {
        "session": session,
        "requested_by": user if getattr(user, "is_authenticated", False) else None,
        "kind": built.kind,
        "subject": built.subject,
        "ref": ref,
        "prompt": built.prompt,
        "negative": built.negative,
        "style": built.style,
        "parts": built.parts,
        "provider": provider,
        "model": model,
        "seed": seed,
        "width": width,
        "height": height,
        "steps": steps,
    }
    # The common case (cached) in one query; the insert decides between simultaneous new requests.
    image, created = Image.objects.filter(campaign=campaign, hash=key).first(), False
    if image is None:
        try:
            with transaction.atomic():
                image, created = Image.objects.get_or_create(campaign=campaign, hash=key, defaults=defaults)
        except IntegrityError:  # another request created it between our look and our insert
            image, created = Image.objects.get(campaign=campaign, hash=key), False
    _count(hit=not created)
    if created:
        transaction.on_commit(lambda: queue_generate(image.pk))
        transaction.on_commit(lambda: notify(image.pk))
    else:
        changed = []
        if session is not None and image.session_id != session.pk:
            image.session = session  # a cached picture shown again in another session
            changed.append("session")
        if image.hidden and session is not None:
            image.hidden = False  # asked for again: show it
            changed.append("hidden")
        if changed:
            image.save(update_fields=changed)
            transaction.on_commit(lambda: notify(image.pk))
        if image.status in (Image.Status.QUEUED, Image.Status.RUNNING) and is_stale(image):
            recover(image.pk)
            image.refresh_from_db()
    return image, created


def _count(*, hit: bool) -> None:
    """Cache hit or miss, for /metrics (gtw_cache_lookups{cache="images"})."""
    try:
        from gtw_site import metrics

        metrics.cache("images", hit)
    except Exception:  # counting must never cost a picture
        logger.debug("picture cache count failed", exc_info=True)


def queue_generate(image_id: int) -> None:
    try:
        jobs.enqueue("media.images.tasks.generate", image_id, cluster=settings.IMAGE_CLUSTER, group="images")
    except Exception:
        logger.warning("could not queue picture %s", image_id, exc_info=True)


def image_retry(*, image: Image) -> Image:
    """A failed picture, queued again (a new attempt budget)."""
    with transaction.atomic():
        locked = Image.objects.select_for_update().get(pk=image.pk)
        if locked.status != Image.Status.FAILED:
            raise Conflict("Only a failed picture can be retried.")
        locked.status = Image.Status.QUEUED
        locked.progress = 0
        locked.error = ""
        locked.attempts = 0
        locked.started_at = None
        locked.save(update_fields=["status", "progress", "error", "attempts", "started_at"])
        transaction.on_commit(lambda: queue_generate(locked.pk))
        transaction.on_commit(lambda: notify(locked.pk))
    return locked


def image_regenerate(*, image: Image, user=None) -> tuple[Image, bool]:
    """The same picture request with a new random seed (a new row; the old one stays in the
    gallery)."""
    built = prompts.BuiltPrompt(
        kind=image.kind,
        subject=image.subject,
        prompt=image.prompt,
        negative=image.negative,
        style=image.style,
        parts=image.parts,
    )
    # Banned words added since the first request still apply.
    try:
        prompts.check_words(image.prompt, banned_words(image.campaign))
    except prompts.PromptRefused as exc:
        raise Invalid(str(exc)) from None
    return _image_for(
        campaign=image.campaign,
        built=built,
        seed=secrets.randbelow(MAX_SEED + 1),
        session=image.session,
        user=user,
        ref=image.ref,
    )


def image_hide(*, image: Image, hidden: bool = True) -> Image:
    Image.objects.filter(pk=image.pk).update(hidden=hidden)
    image.hidden = hidden
    transaction.on_commit(lambda: notify(image.pk))
    return image


# ---- recovery: a server killed mid-job ---------------------------------------------------


def _stale_after() -> timedelta:
    # A job running longer than the provider's timeout plus a margin lost its worker.
    return timedelta(seconds=float(settings.GTW_IMAGES["image"]["timeout"]) + 60)


def is_stale(image: Image, now=None) -> bool:
    now = now or timezone.now()
    if image.status == Image.Status.RUNNING:
        return image.started_at is None or image.started_at < now - _stale_after()
    if image.status == Image.Status.QUEUED:
        return image.created_at < now - _stale_after()
    return False


def recover(image_id: int) -> str:
    """Re-queue a picture whose job was lost (its worker killed), or fail it once it used up its
    attempts: never stuck "generating". Returns the new status."""
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None or image.status not in (Image.Status.QUEUED, Image.Status.RUNNING):
            return image.status if image else ""
        if image.attempts >= settings.GTW_IMAGES["max_attempts"]:
            image.status = Image.Status.FAILED
            image.error = "The painter stopped before it finished (the server restarted), too many times."
            image.finished_at = timezone.now()
            image.save(update_fields=["status", "error", "finished_at"])
        else:
            image.status = Image.Status.QUEUED
            image.progress = 0
            image.started_at = None
            image.created_at = timezone.now()
            image.save(update_fields=["status", "progress", "started_at", "created_at"])
            transaction.on_commit(lambda: queue_generate(image_id))
        transaction.on_commit(lambda: notify(image_id))
        return image.status


def recover_interrupted(*, all_running: bool = False) -> int:
    """At start-up (the images cluster restarted, so nothing of its is running): re-queue or fail
    every picture left queued or running. With all_running False, only those past the timeout."""
    rows = Image.objects.filter(status__in=(Image.Status.QUEUED, Image.Status.RUNNING))
    if not all_running:
        cutoff = timezone.now() - _stale_after()
        rows = rows.filter(started_at__lt=cutoff) | Image.objects.filter(
            status=Image.Status.QUEUED, created_at__lt=cutoff
        )
    ids = list(rows.values_list("pk", flat=True))
    for image_id in ids:
        recover(image_id)
    return len(ids)


# ---- selectors --------------------------------------------------------------------------


def image_get(*, viewer, image_id: int) -> tuple[Image, Membership]:
    """The picture and the viewer's membership (its role, read in the same query), or NotFound:
    outsiders (and players, for a picture the GM hid) cannot tell it exists."""
    if not getattr(viewer, "is_authenticated", False):
        raise NotFound("No such picture.")
    role = Membership.objects.filter(campaign_id=OuterRef("campaign_id"), user=viewer).values("role")[:1]
    image = (
        Image.objects.select_related("campaign", "campaign__pack")
        .annotate(viewer_role=Subquery(role))
        .filter(pk=image_id, viewer_role__isnull=False)
        .first()
    )
    if image is None:
        raise NotFound("No such picture.")
    membership = Membership(campaign_id=image.campaign_id, user=viewer, role=image.viewer_role)
    if image.hidden and membership.role != Membership.Role.GM:
        raise NotFound("No such picture.")
    return image, membership


def image_request_scope(
    *, viewer, campaign_id: int, session_id: int | None = None
) -> tuple[Membership, PlaySession | None, list[str]]:
    """What a picture request reads before its cache lookup, in one query: the viewer's
    membership (with the campaign and its pack), the session if one is named (it must be the
    campaign's), and the campaign's BannedWord words. NotFound for a non-member ("No such
    campaign") or a session of another campaign."""
    if not getattr(viewer, "is_authenticated", False):
        raise NotFound("No such campaign.")
    words = ArraySubquery(_banned_rows(OuterRef("campaign_id")))
    if session_id is None:
        membership = (
            Membership.objects.select_related("campaign", "campaign__pack")
            .filter(campaign_id=campaign_id, user=viewer)
            .annotate(banned_rows=words)
            .first()
        )
        if membership is None:
            raise NotFound("No such campaign.")
        return membership, None, list(membership.banned_rows)
    role = Membership.objects.filter(campaign_id=OuterRef("campaign_id"), user=viewer).values("role")[:1]
    session = (
        PlaySession.objects.select_related("campaign", "campaign__pack")
        .annotate(viewer_role=Subquery(role), banned_rows=words)
        .filter(pk=session_id, campaign_id=campaign_id, viewer_role__isnull=False)
        .first()
    )
    if session is None:
        from campaigns.selectors import membership_get

        membership_get(viewer=viewer, campaign_id=campaign_id)  # NotFound for a non-member
        raise NotFound("No such session in this campaign.")
    membership = Membership(campaign=session.campaign, user=viewer, role=session.viewer_role)
    return membership, session, list(session.banned_rows)


def image_file_get(*, viewer, image_id: int) -> dict[str, Any]:
    """What serving a picture's bytes needs (hash, path, content_type), read together with the
    viewer's membership, or NotFound: for outsiders, for players and spectators when the GM hid
    it, and for a picture not painted yet.

    The hottest read of the app (every picture on every screen), so it is one hand-written
    query: the join on the viewer's membership is the access rule (tenancy in the query), and
    nothing else — no campaign, no pack — is loaded."""
    if not getattr(viewer, "is_authenticated", False):
        raise NotFound("No such picture.")
    sql = (
        f"SELECT i.hash, i.path, i.content_type, i.hidden, m.role "  # noqa: S608 — table names only
        f"FROM {Image._meta.db_table} i JOIN {Membership._meta.db_table} m "
        f"ON m.campaign_id = i.campaign_id AND m.user_id = %s "
        f"WHERE i.id = %s AND i.status = %s AND i.path <> ''"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [viewer.pk, image_id, Image.Status.READY.value])
        found = cursor.fetchone()
    if found is None:
        raise NotFound("No such picture.")
    row = dict(zip(("hash", "path", "content_type", "hidden", "viewer_role"), found, strict=True))
    if row["hidden"] and row["viewer_role"] != Membership.Role.GM:
        raise NotFound("No such picture.")
    return row


def image_gm_get(*, viewer, image_id: int) -> Image:
    image, membership = image_get(viewer=viewer, image_id=image_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM can change a picture.")
    return image


def gallery(*, membership: Membership, limit: int = 200) -> list[Image]:
    rows = Image.objects.filter(campaign_id=membership.campaign_id)
    if membership.role != Membership.Role.GM:
        rows = rows.filter(hidden=False)
    return list(rows.order_by("-created_at")[:limit])


def scene_image(*, session: PlaySession, gm: bool = False) -> Image | None:
    """The picture the session's scene panel shows: its newest scene picture."""
    rows = Image.objects.filter(session=session, kind=Image.Kind.SCENE)
    if not gm:
        rows = rows.filter(hidden=False)
    return rows.order_by("-created_at").first()


def recent_images(*, session: PlaySession, gm: bool = False, limit: int = 6) -> list[Image]:
    rows = Image.objects.filter(session=session).exclude(kind=Image.Kind.SCENE)
    if not gm:
        rows = rows.filter(hidden=False)
    return list(rows.order_by("-created_at")[:limit])


def image_meta(image: Image, *, gm: bool = False) -> dict[str, Any]:
    from django.urls import reverse

    out = {
        "image_id": image.pk,
        "campaign": image.campaign_id,
        "session": image.session_id,
        "type": image.kind,
        "subject": image.subject,
        "status": image.status,
        "progress": image.percent,
        "prompt": image.prompt,
        "negative": image.negative,
        "style": image.style,
        "provider": image.provider,
        "model": image.model,
        "seed": image.seed,
        "width": image.width,
        "height": image.height,
        "steps": image.steps,
        "rights": image.rights,
        "hash": image.hash,
        "hidden": image.hidden,
        "created_at": image.created_at.isoformat(),
        "url": reverse("image-file", args=[image.pk]) if image.status == Image.Status.READY else None,
        "failed": image.status == Image.Status.FAILED,
    }
    if gm:
        out["error"] = image.error
        out["attempts"] = image.attempts
    return out


# ---- telling the table ------------------------------------------------------------------


def notify(image_id: int) -> None:
    """The picture's state, to every socket of its session (after commit)."""
    from media.images import broadcast as image_broadcast

    image = Image.objects.filter(pk=image_id).select_related("campaign").first()
    if image is None or image.session_id is None:
        return
    try:
        image_broadcast.send(image)
    except Exception:
        logger.warning("picture %s: broadcast failed", image_id, exc_info=True)
