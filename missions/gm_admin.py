"""Missions in the GM admin (/gm/, issue 22): a GM's private missions and the campaign's pin.

A GM installs a mission here as their own private one (`Mission.owner`, `public=False`): it is
listed only to them and playable only in the campaigns they run (missions.services.usable_in).
Compile errors show inline, one `file:line:col: message` per error. A version never changes
(sessions run the version whose hash they started with), so "editing" a mission installs the
edited source as a new version — and may pin it to one of the GM's campaigns in the same step.
The site-wide catalogue stays staff's: publishing a private mission is an /admin/ action.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from campaigns.errors import DomainError
from campaigns.gm_admin import (
    GM,
    CampaignForm,
    CampaignGMAdmin,
    GMScopedAdmin,
    gm_campaign_ids,
    scoped_choices,
)
from campaigns.models import Campaign
from gtw_site.ratelimit import rate_check
from missions.admin import MissionInstallForm
from missions.models import Mission
from missions.services import campaign_mission_pin, mission_install, usable_in


def _label(mission: Mission) -> str:
    where = "site-wide" if mission.public else "private"
    return f"{mission.title} ({mission.slug} @ {mission.content_hash[:12]}, {where})"


class GMMissionForm(MissionInstallForm):
    pin_to = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="play it in",
        help_text="Pin this version to one of your campaigns: its next session opens with it.",
    )

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                rate_check(scope="content_install", ident=self.gm_request.user.pk)
            except DomainError as exc:
                raise ValidationError(exc.message) from None
        return cleaned


class MissionGMAdmin(GMScopedAdmin):
    form = GMMissionForm
    list_display = ["title", "slug", "biome", "short_hash", "visibility", "installed_at"]
    list_filter = ["biome", "public"]
    search_fields = ["title", "slug", "content_hash"]
    ordering = ["slug", "-installed_at"]
    readonly_fields = ["title", "slug", "biome", "content_hash", "visibility", "installed_at", "used_by"]

    # A mission belongs to its owner, not to a campaign.
    def scope(self, request, queryset):
        if not gm_campaign_ids(request):
            return queryset.none()
        return queryset.filter(owner_id=request.user.pk)

    def owns(self, request, obj=None):
        return bool(gm_campaign_ids(request)) and (obj is None or obj.owner_id == request.user.pk)

    def has_add_permission(self, request):
        return self.owns(request)

    def get_fieldsets(self, request, obj=None):
        edit = [(None, {"fields": ["source", "upload", "pin_to"]})]
        if obj is None:
            return edit
        version = ("This version", {"fields": self.readonly_fields})
        return [version, ("Install an edited version", {"fields": ["source", "upload", "pin_to"]})]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        kwargs["fields"] = ["source"]
        form = super().get_form(request, obj, **kwargs)
        form.gm_request = request
        form.base_fields["pin_to"].queryset = scoped_choices(request, Campaign)
        return form

    @admin.display(description="hash", ordering="content_hash")
    def short_hash(self, obj):
        return obj.content_hash[:12]

    @admin.display(description="visibility", ordering="public")
    def visibility(self, obj):
        return "site-wide (published by staff)" if obj.public else "private: your campaigns only"

    @admin.display(description="pinned in")
    def used_by(self, obj):
        # A private mission is usable only in its owner's campaigns: those are the ones to list.
        names = Campaign.objects.filter(
            memberships__user_id=obj.owner_id,
            memberships__role=GM,
            mission_slug=obj.slug,
            mission_hash=obj.content_hash,
        ).values_list("name", flat=True)
        return ", ".join(names) or "—"

    def save_form(self, request, form, change):
        mission, created = mission_install(
            source=form.cleaned_data["mission_source"],
            filename=form.cleaned_data["mission_filename"],
            user=request.user,
            owner=request.user,
        )
        mission.gm_created = created
        return mission

    def save_model(self, request, obj, form, change):
        campaign = form.cleaned_data.get("pin_to")
        if campaign is not None:
            campaign_mission_pin(campaign=campaign, mission=obj)
            self.message_user(request, f"“{campaign}” now plays {_label(obj)}.", messages.SUCCESS)

    def save_related(self, request, form, formsets, change):
        pass

    def log_change(self, request, obj, message):
        return super().log_addition(request, obj, message) if obj.gm_created else None

    def log_addition(self, request, obj, message):
        return super().log_addition(request, obj, message) if obj.gm_created else None

    def _back_to(self, request, obj):
        if not obj.gm_created:
            self.message_user(
                request, "This exact version was already installed; nothing new.", messages.INFO
            )
        else:
            self.message_user(request, f"Installed {_label(obj)}.", messages.SUCCESS)
        if "_addanother" in request.POST:
            return HttpResponseRedirect(request.path)
        if "_continue" in request.POST or "_save" not in request.POST:
            return HttpResponseRedirect(self.change_url(obj))
        return HttpResponseRedirect(self.changelist_url())

    def response_add(self, request, obj, post_url_continue=None):
        return self._back_to(request, obj)

    def response_change(self, request, obj):
        return self._back_to(request, obj)


class CampaignMissionForm(CampaignForm):
    """The campaign form with its mission pin: any version usable in this campaign (the site's
    catalogue and its GMs' private missions), never another GM's private one."""

    mission = forms.ModelChoiceField(
        queryset=Mission.objects.none(),
        required=False,
        label="mission version",
        help_text="The version the next session opens with (a running session keeps its own).",
    )

    class Meta(CampaignForm.Meta):
        pass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["mission"]
        field.queryset = Mission.objects.filter(usable_in(self.instance)).order_by("slug", "-installed_at")
        field.label_from_instance = _label
        if self.instance.mission_hash:
            pinned = field.queryset.filter(
                slug=self.instance.mission_slug, content_hash=self.instance.mission_hash
            )
            self.initial["mission"] = pinned.values_list("pk", flat=True).first()


class CampaignMissionGMAdmin(CampaignGMAdmin):
    form = CampaignMissionForm
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "personality",
                    "mission",
                    "archived",
                    "pack",
                    "pinned_mission",
                    "created_by",
                ]
            },
        ),
        *CampaignGMAdmin.fieldsets[1:],
    ]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        mission = form.cleaned_data.get("mission")
        if mission is not None and "mission" in form.changed_data:
            campaign_mission_pin(campaign=obj, mission=mission)
