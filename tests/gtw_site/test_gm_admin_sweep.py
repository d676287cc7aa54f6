"""The GM admin's isolation sweep (issue 22): every /gm/ URL, read from the GM site's own URL
patterns (so a new admin page is swept the day it lands), walked by GM Y with the ids of GM X's
campaign: by list, by id, by search, by autocomplete, by raw-id popup, by admin action and by
history. GM Y reads, edits and deletes nothing of X's; X's player gets no /gm/ at all."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver

from campaigns import selectors, services
from campaigns.models import Campaign, Character, Event, Invite, Membership, PlaySession
from campaigns.stage import services as stage_services
from gtw_site.gm_admin import site as gm_site
from media.images import services as image_services
from media.models import BannedWord, Image
from memory import services as memory_services
from memory.models import Memory
from missions.models import Mission
from missions.services import mission_install
from tests.gtw_site.gm_admin_helpers import private_mission_source

SECRET = "xcampaign-secret-vortex"
PRIVATE = "only-kira-knows-the-vault-code-4471"
MISSION_SECRET = "xmission-secret-heliotrope"


def _user(name: str):
    from tests.conftest import _user as make

    return make(name)


@pytest.fixture
def x_world(content, campaign, characters, session, gm, player):
    """GM X's campaign with something of every kind the GM admin shows."""
    from campaigns.scheduling import services as scheduling
    from narrative import turns

    campaign.name = f"Campaign {SECRET}"
    campaign.save(update_fields=["name"])
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    player_seat = selectors.membership_get(viewer=player, campaign_id=campaign.pk)
    PlaySession.objects.filter(pk=session.pk).update(title=f"Night of {SECRET}")
    turns.submit_action(session_id=session.pk, user=player, text=f"I whisper {SECRET}", idempotency_key="sx")
    stage = stage_services.stage_open(membership=gm_seat, title=f"Stage {SECRET}")
    memory_services.memory_record(membership=gm_seat, text=f"The table knows {SECRET}")
    memory_services.memory_record(membership=player_seat, text=PRIVATE, visibility="private")
    invite = services.invite_create(membership=gm_seat)
    schedule = scheduling.schedule_create(
        membership=gm_seat,
        title=f"Sessions {SECRET}",
        start="2027-01-07T19:30",
        time_zone="Europe/Berlin",
        duration_minutes=180,
        rrule="FREQ=WEEKLY",
    )
    mission, _ = mission_install(
        source=private_mission_source("x-secret-op", f"Op {MISSION_SECRET}"), user=gm, owner=gm
    )
    Character.objects.filter(campaign=campaign, owner=player).update(name=f"Kira {SECRET}")
    image, _ = image_services.image_request(campaign=campaign, kind="scene", session=session, subject=SECRET)
    banned = BannedWord.objects.create(campaign=campaign, word=f"banned {SECRET}")
    return {
        "campaign": campaign,
        "session": session,
        "stage": stage,
        "invite": invite,
        "schedule": schedule,
        "mission": mission,
        "memory": Memory.objects.filter(campaign=campaign, namespace=f"campaign:{campaign.pk}").first(),
        "private_memory": Memory.objects.get(text=PRIVATE),
        "membership": player_seat,
        "character": Character.objects.get(campaign=campaign, owner=player),
        "event": Event.objects.filter(session=session).order_by("-seq").first(),
        "image": image,
        "banned_word": banned,
    }


@pytest.fixture
def gm_y(content):
    """Another GM, with a campaign (and a private mission) of their own."""
    y = _user("ygm")
    services.campaign_create(user=y, name="Y's own sandbox", pack_slug="starter")
    mission_install(source=private_mission_source("y-own-op", "Y's own op"), user=y, owner=y)
    return y


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _objects(world) -> dict[str, object]:
    """X's object for each "app_label/model_name/" the GM site serves."""
    return {
        "campaigns/campaign/": world["campaign"],
        "campaigns/membership/": world["membership"],
        "campaigns/invite/": world["invite"],
        "campaigns/character/": world["character"],
        "campaigns/playsession/": world["session"],
        "campaigns/event/": world["event"],
        "missions/mission/": world["mission"],
        "memory/memory/": world["memory"],
        "scheduling/sessionschedule/": world["schedule"],
        "media/image/": world["image"],
        "media/bannedword/": world["banned_word"],
    }


def _gm_routes():
    """(route, model prefix) for every URL pattern of the GM site."""

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern)

    for route in walk(gm_site.get_urls()):
        if "^" in route or "(?P" in route:
            continue  # the catch-all and regex routes (password change, i18n) take no ids
        if route == "logout/":
            continue  # it signs the sweeper out; checked on its own
        yield route


def _fill(route: str, world) -> tuple[str, object | None]:
    objects = _objects(world)
    model = next((prefix for prefix in objects if route.startswith(prefix)), None)
    obj = objects.get(model)
    if route.startswith("r/"):  # "view on site": X's campaign by its content type
        from django.contrib.contenttypes.models import ContentType

        campaign = world["campaign"]
        return f"/gm/r/{ContentType.objects.get_for_model(campaign).pk}/{campaign.pk}/", campaign
    url = re.sub(r"<(?:\w+:)?object_id>", lambda m: str(obj.pk), route)
    url = re.sub(r"<(?:\w+:)?content_type_id>", "1", url)
    url = re.sub(r"<(?:\w+:)?\w+>", "1", url)
    return "/gm/" + url, obj


def _assert_no_leak(response, where: str, world, echoed: str = "") -> None:
    text = response.content.decode(errors="replace")
    if echoed:  # the search box shows what was searched for
        for echo in (f'value="{echoed}"', f"q={echoed}", f"q%3D{echoed}"):
            text = text.replace(echo, "")
    for secret in (SECRET, PRIVATE, MISSION_SECRET, world["invite"].code):
        assert secret not in text, f"{where} leaked {secret!r}"


def _snapshot(world) -> dict:
    c = world["campaign"]
    return {
        "campaign": Campaign.objects.filter(pk=c.pk)
        .values("name", "personality_id", "archived", "settings")
        .get(),
        "members": sorted(Membership.objects.filter(campaign=c).values_list("user_id", "role")),
        "invites": sorted(Invite.objects.filter(campaign=c).values_list("code", "expires_at", "used_at")),
        "characters": sorted(Character.objects.filter(campaign=c).values_list("pk", "name", "attributes")),
        "sessions": sorted(
            PlaySession.objects.filter(campaign=c).values_list("pk", "status", "title", "version")
        ),
        "events": Event.objects.filter(session__campaign=c).count(),
        "memories": sorted(Memory.objects.filter(campaign=c).values_list("pk", "text")),
        "schedule": world["schedule"]
        .__class__.objects.filter(pk=world["schedule"].pk)
        .values("title")
        .first(),
        "mission": Mission.objects.filter(pk=world["mission"].pk).values("public", "owner_id").first(),
        "branches": Campaign.objects.filter(name__contains="branch").count(),
        "images": sorted(Image.objects.filter(campaign=c).values_list("pk", "hidden", "status", "seed")),
        "banned_words": sorted(BannedWord.objects.filter(campaign=c).values_list("pk", "word")),
    }


def test_gm_y_reads_and_changes_nothing_of_gm_x_on_any_gm_url(x_world, gm_y):
    client = _client(gm_y)
    before = _snapshot(x_world)
    swept = 0
    for route in _gm_routes():
        url, obj = _fill(route, x_world)
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"post": "yes", "seq": "1", "title": "hijack"})
            where = f"{method.upper()} {url}"
            _assert_no_leak(response, where, x_world)
            if route.endswith("<path:object_id>/") and not route.startswith("r/"):
                # Django's old-style URL: a redirect to the change page, which answers 404.
                assert response.status_code in (301, 302), f"{where} answered {response.status_code}"
                assert client.get(response["Location"]).status_code == 404, where
            elif obj is not None and "object_id" in route:
                assert response.status_code == 404, f"{where} answered {response.status_code}"
            else:
                assert response.status_code in (200, 302, 400, 403, 404, 405), (
                    f"{where}: {response.status_code}"
                )
        swept += 1
    assert swept >= 60  # every model's list, add, change, delete, history, plus the site's own
    assert _snapshot(x_world) == before


def test_gm_y_finds_nothing_of_gm_x_by_search_filter_popup_or_autocomplete(x_world, gm_y, gm):
    client = _client(gm_y)
    lists = [prefix for prefix in _objects(x_world)]
    for prefix in lists:
        for query in (
            f"?q={SECRET}",
            f"?q={x_world['campaign'].pk}",
            "?_to_field=id&_popup=1",  # the raw-id lookup popup
            f"?campaign__id__exact={x_world['campaign'].pk}",
            f"?session__campaign__id__exact={x_world['campaign'].pk}",
            f"?owner__id__exact={gm.pk}",
        ):
            response = client.get(f"/gm/{prefix}{query}")
            echoed = SECRET if query == f"?q={SECRET}" else ""
            _assert_no_leak(response, f"GET /gm/{prefix}{query}", x_world, echoed)
            assert response.status_code in (200, 302), f"/gm/{prefix}{query}: {response.status_code}"
            if response.status_code == 200 and echoed:
                assert response.context["cl"].result_count == 0, f"/gm/{prefix}{query} found X's rows"
    # Autocomplete, for every foreign key of every model on the site, with and without a term.
    swept = 0
    for model in gm_site._registry:
        for field in model._meta.get_fields():
            if not getattr(field, "many_to_one", False) or field.related_model not in gm_site._registry:
                continue
            for term in ("", SECRET, "Kira"):
                params = {
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": field.name,
                    "term": term,
                }
                response = client.get("/gm/autocomplete/", params)
                _assert_no_leak(response, f"autocomplete {params}", x_world)
                assert response.status_code in (200, 403, 404), f"autocomplete {params}"
                swept += 1
    assert swept >= 9
    # Not vacuous: the same lookup answers Y with Y's own campaign.
    params = {"app_label": "campaigns", "model_name": "invite", "field_name": "campaign", "term": ""}
    found = [r["text"] for r in client.get("/gm/autocomplete/", params).json()["results"]]
    assert found == ["Y's own sandbox"]


def test_gm_y_admin_actions_on_gm_x_ids_do_nothing(x_world, gm_y):
    client = _client(gm_y)
    before = _snapshot(x_world)
    targets = _objects(x_world)
    for prefix, obj in targets.items():
        model_admin = next(
            a for m, a in gm_site._registry.items() if prefix == f"{m._meta.app_label}/{m._meta.model_name}/"
        )
        names = [*(model_admin.actions or []), "delete_selected"]
        for action in names:
            response = client.post(
                f"/gm/{prefix}", {"action": action, "_selected_action": [obj.pk], "post": "yes", "index": 0}
            )
            _assert_no_leak(response, f"action {action} on {prefix}", x_world)
    assert _snapshot(x_world) == before


def test_the_player_and_the_anonymous_get_no_gm_admin(x_world, player, outsider):
    for user in (player, outsider):
        client = _client(user)
        for route in _gm_routes():
            url, _ = _fill(route, x_world)
            response = client.get(url)
            assert response.status_code == 302, f"{user} GET {url}: {response.status_code}"
            assert response["Location"] == "/", f"{user} GET {url} went to {response['Location']}"
        followed = client.get("/gm/", follow=True)
        assert "for game masters" in followed.content.decode()
    anonymous = Client()
    for route in _gm_routes():
        url, _ = _fill(route, x_world)
        if url.endswith("/logout/"):
            continue
        response = anonymous.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_the_gm_and_a_co_gm_see_their_campaign_and_nothing_private(x_world, gm, player):
    co_gm = _user("cogm")
    Membership.objects.create(campaign=x_world["campaign"], user=co_gm, role=Membership.Role.GM)
    for user in (gm, co_gm):
        client = _client(user)
        for prefix, obj in _objects(x_world).items():
            if prefix == "missions/mission/" and user != gm:
                continue  # a private mission is its owner's
            listing = client.get(f"/gm/{prefix}")
            assert listing.status_code == 200, prefix
            change = client.get(f"/gm/{prefix}{obj.pk}/change/")
            assert change.status_code == 200, f"{user} {prefix}: {change.status_code}"
            assert PRIVATE not in listing.content.decode() + change.content.decode()
        memories = client.get("/gm/memory/memory/").content.decode()
        assert SECRET in memories  # the table's memory is listed
        private = x_world["private_memory"].pk
        assert client.get(f"/gm/memory/memory/{private}/change/").status_code == 404
    User = get_user_model()
    assert User.objects.filter(pk=co_gm.pk).exists()
