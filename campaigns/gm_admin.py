"""The GM admin (/gm/, issue 22): the tenant layer's part — the scoping every GM ModelAdmin shares,
and the campaigns, memberships, invites, characters, sessions and the event log.

A GM is any user with the GM role (co-GMs included) in at least one campaign; they are not staff
and hold no Django model permissions, so every `has_*_permission` here is decided by campaign
membership, never by `user.has_perm`. Tenancy is in the query: `get_queryset` keeps the rows of
the campaigns the user runs, foreign-key choices are limited the same way, and an id outside them
answers 404 (never a redirect that names it). The site itself (`gtw_site.gm_admin`) registers
these classes; this module registers nothing.
"""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.filters import RelatedOnlyFieldListFilter
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from campaigns import services
from campaigns.errors import Conflict, DomainError, Invalid
from campaigns.models import (
    Campaign,
    Character,
    ContentPack,
    Invite,
    Membership,
    PersonalityPreset,
    PlaySession,
)
from gtw_site.text import clean_text

GM = Membership.Role.GM
# The stage's moderation events (campaigns/stage/services.py): the moderation log's filter.
MODERATION_TYPES = (
    "HandRaised",
    "HandLowered",
    "HandApproved",
    "HandDenied",
    "SpeakerMuted",
    "SpeakerUnmuted",
    "SpeakerRemoved",
    "TeamAssigned",
    "ModeratorPromoted",
    "ModeratorDemoted",
)


def gm_campaign_ids(request) -> frozenset[int]:
    """The campaigns the signed-in user runs (GM or co-GM), once per request."""
    ids = getattr(request, "_gm_campaign_ids", None)
    if ids is None:
        user = request.user
        ids = frozenset()
        if user.is_authenticated and user.is_active:
            rows = Membership.objects.filter(user_id=user.pk, role=GM).values_list("campaign_id", flat=True)
            ids = frozenset(rows)
        request._gm_campaign_ids = ids
    return ids


def gm_membership(request, campaign_id: int) -> Membership:
    """The user's GM membership of a campaign they run (404 for any other campaign)."""
    if campaign_id not in gm_campaign_ids(request):
        raise Http404("No such campaign.")
    return Membership.objects.select_related("campaign", "user").get(
        campaign_id=campaign_id, user_id=request.user.pk
    )


def scoped_choices(request, model):
    """What a foreign key to `model` may point at in a GM's form: only rows of their campaigns.
    An unknown model is a programming error, not an empty list: a new field must say its scope."""
    ids = gm_campaign_ids(request)
    if model is Campaign:
        return Campaign.objects.filter(pk__in=ids)
    if model is get_user_model():
        members = Membership.objects.filter(campaign_id__in=ids).values("user_id")
        return model.objects.filter(pk__in=members).order_by("username")
    if model is PlaySession:
        return PlaySession.objects.filter(campaign_id__in=ids)
    if model is Character:
        return Character.objects.filter(campaign_id__in=ids)
    if model is Membership:
        return Membership.objects.filter(campaign_id__in=ids)
    if model in (PersonalityPreset, ContentPack):
        return model.objects.all()  # the site's catalogue: no campaign data
    raise ImproperlyConfigured(f"The GM admin has no scope for a foreign key to {model.__name__}.")


class GMScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin for one campaign's rows. `campaign_field` is the lookup from the model to its
    Campaign ("" for Campaign itself). Viewing and changing are open on the user's campaigns;
    adding and deleting are off unless a subclass turns them on (`gm_can_add`/`gm_can_delete`)."""

    campaign_field = "campaign"
    gm_can_add = False
    gm_can_change = True
    gm_can_delete = False

    # ---- tenancy ---------------------------------------------------------------------------

    def scope(self, request, queryset):
        lookup = f"{self.campaign_field}__in" if self.campaign_field else "pk__in"
        return queryset.filter(**{lookup: gm_campaign_ids(request)})

    def get_queryset(self, request):
        return self.scope(request, super().get_queryset(request))

    def campaign_id_of(self, obj) -> int | None:
        if not self.campaign_field:
            return obj.pk
        *hops, last = self.campaign_field.split("__")
        for hop in hops:
            obj = getattr(obj, hop)
        return getattr(obj, f"{last}_id")

    def owns(self, request, obj=None) -> bool:
        ids = gm_campaign_ids(request)
        return bool(ids) and (obj is None or self.campaign_id_of(obj) in ids)

    def gm_membership(self, request, obj) -> Membership:
        return gm_membership(request, self.campaign_id_of(obj))

    # ---- permissions: by membership, not Django model permissions ----------------------------

    def has_module_permission(self, request):
        return self.owns(request)

    def has_view_permission(self, request, obj=None):
        return self.owns(request, obj)

    def has_add_permission(self, request):
        return self.gm_can_add and self.owns(request)

    def has_change_permission(self, request, obj=None):
        return self.gm_can_change and self.owns(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.gm_can_delete and self.owns(request, obj)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index saying "… with ID 5 doesn't exist": for another GM's
        # object that confirms nothing, but a plain 404 is the house rule (no existence leak).
        raise Http404("Not found.")

    # Django checks permissions before it looks the object up: look first, so an id outside the
    # user's campaigns answers 404 on every URL, whatever the method.
    def delete_view(self, request, object_id, extra_context=None):
        self._exists_or_404(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is not None:
            self._exists_or_404(request, object_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._exists_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def _exists_or_404(self, request, object_id) -> None:
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("Not found.")

    # ---- forms and filters scoped the same way ---------------------------------------------

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs["queryset"] = scoped_choices(request, db_field.related_model)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs["queryset"] = scoped_choices(request, db_field.related_model)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        # A plain foreign-key filter lists every row of the related table (every campaign and
        # user on the server): only the ones the GM's own rows point at are listed.
        result = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and isinstance(self._field(item), models.ForeignKey):
                item = (item, RelatedOnlyFieldListFilter)
            result.append(item)
        return result

    def _field(self, name: str):
        model = self.model
        field = None
        for part in name.split("__"):
            field = model._meta.get_field(part)
            model = field.related_model or model
        return field

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_delete_permission(request):
            actions.pop("delete_selected", None)
        return actions

    def refuse(self, request, exc: DomainError) -> None:
        self.message_user(request, exc.message, messages.ERROR)

    def changelist_url(self) -> str:
        opts = self.opts
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=self.admin_site.name
        )

    def change_url(self, obj) -> str:
        opts = obj._meta
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )


class GMReadOnlyInline(admin.TabularInline):
    """An inline under a scoped parent (its rows are the parent's): shown, never edited here."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request, obj=None):
        return bool(gm_campaign_ids(request))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _pretty(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )


# ---- campaigns --------------------------------------------------------------------------------


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["name", "personality"]

    def clean_name(self):
        try:
            return clean_text(self.cleaned_data["name"], what="The campaign name", max_len=services.NAME_MAX)
        except DomainError as exc:
            raise ValidationError(exc.message) from None


class MembershipInline(GMReadOnlyInline):
    model = Membership
    fields = ["user", "role", "joined_at"]
    readonly_fields = fields


class CampaignGMAdmin(GMScopedAdmin):
    campaign_field = ""
    form = CampaignForm
    list_display = ["name", "pack", "personality", "archived", "pinned_mission", "created_at"]
    list_filter = ["archived", "personality"]
    search_fields = ["name"]
    list_select_related = ["pack", "personality"]
    fieldsets = [
        (None, {"fields": ["name", "personality", "archived", "pack", "pinned_mission", "created_by"]}),
        ("Engine settings", {"fields": ["engine_settings", "campaign_settings"]}),
        ("Tools", {"fields": ["tools"]}),
    ]
    readonly_fields = [
        "archived",
        "pack",
        "pinned_mission",
        "created_by",
        "engine_settings",
        "campaign_settings",
        "tools",
    ]
    inlines = [MembershipInline]
    actions = ["open_session", "create_player_invite", "archive", "unarchive"]

    def has_change_permission(self, request, obj=None):
        # An archived campaign is read-only (issue 16): unarchive it (an action) to change it.
        return super().has_change_permission(request, obj) and not (obj is not None and obj.archived)

    @admin.display(description="mission")
    def pinned_mission(self, obj):
        if not obj.mission_slug:
            return "—"
        return f"{obj.mission_slug} @ {obj.mission_hash[:12]}"

    @admin.display(description="site-wide engine settings")
    def engine_settings(self, obj):
        dda = settings.GTW_DDA
        return format_html(
            "<ul><li>GM omniscience (GM prompts see players' private memories): <b>{}</b></li>"
            "<li>DDA caps: DC offset from {} to {}, over the last {} checks</li>"
            "<li>Recalled memories per turn: {}; a summary every {} narrations</li></ul>"
            "<p class='help'>Set by the site's operator (GTW_GM_OMNISCIENT, GTW_DDA_*, "
            "GTW_RECALL_K, GTW_SUMMARY_EVERY).</p>",
            "on" if settings.GTW_MEMORY["gm_omniscient"] else "off",
            dda["dc_min_offset"],
            dda["dc_max_offset"],
            dda["window"],
            settings.GTW_MEMORY["recall_k"],
            settings.GTW_MEMORY["summary_every"],
        )

    @admin.display(description="this campaign's settings (voice, images, providers, safety…)")
    def campaign_settings(self, obj):
        return _pretty(obj.settings or {}) if obj.settings else "— (the site's defaults)"

    @admin.display(description="go to")
    def tools(self, obj):
        site = self.admin_site.name
        links = [
            ("Campaign page", reverse("campaign_detail", args=[obj.pk])),
            (
                "Sessions",
                reverse(f"{site}:campaigns_playsession_changelist") + f"?campaign__id__exact={obj.pk}",
            ),
            (
                "Event log",
                reverse(f"{site}:campaigns_event_changelist") + f"?session__campaign__id__exact={obj.pk}",
            ),
            ("Invites", reverse(f"{site}:campaigns_invite_changelist") + f"?campaign__id__exact={obj.pk}"),
            (
                "Members",
                reverse(f"{site}:campaigns_membership_changelist") + f"?campaign__id__exact={obj.pk}",
            ),
        ]
        export = _export_url(obj)
        if export:
            links.append(("Export (save file)", export))
        return format_html_join(" · ", '<a href="{}">{}</a>', ((url, label) for label, url in links))

    def save_model(self, request, obj, form, change):
        self.gm_membership(request, obj)  # 404 unless the user runs it (get_object checked too)
        obj.save(update_fields=["name", "personality"])

    def _each_gm_campaign(self, request, queryset, do) -> int:
        done = 0
        for campaign in queryset:
            try:
                do(self.gm_membership(request, campaign))
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{campaign}: {exc.message}", messages.ERROR)
        return done

    @admin.action(description="Open a new session")
    def open_session(self, request, queryset):
        opened = []

        def do(membership):
            if membership.campaign.archived:
                raise Conflict("It is archived: unarchive it first.")
            opened.append(services.session_open(membership=membership))

        self._each_gm_campaign(request, queryset, do)
        for session in opened:
            url = reverse("play", args=[session.pk])
            self.message_user(
                request,
                format_html('Opened {} of {}: <a href="{}">play it</a>.', session, session.campaign, url),
                messages.SUCCESS,
            )

    @admin.action(description="Create an invite link for a player")
    def create_player_invite(self, request, queryset):
        def do(membership):
            invite = services.invite_create(membership=membership)
            link = request.build_absolute_uri(reverse("invite_accept", args=[invite.code]))
            self.message_user(
                request,
                format_html("Invite to {}: <code>{}</code>", membership.campaign, link),
                messages.SUCCESS,
            )

        self._each_gm_campaign(request, queryset, do)

    @admin.action(description="Archive (read-only, ends its active sessions)")
    def archive(self, request, queryset):
        from campaigns import lifecycle

        n = self._each_gm_campaign(request, queryset, lambda m: lifecycle.campaign_archive(membership=m))
        self.message_user(request, f"Archived {n} campaign(s).", messages.SUCCESS)

    @admin.action(description="Unarchive")
    def unarchive(self, request, queryset):
        from campaigns import lifecycle

        n = self._each_gm_campaign(
            request, queryset, lambda m: lifecycle.campaign_archive(membership=m, archived=False)
        )
        self.message_user(request, f"Unarchived {n} campaign(s).", messages.SUCCESS)


def _export_url(campaign: Campaign) -> str | None:
    """The campaign's export (issue 16's save file), where that endpoint exists."""
    try:
        return reverse("campaign_export", args=[campaign.pk])
    except NoReverseMatch:  # not on this site (yet)
        return None


# ---- memberships ------------------------------------------------------------------------------


class MembershipGMAdmin(GMScopedAdmin):
    list_display = ["user", "campaign", "role", "joined_at"]
    list_filter = ["role", "campaign"]
    search_fields = ["user__username"]  # not e-mail: a GM can't probe an address by searching
    list_select_related = ["campaign", "user"]
    fields = ["campaign", "user", "role", "joined_at"]
    readonly_fields = ["campaign", "user", "joined_at"]
    gm_can_delete = True
    actions = ["make_co_gm", "make_player", "make_spectator"]

    def _own(self, request, obj) -> bool:
        return obj is not None and obj.user_id == request.user.pk

    def has_change_permission(self, request, obj=None):
        # Your own seat is changed by another GM of the campaign: nobody demotes themselves out of
        # their own campaign, and the campaign always keeps a GM.
        return super().has_change_permission(request, obj) and not self._own(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._own(request, obj)

    def delete_queryset(self, request, queryset):
        queryset.exclude(user_id=request.user.pk).delete()

    def _set_role(self, request, queryset, role: str) -> None:
        changed = queryset.exclude(user_id=request.user.pk).exclude(role=role).update(role=role)
        label = Membership.Role(role).label
        self.message_user(request, f"{changed} member(s) are now {label}.", messages.SUCCESS)

    @admin.action(description="Make co-GM")
    def make_co_gm(self, request, queryset):
        self._set_role(request, queryset, GM)

    @admin.action(description="Make player")
    def make_player(self, request, queryset):
        self._set_role(request, queryset, Membership.Role.PLAYER)

    @admin.action(description="Make spectator")
    def make_spectator(self, request, queryset):
        self._set_role(request, queryset, Membership.Role.SPECTATOR)


# ---- invites ----------------------------------------------------------------------------------


class InviteAddForm(forms.ModelForm):
    role = forms.ChoiceField(
        choices=[(Membership.Role.PLAYER, "Player"), (Membership.Role.SPECTATOR, "Spectator")],
        initial=Membership.Role.PLAYER,
    )

    class Meta:
        model = Invite
        fields = ["campaign", "role"]


class InviteGMAdmin(GMScopedAdmin):
    list_display = ["campaign", "role", "state", "link", "created_by", "expires_at", "used_by", "used_at"]
    list_filter = ["role", "campaign"]
    search_fields = ["used_by__username"]
    list_select_related = ["campaign", "created_by", "used_by"]
    fields = [
        "campaign",
        "role",
        "link",
        "state",
        "created_by",
        "created_at",
        "expires_at",
        "used_by",
        "used_at",
    ]
    readonly_fields = ["link", "state", "created_by", "created_at", "expires_at", "used_by", "used_at"]
    gm_can_add = True
    gm_can_change = False
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else ["campaign", "role", *self.readonly_fields]

    def get_fields(self, request, obj=None):
        return ["campaign", "role"] if obj is None else self.fields

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = InviteAddForm
        return super().get_form(request, obj, **kwargs)

    @admin.display(description="state")
    def state(self, obj):
        if obj.used_at:
            return "used"
        return "expired or revoked" if obj.expires_at <= timezone.now() else "open"

    @admin.display(description="link")
    def link(self, obj):
        if obj.used_at or obj.expires_at <= timezone.now():
            return "—"
        return format_html("<code>{}</code>", reverse("invite_accept", args=[obj.code]))

    def save_form(self, request, form, change):
        return form.save(commit=False)

    def save_model(self, request, obj, form, change):
        membership = gm_membership(request, obj.campaign_id)
        invite = services.invite_create(membership=membership, role=form.cleaned_data["role"])
        obj.pk, obj.code, obj.created_by, obj.expires_at = (
            invite.pk,
            invite.code,
            invite.created_by,
            invite.expires_at,
        )
        obj.created_at = invite.created_at

    def save_related(self, request, form, formsets, change):
        pass

    @admin.action(description="Revoke (the link stops working)")
    def revoke(self, request, queryset):
        n = queryset.filter(used_at__isnull=True, expires_at__gt=timezone.now()).update(
            expires_at=timezone.now()
        )
        self.message_user(request, f"Revoked {n} invite(s).", messages.SUCCESS)


# ---- characters -------------------------------------------------------------------------------

RETIRED_KEY = "roster"  # Campaign.settings["roster"]["retired"]: {character id: {"at", "by"}}


def retired_ids(campaign: Campaign) -> dict:
    return ((campaign.settings or {}).get(RETIRED_KEY) or {}).get("retired") or {}


class CharacterForm(forms.ModelForm):
    attributes = forms.JSONField(
        required=False,
        help_text="Within the pack's attribute rules (names, range, point budget); {} for the archetype's.",
    )

    class Meta:
        model = Character
        fields = ["name", "archetype", "attributes", "xp", "level"]

    def clean_name(self):
        try:
            return clean_text(self.cleaned_data["name"], what="The character name", max_len=60)
        except DomainError as exc:
            raise ValidationError(exc.message) from None

    def clean(self):
        data = super().clean()
        pack = self.instance.campaign.pack
        archetype = pack.archetype(data.get("archetype") or "")
        if archetype is None:
            choices = ", ".join(a["slug"] for a in pack.archetypes)
            self.add_error("archetype", f"Unknown archetype (choose one of: {choices}).")
        elif "attributes" in data:
            try:
                attributes = data["attributes"] or {}
                if not isinstance(attributes, dict):
                    raise Invalid("Attributes are a JSON object of name: value.")
                data["attributes"] = services._validate_attributes(pack, archetype, attributes)
            except DomainError as exc:
                self.add_error("attributes", exc.message)
        return data


class CharacterGMAdmin(GMScopedAdmin):
    form = CharacterForm
    list_display = ["name", "campaign", "owner", "archetype", "level", "xp", "retired"]
    list_filter = ["campaign", "archetype"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["campaign", "owner", "campaign__pack"]
    fields = [
        "campaign",
        "owner",
        "name",
        "archetype",
        "attributes",
        "xp",
        "level",
        "inventory_list",
        "retired",
    ]
    readonly_fields = ["campaign", "owner", "inventory_list", "retired"]
    actions = ["retire", "unretire"]

    @admin.display(description="inventory")
    def inventory_list(self, obj):
        return ", ".join(f"{i.get('item')} x{i.get('qty')}" for i in obj.inventory or []) or "—"

    @admin.display(description="retired", boolean=True)
    def retired(self, obj):
        return str(obj.pk) in retired_ids(obj.campaign)

    def _mark(self, request, queryset, retire: bool) -> None:
        n = 0
        for character in queryset.select_related("campaign"):
            campaign = Campaign.objects.select_for_update().get(pk=character.campaign_id)
            data = dict(campaign.settings or {})
            roster = dict(data.get(RETIRED_KEY) or {})
            retired = dict(roster.get("retired") or {})
            key = str(character.pk)
            if retire and key not in retired:
                retired[key] = {"at": timezone.now().isoformat(), "by": request.user.pk}
            elif not retire and key in retired:
                retired.pop(key)
            else:
                continue
            roster["retired"] = retired
            data[RETIRED_KEY] = roster
            Campaign.objects.filter(pk=campaign.pk).update(settings=data)
            n += 1
        self.message_user(
            request, f"{'Retired' if retire else 'Brought back'} {n} character(s).", messages.SUCCESS
        )

    @admin.action(description="Retire (keeps the sheet; marked retired on the roster)")
    def retire(self, request, queryset):
        from django.db import transaction

        with transaction.atomic():
            self._mark(request, queryset, True)

    @admin.action(description="Bring back from retirement")
    def unretire(self, request, queryset):
        from django.db import transaction

        with transaction.atomic():
            self._mark(request, queryset, False)


# ---- sessions and the event log ---------------------------------------------------------------


class SessionForm(forms.ModelForm):
    class Meta:
        model = PlaySession
        fields = ["title"]

    def clean_title(self):
        try:
            return clean_text(
                self.cleaned_data["title"], what="The session title", max_len=120, required=False
            )
        except DomainError as exc:
            raise ValidationError(exc.message) from None


class PlaySessionGMAdmin(GMScopedAdmin):
    form = SessionForm
    change_form_template = "gm_admin/campaigns/playsession/change_form.html"
    list_display = ["__str__", "campaign", "number", "kind", "status", "version", "created_at"]
    list_filter = ["status", "kind", "campaign"]
    search_fields = ["title", "campaign__name"]
    list_select_related = ["campaign"]
    fields = [
        "campaign",
        "number",
        "title",
        "kind",
        "status",
        "version",
        "opened_by",
        "created_at",
        "event_log",
    ]
    readonly_fields = [
        "campaign",
        "number",
        "kind",
        "status",
        "version",
        "opened_by",
        "created_at",
        "event_log",
    ]
    actions = ["end_sessions", "resume_sessions"]

    @admin.display(description="event log")
    def event_log(self, obj):
        url = reverse(f"{self.admin_site.name}:campaigns_event_changelist") + f"?session__id__exact={obj.pk}"
        return format_html(
            '<a href="{}">{} events</a> · <a href="{}">play page</a>',
            url,
            obj.version,
            reverse("play", args=[obj.pk]),
        )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/end/", wrap(self.end_view), name="{}_{}_end".format(*info)),
            path("<int:object_id>/resume/", wrap(self.resume_view), name="{}_{}_resume".format(*info)),
            path("<int:object_id>/branch/", wrap(self.branch_view), name="{}_{}_branch".format(*info)),
            *super().get_urls(),
        ]

    def _post_session(self, request, object_id):
        session = get_object_or_404(self.get_queryset(request).select_related("campaign"), pk=object_id)
        if request.method != "POST":
            return None, HttpResponseNotAllowed(["POST"])
        return session, None

    def end_view(self, request, object_id):
        session, refused = self._post_session(request, object_id)
        if refused:
            return refused
        try:
            services.session_end(session=session, membership=self.gm_membership(request, session))
            self.message_user(request, f"{session} has ended.", messages.SUCCESS)
        except DomainError as exc:
            self.refuse(request, exc)
        return HttpResponseRedirect(self.change_url(session))

    def resume_view(self, request, object_id):
        session, refused = self._post_session(request, object_id)
        if refused:
            return refused
        try:
            services.session_resume(session=session, membership=self.gm_membership(request, session))
            self.message_user(request, f"{session} is open again.", messages.SUCCESS)
        except DomainError as exc:
            self.refuse(request, exc)
        return HttpResponseRedirect(self.change_url(session))

    def branch_view(self, request, object_id):
        from campaigns.branching import campaign_branch

        session, refused = self._post_session(request, object_id)
        if refused:
            return refused
        try:
            seq = int(request.POST.get("seq", ""))
        except ValueError:
            self.message_user(
                request, "Branch at which event? Give its seq (a whole number).", messages.ERROR
            )
            return HttpResponseRedirect(self.change_url(session))
        try:
            branch = campaign_branch(
                membership=self.gm_membership(request, session),
                session=session,
                at_seq=seq,
                name=request.POST.get("name", ""),
            )
        except DomainError as exc:
            self.refuse(request, exc)
            return HttpResponseRedirect(self.change_url(session))
        request._gm_campaign_ids = None  # the branch is a new campaign the user runs
        self.message_user(
            request,
            f"Branched at #{seq}: a new campaign “{branch.campaign}” with {branch}.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self.change_url(branch))

    def _each(self, request, queryset, do, done: str) -> None:
        n = 0
        for session in queryset.select_related("campaign"):
            try:
                do(session=session, membership=self.gm_membership(request, session))
                n += 1
            except DomainError as exc:
                self.message_user(
                    request, f"{session} of {session.campaign}: {exc.message}", messages.WARNING
                )
        self.message_user(request, f"{n} session(s) {done}.", messages.SUCCESS)

    @admin.action(description="End the selected sessions")
    def end_sessions(self, request, queryset):
        self._each(request, queryset, services.session_end, "ended")

    @admin.action(description="Resume the selected sessions")
    def resume_sessions(self, request, queryset):
        self._each(request, queryset, services.session_resume, "resumed")


class StageModerationFilter(admin.SimpleListFilter):
    title = "log"
    parameter_name = "log"

    def lookups(self, request, model_admin):
        return [("moderation", "Stage moderation")]

    def queryset(self, request, queryset):
        if self.value() == "moderation":
            return queryset.filter(session__kind=PlaySession.Kind.STAGE, type__in=MODERATION_TYPES)
        return queryset


class EventGMAdmin(GMScopedAdmin):
    """The log, read-only for everyone: events are append-only (no add, change or delete)."""

    campaign_field = "session__campaign"
    gm_can_change = False
    list_display = ["seq", "session", "type", "actor", "summary", "created_at"]
    list_filter = [StageModerationFilter, "type", "actor", "session", "session__campaign"]
    search_fields = ["type", "actor__username"]
    list_select_related = ["session", "session__campaign", "actor"]
    ordering = ["-created_at", "-seq"]
    fields = ["session", "seq", "type", "actor", "payload_listing", "seed", "audience", "created_at"]
    readonly_fields = fields
    list_per_page = 100

    def get_list_filter(self, request):
        # "type" lists the types of the GM's own events (AllValuesFieldListFilter reads the
        # scoped queryset); the foreign keys only what those events point at.
        return [
            StageModerationFilter,
            "type",
            ("actor", RelatedOnlyFieldListFilter),
            ("session", RelatedOnlyFieldListFilter),
            ("session__campaign", RelatedOnlyFieldListFilter),
        ]

    @admin.display(description="payload")
    def summary(self, obj):
        text = json.dumps(obj.payload, ensure_ascii=False)
        return text if len(text) <= 120 else text[:117] + "…"

    @admin.display(description="payload")
    def payload_listing(self, obj):
        return _pretty(obj.payload)
