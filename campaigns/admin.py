from django.contrib import admin

from campaigns.models import (
    Campaign,
    Character,
    ContentPack,
    Event,
    Invite,
    Membership,
    PersonalityPreset,
    PlaySession,
    Snapshot,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class CharacterInline(admin.TabularInline):
    model = Character
    extra = 0
    fields = ["name", "owner", "archetype", "attributes"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "pack", "personality", "created_by", "created_at"]
    list_filter = ["pack", "personality"]
    search_fields = ["name"]
    inlines = [MembershipInline, CharacterInline]
    list_select_related = ["pack", "personality", "created_by"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["campaign", "user", "role", "joined_at"]
    list_filter = ["role"]
    search_fields = ["campaign__name", "user__username", "user__email"]
    list_select_related = ["campaign", "user"]


@admin.register(Character)
class CharacterAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "owner", "archetype"]
    search_fields = ["name", "campaign__name"]
    list_select_related = ["campaign", "owner"]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["campaign", "role", "created_by", "expires_at", "used_by", "used_at"]
    readonly_fields = ["code", "used_by", "used_at"]
    list_select_related = ["campaign", "created_by", "used_by"]


class EventInline(admin.TabularInline):
    """The session's event log, read-only: events are append-only."""

    model = Event
    extra = 0
    can_delete = False
    ordering = ["seq"]
    fields = ["seq", "type", "actor", "payload", "seed", "idempotency_key", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PlaySession)
class PlaySessionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "campaign", "number", "status", "version", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "campaign__name"]
    readonly_fields = ["version", "state", "state_hash", "opened_by", "created_at"]
    inlines = [EventInline]
    list_select_related = ["campaign"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["session", "seq", "type", "actor", "created_at"]
    list_filter = ["type"]
    search_fields = ["session__campaign__name", "type"]
    list_select_related = ["session", "actor"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Event._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["session", "seq", "sha256", "created_at"]
    readonly_fields = ["session", "seq", "state", "sha256", "created_at"]


@admin.register(PersonalityPreset)
class PersonalityPresetAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tone", "verbosity"]
    search_fields = ["name", "slug"]


@admin.register(ContentPack)
class ContentPackAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "version", "installed_at"]
    readonly_fields = ["sha256", "installed_at"]
