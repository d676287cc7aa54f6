"""The outsider is refused on every page and API operation of a campaign they are not in.

Walks every URL the site serves (Django's resolver, so a new view is swept the day it lands)
and every operation of the OpenAPI schema, fills in the ids of a campaign the outsider isn't in
(party session, stage session, fireteam, alliance, a private memory, an action), and sends a
*valid* body built from the operation's own schema: validation passes, so what answers is the
authorisation check. A refusal is 404 (no existence leak) or 403; the few operations that are
global by design (your own campaign list, creating your own campaign, the content catalogue)
may answer, but never with anything from the campaign. Anonymous callers get 401 or the login
page. Every websocket route closes with 4403. A player sees nothing of another player's private
memory on any of these either.

"The outsider" is two personas: a user with no campaign, and "any signed-in user" — a GM of some
other campaign (anyone can create one; issue 11). Running a campaign of one's own opens nothing
of this one, and reads no mission source and installs no content either.
"""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from campaigns import selectors, services
from campaigns.stage import services as stage_services
from gtw_site.api import api

SECRET = "the-outsider-must-never-read-this"
PRIVATE = "only-kira-knows-the-vault-code-4471"
# Only in vesper-relay's source (a hidden objective's trigger): never in the public catalogue.
MISSION_SOURCE = "met_ameline"

# Operations that are not about one campaign: they may answer an outsider (with their own data).
GLOBAL_API = {
    ("get", "/api/campaigns"),
    ("post", "/api/campaigns"),
    ("post", "/api/campaigns/import"),  # imports a file into a new campaign of one's own
    ("post", "/api/tokens"),
    ("get", "/api/missions"),
    ("get", "/api/decks"),
    ("get", "/api/personalities"),
}
# Pages that aren't about one campaign (the outsider's own dashboard, sign-in, content install…).
GLOBAL_PAGES = {
    "",
    "healthz",
    "favicon.ico",
    "campaigns/new",
    "campaigns/join",
    "campaigns/import",
    "account/tokens/",
    "account/calendar/",
    # The operator's Prometheus scrape: no campaign data, a bearer token or loopback only (the test
    # client is loopback); tests/gtw_site/test_metrics.py refuses everyone else.
    "metrics",
}


@pytest.fixture(params=["no-campaign", "gm-elsewhere"])
def stranger(request, content, outsider):
    """The outsider, as a user in no campaign, or as the GM of a campaign of their own."""
    if request.param == "gm-elsewhere":
        services.campaign_create(user=outsider, name="Their own sandbox", pack_slug="starter")
    return outsider


@pytest.fixture
def world(db, content, campaign, characters, session, gm, player, outsider):
    from campaigns.models import Alliance, Fireteam
    from memory import services as memory_services
    from memory.models import MemoryImport
    from narrative import turns

    campaign.name = f"Campaign {SECRET}"
    campaign.save(update_fields=["name"])
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    player_seat = selectors.membership_get(viewer=player, campaign_id=campaign.pk)
    action = turns.submit_action(
        session_id=session.pk, user=player, text=f"I whisper {SECRET}", idempotency_key="sweep"
    )
    stage = stage_services.stage_open(membership=gm_seat, title=f"Stage {SECRET}")
    fireteam = Fireteam.objects.create(campaign=campaign, name="Red", voice_room_id="sweep-red")
    alliance = Alliance.objects.create(campaign=campaign, name="Pact")
    memory = memory_services.memory_record(membership=player_seat, text=PRIVATE, visibility="private")[0]
    upload = MemoryImport.objects.create(campaign=campaign, created_by=player, filename=f"{SECRET}.jsonl")
    from campaigns.scheduling import services as scheduling

    schedule = scheduling.schedule_create(
        membership=gm_seat,
        title=f"Sessions {SECRET}",
        start="2027-01-07T19:30",
        time_zone="Europe/Berlin",
        duration_minutes=180,
        rrule="FREQ=WEEKLY",
    )
    from narrative import tablesafety

    line = tablesafety.table_line_add(
        membership=player_seat, kind="line", text=f"line {SECRET}", private=True
    )
    from campaigns.safety import services as safety_services

    held = safety_services.moderate(campaign=campaign, text=f"kys {SECRET}", source="action")
    review, _ = safety_services.hold(
        campaign=campaign, session=session, source="action", text=f"kys {SECRET}", decision=held, key="sweep"
    )
    from gtw_site.providers import services as provider_services

    stored_key = provider_services.key_create(
        label=f"key {SECRET}", plain="sk-sweep-0000000000000000", user=gm
    )
    from media.images import services as image_services

    picture, _ = image_services.image_request(
        campaign=campaign, kind="scene", session=session, subject=SECRET
    )
    return {
        "campaign_id": campaign.pk,
        "session_id": session.pk,
        "image_id": picture.pk,  # a picture of the campaign (media.images)
        "action": "hide",  # a GM's button on a picture (/images/<id>/<action>)
        "line_id": line.pk,  # the player's private line (narrative.tablesafety)
        "key_id": stored_key.pk,  # a provider key stored by the GM (gtw_site.providers)
        "item_id": review.pk,  # a held item in the GM's review queue (campaigns.safety)
        "stage_id": stage.pk,
        "fireteam_id": fireteam.pk,
        "alliance_id": alliance.pk,
        "memory_id": memory.pk,
        "action_seq": action.events[0].seq,
        "seq": action.events[0].seq,  # an event of the session (e.g. the dice-verify route)
        "import_id": upload.pk,  # the player's memory import
        "schedule_id": schedule.pk,  # the campaign calendar's schedule
        "username": player.username,
        "slug": "vesper-relay",
        "code": "not-an-invite",  # an invite code is the capability itself: a wrong one is a 404
        "key": "0" * 64,  # a spoken sentence's content address (media.speech, /speech/<session>/<key>)
    }


def _fill(path: str, ids: dict) -> str:
    def value(name: str) -> str:
        if name == "session_id" and "stage" in path:
            return str(ids["stage_id"])
        return str(ids[name])

    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), path)  # Django patterns
    return re.sub(r"\{(\w+)\}", lambda m: value(m.group(1)), path)  # OpenAPI paths


def _example(schema: dict, spec: dict, ids: dict, name: str = ""):
    """A valid instance of `schema`, with real ids where a field names one."""
    if "$ref" in schema:
        return _example(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], spec, ids, name)
    if "anyOf" in schema:
        return _example(next(s for s in schema["anyOf"] if s.get("type") != "null"), spec, ids, name)
    known = _known(ids)
    if name in known and known[name] is not None:
        return known[name]
    return _shape(schema, spec, ids, known)


def _known(ids: dict) -> dict:
    return {
        "campaign": ids["campaign_id"],
        "campaign_id": ids["campaign_id"],
        "fireteam": ids["fireteam_id"],
        "to": ids.get("player_id"),
        "username": ids["username"],
        "slug": ids["slug"],
        "text": "I look around",
        "query": "vault code",
        "idempotency_key": "sweep-1",
    }


def _shape(schema: dict, spec: dict, ids: dict, known: dict):
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        # The required fields, and the optional ones we have a real value for (a schema may
        # need "one of these two").
        props = schema.get("properties", {})
        wanted = set(schema.get("required", [])) | {k for k in props if known.get(k) is not None}
        return {k: _example(v, spec, ids, k) for k, v in props.items() if k in wanted}
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return "x" * max(1, schema.get("minLength", 1))


def _operations():
    spec = api.get_openapi_schema()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method, path, op, spec


def _pages():
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern)

    for route in walk(get_resolver().url_patterns):
        if route.startswith(("admin/", "gm/", "accounts/", "api/", "static/", "invite/")) or "^" in route:
            continue  # admin is staff-only (gm/: tests/gtw_site/test_gm_admin_sweep.py), allauth is
            # sign-in, the API is swept by operation
        if route in GLOBAL_PAGES:
            continue
        yield route


def _call(client: Client, method: str, url: str, body=None):
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(url, data, content_type="application/json")


def _assert_no_leak(response, where: str):
    text = response.content.decode(errors="replace")
    assert SECRET not in text, f"{where} leaked the campaign to an outsider"
    assert PRIVATE not in text, f"{where} leaked a private memory"
    assert MISSION_SOURCE not in text, f"{where} leaked a mission's source"


def test_every_api_operation_refuses_the_outsider(world, stranger, outsider_client, player):
    ids = {**world, "player_id": player.pk}
    swept = 0
    for method, path, op, spec in _operations():
        url = _fill(path, ids)
        content = op.get("requestBody", {}).get("content", {})
        if method == "get":
            url += f"?campaign={ids['campaign_id']}" if "campaign" in str(op.get("parameters")) else ""
        if "multipart/form-data" in content:  # the JSONL import: a real file
            line = json.dumps({"text": "a note", "type": "declarative"}).encode() + b"\n"
            upload = SimpleUploadedFile("notes.jsonl", line, content_type="application/jsonl")
            response = outsider_client.post(url, {"file": upload})
        else:
            schema = content.get("application/json", {}).get("schema")
            body = _example(schema, spec, ids) if schema is not None else None
            response = _call(outsider_client, method, url, body)
        where = f"{method.upper()} {url}"
        _assert_no_leak(response, where)
        if (method, path) not in GLOBAL_API:
            answered = f"{response.status_code} {response.content[:300]!r}"
            assert response.status_code in (403, 404), f"{where} answered {answered}"
        swept += 1
    assert swept >= 50  # the whole API, not a handful


def test_every_page_refuses_the_outsider_and_sends_strangers_to_sign_in(world, stranger, outsider_client):
    anonymous = Client()
    swept = 0
    for route in _pages():
        url = "/" + _fill(route, world)
        for method in ("get", "post"):
            response = getattr(outsider_client, method)(url)
            where = f"{method.upper()} {url}"
            _assert_no_leak(response, where)
            assert response.status_code in (403, 404, 405), f"{where} answered {response.status_code}"
            stranger = getattr(anonymous, method)(url)
            _assert_no_leak(stranger, f"anonymous {where}")
            assert stranger.status_code in (302, 401, 403, 404, 405), f"anonymous {where}"
            if stranger.status_code == 302:
                assert "/accounts/login/" in stranger["Location"]
        swept += 1
    assert swept >= 20


def test_another_player_never_reads_a_private_memory(world, content, campaign, gm, player):
    """A second player, a real member, goes through every GET of the API and every page."""
    from django.contrib.auth import get_user_model

    rival = get_user_model().objects.create_user("rival", password="pw-long-enough")
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    services.invite_accept(code=services.invite_create(membership=gm_seat).code, user=rival)
    client = Client()
    client.force_login(rival)
    for method, path, _op, _spec in _operations():
        if method != "get":
            continue
        url = _fill(path, {**world, "player_id": player.pk})
        text = client.get(url).content.decode(errors="replace")
        assert PRIVATE not in text, f"GET {url} showed another player's private memory"
    for route in _pages():
        url = "/" + _fill(route, world)
        assert PRIVATE not in client.get(url).content.decode(errors="replace"), url
    found = _call(client, "post", "/api/memory/query", {"campaign": campaign.pk, "query": "vault code"})
    assert found.status_code == 200 and PRIVATE not in found.content.decode()


@pytest.mark.django_db(transaction=True)
def test_every_socket_closes_on_the_outsider_with_4403(world, stranger):
    """Every websocket route (realtime.routing), for the outsider and for an anonymous caller."""
    from asgiref.sync import async_to_sync
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import AnonymousUser

    from realtime.routing import websocket_urlpatterns

    app = URLRouter(websocket_urlpatterns)
    ids = {**world, "name": "notes"}
    routes = ["/" + _fill(str(p.pattern), ids) for p in websocket_urlpatterns]
    assert len(routes) >= 3

    async def knock(url, user):
        comm = WebsocketCommunicator(app, url)
        comm.scope["user"] = user
        connected, _ = await comm.connect()
        closed = await comm.receive_output(timeout=5) if connected else {"code": "refused"}
        await comm.disconnect()
        return closed

    for url in routes:
        for user in (stranger, AnonymousUser()):
            closed = async_to_sync(knock)(url, user)
            assert closed.get("code") == 4403, f"{url} as {user}: {closed}"


def test_a_gm_of_another_campaign_reads_no_mission_source_and_installs_nothing(world, outsider):
    """issue 11 hole 1: "GM of any campaign" was enough to read every mission's hidden source and
    to replace a mission or a deck for every campaign on the server. Real, valid bodies here (the
    operation sweep's are minimal), so only the permission check stands in the way."""
    from pathlib import Path

    from missions.models import Mission
    from narrative.models import StoryDeck

    services.campaign_create(user=outsider, name="Their own sandbox", pack_slug="starter")
    client = Client()
    client.force_login(outsider)
    for slug in Mission.objects.values_list("slug", flat=True).distinct():
        response = client.get(f"/api/missions/{slug}")
        assert response.status_code == 403, f"GET /api/missions/{slug} answered {response.status_code}"
        assert "source" not in response.json()
    starter = Path(__file__).resolve().parent.parent / "content" / "packs" / "starter"
    source = (starter / "missions" / "vesper-relay.mission").read_text()
    hijack = source.replace('"The Silence at Vesper Relay"', '"Vesper Relay, rewritten"')
    assert _call(client, "post", "/api/missions", {"source": hijack}).status_code == 403
    assert not Mission.objects.filter(title="Vesper Relay, rewritten").exists()
    StoryDeck.objects.filter(slug="reach-twists").update(sha256="before")
    deck = json.loads((starter / "decks" / "reach-twists.json").read_text())
    assert _call(client, "post", "/api/decks", deck).status_code == 403
    assert StoryDeck.objects.get(slug="reach-twists").sha256 == "before"
