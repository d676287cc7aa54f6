"""Installing and listing missions, who may install them, and the mission version a campaign
plays. Compilation and validation are missions.dsl's (pure)."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.db.models import Q

from campaigns.errors import Forbidden, Invalid, NotFound
from campaigns.models import Campaign, Membership
from gtw_site.text import check_storable
from missions.dsl import MissionError, compile_source
from missions.models import Mission

MAX_SOURCE_BYTES = 256 * 1024
SLUG_MAX = 80
# The DSL's rule for a mission id (missions/dsl/validate.py): anything else names no mission.
_SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_HASH = re.compile(r"[0-9a-f]{64}")
INSTALL_PERMISSION = "missions.add_mission"


class MissionInvalid(Invalid):
    """A mission that does not compile; `errors` are the `file:line:col: message` lines."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def mission_install(
    *, source: str, filename: str = "mission.mission", user=None, pack=None, owner=None
) -> tuple[Mission, bool]:
    """Compile and install a mission. Returns (mission, created); installing the same source
    again is a no-op. Raises MissionInvalid with every error the compiler found.

    With `owner` (a GM installing in /gm/) the mission is that GM's private one: usable only in
    the campaigns they run (`usable_in`); without, it joins the site-wide catalogue."""
    if not isinstance(source, str):
        raise MissionInvalid([f"{filename}:1:1: the mission must be UTF-8 text"])
    filename = (filename or "mission.mission").replace("\\", "/").rsplit("/", 1)[-1][:200]
    # A NUL (even in a comment) or a lone surrogate would reach PostgreSQL and fail there.
    try:
        check_storable(filename, what="The file name")
    except Invalid as exc:
        raise MissionInvalid([f"mission.mission:1:1: {exc.message}"]) from None
    try:
        check_storable(source, what="The mission")
    except Invalid as exc:
        raise MissionInvalid([f"{filename}:1:1: {exc.message}"]) from None
    try:
        compiled = compile_source(source, filename)
    except MissionError as exc:
        raise MissionInvalid([str(e) for e in exc.errors]) from None
    versions = Mission.objects.filter(slug=compiled.slug, content_hash=compiled.content_hash, owner=owner)
    existing = versions.first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            mission = Mission.objects.create(
                slug=compiled.slug,
                title=compiled.title,
                biome=compiled.biome,
                summary=compiled.ast.get("summary", ""),
                source=source,
                filename=filename,
                ast=compiled.ast,
                content_hash=compiled.content_hash,
                pack=pack,
                installed_by=user,
                owner=owner,
                public=owner is None,
            )
    except IntegrityError:  # a concurrent install of the same version won
        return versions.get(), False
    return mission, True


def can_install_missions(user) -> bool:
    """Installing missions is an operator's job: staff, or a user given the "Can add mission"
    permission (the admin checks the same permission). Running a campaign is not enough: anyone
    can create one, and an installed mission reaches every campaign on the server."""
    return bool(
        user.is_authenticated and user.is_active and (user.is_staff or user.has_perm(INSTALL_PERMISSION))
    )


def can_read_mission_source(user) -> bool:
    """A mission's source holds its hidden objectives, twists and fail states: operators only
    (installers, or users given the "Can view mission" permission)."""
    return can_install_missions(user) or bool(
        user.is_authenticated and user.has_perm("missions.view_mission")
    )


def check_can_install_missions(user) -> None:
    if not can_install_missions(user):
        raise Forbidden(
            "Only the site's operators can install missions (staff, or users given the "
            "'Can add mission' permission); running a campaign doesn't include it."
        )


def check_can_read_mission_source(user) -> None:
    if not can_read_mission_source(user):
        raise Forbidden(
            "Only the site's operators can read a mission's source: it holds the hidden "
            "objectives and twists. GMs start missions from the play page."
        )


def check_slug(slug, *, what: str = "The mission id") -> str:
    """A well-formed mission id, or Invalid (422): a malformed one can name no mission, and a NUL
    in it would fail inside PostgreSQL."""
    if not isinstance(slug, str):
        raise Invalid(f"{what} must be text.")
    check_storable(slug, what=what)
    if len(slug) > SLUG_MAX or not _SLUG.fullmatch(slug):
        raise Invalid(f"{what} '{slug[:SLUG_MAX]}' is not valid: use lowercase letters, digits and hyphens.")
    return slug


def check_content_hash(content_hash) -> str:
    if not isinstance(content_hash, str) or not _HASH.fullmatch(content_hash):
        raise Invalid("A mission version is its content hash: 64 lowercase hex digits.")
    return content_hash


def usable_in(campaign: Campaign | None) -> Q:
    """The missions a campaign may list and play: the site-wide catalogue, plus the private
    missions of the GMs (co-GMs included) who run it (issue 22). No campaign: the catalogue."""
    q = Q(public=True)
    if campaign is not None:
        gms = Membership.objects.filter(campaign_id=campaign.pk, role=Membership.Role.GM)
        q |= Q(owner__in=gms.values("user_id"))
    return q


def mission_latest(slug: str, campaign: Campaign | None = None) -> Mission | None:
    """The newest version of `slug` usable in `campaign` (None when there is none)."""
    return Mission.objects.filter(usable_in(campaign), slug=slug).order_by("-installed_at", "-pk").first()


def mission_version(slug: str, content_hash: str, campaign: Campaign | None = None) -> Mission | None:
    rows = Mission.objects.filter(usable_in(campaign), slug=slug, content_hash=content_hash)
    return rows.order_by("-public", "pk").first()


def mission_get(slug: str, content_hash: str | None = None, campaign: Campaign | None = None) -> Mission:
    """One installed version of a mission usable in `campaign` (the newest without a hash).
    Invalid for a malformed slug or hash, NotFound for one that isn't installed — or that is
    another GM's private mission: it does not exist for this campaign."""
    check_slug(slug)
    if content_hash is None:
        mission = mission_latest(slug, campaign)
    else:
        mission = mission_version(slug, check_content_hash(content_hash), campaign)
    if mission is None:
        which = f"version {content_hash[:12]} of mission" if content_hash else "mission"
        raise NotFound(f"No {which} '{slug}' is installed.")
    return mission


def campaign_mission_pin(*, campaign: Campaign, mission: Mission) -> None:
    """Make `mission` (this exact version) the one the campaign plays from now on. NotFound for
    another GM's private mission: it is usable only in its owner's campaigns."""
    if not Mission.objects.filter(usable_in(campaign), pk=mission.pk).exists():
        raise NotFound(f"No mission '{mission.slug}' is installed for this campaign.")
    if (campaign.mission_slug, campaign.mission_hash) == (mission.slug, mission.content_hash):
        return
    campaign.mission_slug, campaign.mission_hash = mission.slug, mission.content_hash
    Campaign.objects.filter(pk=campaign.pk).update(
        mission_slug=mission.slug, mission_hash=mission.content_hash
    )


def _pack_mission_slug(campaign: Campaign) -> str | None:
    slug = (campaign.pack.data.get("mission") or {}).get("slug")
    return slug if isinstance(slug, str) and _SLUG.fullmatch(slug) else None


def campaign_mission(*, campaign: Campaign) -> Mission | None:
    """The mission version a new session of `campaign` starts with: the pinned one.

    Pins lazily when there is no pin yet (the pack's mission was not installed when the campaign
    was created, or the campaign predates pinning): the newest version of the pack's mission at
    that moment. If an operator deleted the pinned version, the newest version of the same slug
    takes its place (and is pinned). None when the mission isn't installed at all.
    """
    slug = campaign.mission_slug or _pack_mission_slug(campaign)
    if not slug:
        return None
    mission = mission_version(slug, campaign.mission_hash, campaign) if campaign.mission_hash else None
    if mission is None:
        mission = mission_latest(slug, campaign)
        if mission is not None:
            campaign_mission_pin(campaign=campaign, mission=mission)
    return mission


def mission_for_start(*, campaign: Campaign, slug: str, content_hash: str | None = None) -> Mission:
    """The version a GM's "start mission `slug`" plays: the one asked for by hash; else the
    campaign's pinned version when `slug` is its pinned mission (a restart does not pick up
    someone's later upload); else the newest version of `slug`. The caller pins the result."""
    check_slug(slug)
    if content_hash is None and slug == campaign.mission_slug and campaign.mission_hash:
        pinned = mission_version(slug, campaign.mission_hash, campaign)
        if pinned is not None:
            return pinned
    return mission_get(slug, content_hash, campaign)


def missions_latest(campaign: Campaign | None = None) -> list[Mission]:
    """The newest version of each mission usable in `campaign` (no campaign: the catalogue)."""
    rows = Mission.objects.filter(usable_in(campaign))
    return list(rows.order_by("slug", "-installed_at", "-pk").distinct("slug"))


def override_from_fields(data) -> dict:
    """A GM override (see narrative.engine.gm_override) from form or JSON fields: an objective
    and its status, a clock and its value, or a scene."""
    if data.get("objective"):
        return {"objective": str(data["objective"])[:60], "status": str(data.get("status", ""))[:20]}
    if data.get("clock"):
        try:
            value = int(data.get("value", ""))
        except (TypeError, ValueError):
            raise Invalid("A clock override needs a whole-number value.") from None
        return {"clock": str(data["clock"])[:60], "value": value}
    if data.get("scene"):
        return {"scene": str(data["scene"])[:60]}
    raise Invalid("Say what to override: an objective and its status, a clock and its value, or a scene.")
