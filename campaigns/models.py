"""The tenant boundary: campaigns, who belongs to them, and the append-only event log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from campaigns import state as reducer


class ContentPack(models.Model):
    """A data pack (world, biomes, factions, archetypes, items, missions) loaded from content/."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=120)
    version = models.CharField(max_length=20)
    data = models.JSONField()
    sha256 = models.CharField(max_length=64)
    installed_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name} {self.version}"

    @property
    def archetypes(self) -> list[dict]:
        return self.data.get("archetypes", [])

    def archetype(self, slug: str) -> dict | None:
        return next((a for a in self.archetypes if a["slug"] == slug), None)


class PersonalityPreset(models.Model):
    """A GM personality: system-prompt style, tone, verbosity (content/personality_presets.json)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    system_prompt = models.TextField()
    tone = models.CharField(max_length=20, default="wry")
    verbosity = models.PositiveSmallIntegerField(default=2)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Campaign(models.Model):
    name = models.CharField(max_length=120)
    pack = models.ForeignKey(ContentPack, on_delete=models.PROTECT, related_name="campaigns")
    personality = models.ForeignKey(PersonalityPreset, null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # The mission version this campaign plays (slug + content hash of an installed missions.Mission):
    # pinned at creation and whenever the GM starts a mission, so a later upload of the same slug
    # never changes the campaign's next session (issue 11). Empty until a mission is pinned.
    mission_slug = models.CharField(max_length=80, blank=True, default="")
    mission_hash = models.CharField(max_length=64, blank=True, default="")
    # The party's shared inventory [{"item", "qty"}], kept by the game engine from the events
    # that grant items to the whole party (mission and objective rewards): a projection of the
    # log, like Character.inventory.
    stash = models.JSONField(default=list, blank=True)
    # Archived campaigns are read-only (no actions, no new sessions), hidden from dashboards and
    # calendar feeds; unarchiving restores them (issue 16 part 5).
    archived = models.BooleanField(default=False)
    # Per-campaign settings, one namespaced key per feature: settings["voice"], settings["images"],
    # settings["providers"], settings["safety"], settings["warmup"]... Each owner reads/writes its key only.
    settings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        GM = "gm", "Game master"
        PLAYER = "player", "Player"
        SPECTATOR = "spectator", "Spectator"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.PLAYER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "user"], name="membership_unique")]

    def __str__(self):
        return f"{self.user} as {self.role} in {self.campaign}"

    @property
    def can_act(self) -> bool:
        return self.role_can_act(self.role)

    @classmethod
    def role_can_act(cls, role: str) -> bool:
        return role in (cls.Role.GM, cls.Role.PLAYER)


class Invite(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="invites")
    code = models.CharField(max_length=40, unique=True)
    role = models.CharField(max_length=12, choices=Membership.Role.choices, default=Membership.Role.PLAYER)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"invite {self.code[:6]}… to {self.campaign}"


class Character(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="characters")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="characters")
    name = models.CharField(max_length=60)
    archetype = models.SlugField()
    attributes = models.JSONField(default=dict)
    # Progression, kept by the game engine from RewardGranted / LootFound events.
    xp = models.PositiveIntegerField(default=0)
    level = models.PositiveSmallIntegerField(default=1)
    inventory = models.JSONField(default=list, blank=True)  # [{"item", "qty"}]
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "owner"], name="one_character_per_player")]

    def __str__(self):
        return self.name

    @property
    def archetype_name(self) -> str:
        arch = self.campaign.pack.archetype(self.archetype)
        return arch["name"] if arch else self.archetype


class PlaySession(models.Model):
    """A sitting of play. `version` is the seq of its last event; `state` the reducer's fold."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    class Kind(models.TextChoices):
        PARTY = "party", "Party"
        STAGE = "stage", "Stage"  # speakers, a queue and an audience; actions batched per window

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sessions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PARTY)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=0)
    state = models.JSONField(default=dict)
    state_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="session_number_unique")]

    def __str__(self):
        return self.title or f"Session {self.number}"

    def save(self, *args, **kwargs):
        if not self.state:
            # A session with no events holds the reducer's initial state, hashed like any other.
            self.state = reducer.initial_state()
            self.state_hash = reducer.state_hash(self.state)
        super().save(*args, **kwargs)


class Event(models.Model):
    """Append-only. Never updated or deleted; the admin shows it read-only."""

    session = models.ForeignKey(PlaySession, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(default=dict)
    seed = models.BigIntegerField(null=True, blank=True)
    # NULL, not "": the unique (session, idempotency_key) constraint skips events without a key.
    idempotency_key = models.CharField(max_length=120, null=True, blank=True)  # noqa: DJ001
    # Who may see the event: NULL is the whole table; otherwise these user ids (and the GM).
    audience = ArrayField(models.BigIntegerField(), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="event_seq_unique"),
            models.UniqueConstraint(
                fields=["session", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_idempotency_unique",
            ),
        ]

    def __str__(self):
        return f"#{self.seq} {self.type}"


class Snapshot(models.Model):
    session = models.ForeignKey(PlaySession, on_delete=models.CASCADE, related_name="snapshots")
    seq = models.PositiveIntegerField()
    state = models.JSONField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "-seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="snapshot_seq_unique")]

    def __str__(self):
        return f"snapshot @{self.seq}"


# ---- stage mode: alliances, fireteams and the stage's seats ---------------------------------


class Alliance(models.Model):
    """A faction the players' fireteams can side with; its reputation moves with the story."""

    REPUTATION_MIN, REPUTATION_MAX = -100, 100

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="alliances")
    name = models.CharField(max_length=80)
    reputation = models.IntegerField(default=0)
    members = models.ManyToManyField(Membership, through="AllianceMember", related_name="alliances")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["campaign", "name"], name="alliance_name_unique")]

    def __str__(self):
        return self.name


class AllianceMember(models.Model):
    alliance = models.ForeignKey(Alliance, on_delete=models.CASCADE, related_name="memberships")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alliance", "membership"], name="alliance_member_unique")
        ]

    def __str__(self):
        return f"{self.membership_id} in {self.alliance_id}"


class Fireteam(models.Model):
    """A squad. Voice is ids and labels only: a voice room id a client or bridge may join."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="fireteams")
    name = models.CharField(max_length=60)
    alliance = models.ForeignKey(
        Alliance, null=True, blank=True, on_delete=models.SET_NULL, related_name="fireteams"
    )
    voice_room_id = models.SlugField(max_length=80, unique=True)
    voice_label = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["campaign", "name"], name="fireteam_name_unique")]

    def __str__(self):
        return self.name


class FireteamMember(models.Model):
    """One fireteam per member per campaign (a Membership belongs to exactly one campaign)."""

    fireteam = models.ForeignKey(Fireteam, on_delete=models.CASCADE, related_name="memberships")
    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="fireteam_seat")
    joined_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.membership_id} in {self.fireteam_id}"


class StageSeat(models.Model):
    """Where a member sits in a stage session: the fast projection of the stage events
    (HandRaised, HandApproved, SpeakerMuted, TeamAssigned, …) kept in the event log."""

    class Role(models.TextChoices):
        MODERATOR = "moderator", "Moderator"
        SPEAKER = "speaker", "Speaker"
        AUDIENCE = "audience", "Audience"

    session = models.ForeignKey(PlaySession, on_delete=models.CASCADE, related_name="seats")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="seats")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AUDIENCE)
    # Set while a hand is up; the queue is the raised hands in this order.
    hand_raised_at = models.DateTimeField(null=True, blank=True)
    muted = models.BooleanField(default=False)
    team = models.ForeignKey(Fireteam, null=True, blank=True, on_delete=models.SET_NULL, related_name="seats")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "membership"], name="stage_seat_unique")]
        indexes = [models.Index(fields=["session", "hand_raised_at"], name="stage_seat_queue")]

    def __str__(self):
        return f"{self.membership_id} as {self.role} in {self.session_id}"
