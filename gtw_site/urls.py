from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from campaigns import views
from gtw_site import accounts, providers_views, replay_views
from gtw_site.api import api
from gtw_site.gm_admin import site as gm_site
from gtw_site.metrics_views import metrics_view
from gtw_site.views import healthz
from media.speech.views import campaign_voice, speech_audio
from memory.views import memory_page
from missions import simulation_views, techtree_views
from narrative import engine_views, tablesafety_views
from narrative.play import play

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("providers/", providers_views.providers_page, name="providers_page"),
    path("providers/compare/", providers_views.compare_page, name="providers_compare"),
    path("campaigns/<int:campaign_id>/costs/", providers_views.campaign_costs_page, name="campaign_costs"),
    path("sessions/<int:session_id>/costs/", providers_views.session_costs_page, name="session_costs"),
    path("sessions/<int:session_id>/replay/", replay_views.session_replay, name="session_replay"),
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg", permanent=True)),
    path("campaigns/new", views.campaign_create, name="campaign_create"),
    path("campaigns/join", views.invite_code_submit, name="invite_code_submit"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/invites", views.invite_create, name="invite_create"),
    path("campaigns/<int:campaign_id>/characters", views.character_create, name="character_create"),
    path("campaigns/<int:campaign_id>/personality", views.personality_set, name="personality_set"),
    path("campaigns/<int:campaign_id>/sessions", views.session_open, name="session_open"),
    path("campaigns/<int:campaign_id>/memory/", memory_page, name="memory_page"),
    path("invite/<str:code>/", views.invite_accept, name="invite_accept"),
    path("sessions/<int:session_id>/play/", play, name="play"),
    # Narration audio, members only (issue 14, media/speech/views.py).
    path("speech/<int:session_id>/<str:key>", speech_audio, name="speech-audio"),
    path("campaigns/<int:campaign_id>/voice", campaign_voice, name="campaign_voice"),
    # Table safety (issue 18): lines and veils, the X-card (narrative/tablesafety_views.py).
    path("campaigns/<int:campaign_id>/table-lines", tablesafety_views.table_line_add, name="table_line_add"),
    path(
        "campaigns/<int:campaign_id>/table-lines/<int:line_id>/delete",
        tablesafety_views.table_line_remove,
        name="table_line_remove",
    ),
    path("sessions/<int:session_id>/xcard", tablesafety_views.xcard_tap, name="xcard_tap"),
    path("", include("campaigns.stage.urls")),  # the stage page, fireteam and alliance forms
    path("", include("campaigns.scheduling.urls")),  # schedules, feed links, the ICS feed
    path("", include("campaigns.safety.urls")),  # the review queue, content settings (issue 18)
    path("", include("media.images.urls")),  # pictures: files, gallery, the GM's /image control
    path("", include("campaigns.lifecycle_urls")),  # clone, archive, export, import (issue 16)
    path("sessions/<int:session_id>/resume", views.session_resume, name="session_resume"),
    path("sessions/<int:session_id>/end", views.session_end, name="session_end"),
    path("sessions/<int:session_id>/branch", views.session_branch, name="session_branch"),
    path("sessions/<int:session_id>/mission", engine_views.mission_start, name="session_mission"),
    path("sessions/<int:session_id>/beat", engine_views.beat_set, name="session_beat"),
    path("sessions/<int:session_id>/research", techtree_views.research, name="session_research"),
    path("sessions/<int:session_id>/simulation", simulation_views.simulation_page, name="session_simulation"),
    path("sessions/<int:session_id>/override", engine_views.mission_override, name="session_override"),
    path("sessions/<int:session_id>/mission/retry", engine_views.mission_retry, name="session_mission_retry"),
    path("sessions/<int:session_id>/mission/next", engine_views.mission_next, name="session_mission_next"),
    path("sessions/<int:session_id>/mission/free-play", engine_views.free_play, name="session_free_play"),
    path("account/tokens/", views.tokens, name="tokens"),
    # Before allauth's own: the same page, saying so when no mail can be sent.
    path("accounts/password/reset/", accounts.PasswordResetView.as_view()),
    path("accounts/", include("allauth.urls")),
    # Before the admin's own login form, which has no rate limits: sign in through allauth's.
    path("admin/login/", accounts.admin_login),
    path("admin/", admin.site.urls),
    path("gm/", gm_site.urls),  # the GM admin: every GM, scoped to the campaigns they run
    path("api/", api.urls),
]
