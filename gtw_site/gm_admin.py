"""The GM admin: a second Django AdminSite at /gm/ for everyone who runs a campaign (issue 22).

Staff keep the full admin at /admin/. /gm/ opens to any active user who is GM (co-GMs included)
of at least one campaign, with their normal sign-in — not `is_staff` — and shows only what
belongs to the campaigns they run: every ModelAdmin registered here scopes its queryset, its
foreign-key choices and its object permissions by the user's GM memberships
(campaigns.gm_admin.GMScopedAdmin). A player, spectator or outsider is sent back to the site
with a message; someone signed out goes to the sign-in page (allauth's, rate-limited) and back.

This module is an entry point (it imports the per-app `gm_admin` modules of every layer below);
the ModelAdmins live with their apps and register nothing themselves.
"""

from __future__ import annotations

from functools import update_wrapper

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from campaigns import gm_admin as campaigns_gm
from campaigns.models import Campaign, Character, Event, Invite, Membership, PlaySession
from campaigns.scheduling.gm_admin import SessionScheduleGMAdmin
from campaigns.scheduling.models import SessionSchedule
from media.gm_admin import BannedWordGMAdmin, ImageGMAdmin
from media.models import BannedWord, Image
from memory.gm_admin import MemoryGMAdmin
from memory.models import Memory
from missions.gm_admin import CampaignMissionGMAdmin, MissionGMAdmin
from missions.models import Mission

NOT_A_GM = "The GM admin is for game masters: create a campaign (or be made co-GM of one) to use it."


class GMAdminSite(admin.AdminSite):
    site_header = "Galactic Tale Weaver · GM admin"
    site_title = "GM admin"
    index_title = "The campaigns you run"
    site_url = "/"

    def has_permission(self, request):
        return bool(campaigns_gm.gm_campaign_ids(request))

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            # Before Django's own check, which would send a signed-in player to a login form.
            if not self.has_permission(request) and request.path != reverse(f"{self.name}:logout"):
                return self._refuse(request)
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, inner)

    def login(self, request, extra_context=None):
        if self.has_permission(request):
            next_url = request.GET.get("next") or reverse(f"{self.name}:index")
            if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                next_url = reverse(f"{self.name}:index")
            return redirect(next_url)
        return self._refuse(request, request.GET.get("next"))

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for app in apps:
            for model in app["models"]:
                if model["object_name"] == "Memory":
                    model["name"] = "Campaign memory"  # not Django's "Memorys"
        return apps

    def _refuse(self, request, next_url: str | None = None):
        if not request.user.is_authenticated:
            return redirect_to_login(next_url or request.get_full_path())  # allauth's sign-in
        messages.info(request, NOT_A_GM)
        return redirect("dashboard")


site = GMAdminSite(name="gm")
site.register(Campaign, CampaignMissionGMAdmin)
site.register(Membership, campaigns_gm.MembershipGMAdmin)
site.register(Invite, campaigns_gm.InviteGMAdmin)
site.register(Character, campaigns_gm.CharacterGMAdmin)
site.register(PlaySession, campaigns_gm.PlaySessionGMAdmin)
site.register(Event, campaigns_gm.EventGMAdmin)
site.register(Mission, MissionGMAdmin)
site.register(Memory, MemoryGMAdmin)
site.register(SessionSchedule, SessionScheduleGMAdmin)
site.register(Image, ImageGMAdmin)
site.register(BannedWord, BannedWordGMAdmin)
