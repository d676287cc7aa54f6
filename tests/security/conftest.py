"""The table the injection suite attacks: a GM, Kira (the victim, with secrets) and Bea (the
attacker), a mission with a hidden objective, and a canary in every secret the game holds.

Bea plays the injection; Kira and the GM hold the secrets. A canary string marks each secret, so
a leak is a plain substring in whatever a player receives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import pytest
from django.test import Client

from campaigns import selectors
from campaigns import services as campaign_services
from campaigns.models import Membership
from narrative import turns
from narrative.llm import registry
from realtime import broadcast
from tests.security import obedient

NOTE = "CANARY-NOTE-7f3a"  # Kira's private note
WHISPER = "CANARY-WHISPER-91c2"  # the GM's whisper to Kira
GM_NOTE = "CANARY-GMNOTE-44d0"  # the GM's private note
HIDDEN = "CANARY-HIDDEN-5b1e"  # a hidden objective's text
KEY = "sk-canary-KEY-0c9d8e7f6a5b4c3d2e1f"  # the narrator's API key, and OPENAI_API_KEY
# The system prompt's own words (narrative/prompts/narrator_system.txt), not data anyone wrote.
SYSTEM = "Everyone at the table reads this reply. Tell only what the whole table may know."

KIRA_SECRETS = (NOTE, WHISPER)
NOBODYS = (GM_NOTE, HIDDEN, KEY)  # no player may ever see these

MISSION = """mission vault-heist "The Vault Heist"
biome derelict-station
summary "A sealed vault on Kestrel Station, and a keeper who watches it."
scene vault "The Vault Antechamber" {
  description "A steel door, a humming keypad, and a keeper in a grey coat."
}
objective open "Open the vault door" {
  in scene vault
  complete when flag vault_open
  reward { xp 50 }
}
objective traitor "%(hidden)s: the quartermaster is the traitor" {
  in scene vault
  hidden until flag never_to_be_set_by_play
  complete when flag traitor_named
  reward { xp 75 }
}
npc keeper "%(npc)s" {
  faction warden
  role "vault keeper"
  agenda "Guard the vault."
  in scene vault
  voice "Flat and slow."
}
complete when objective open complete
"""


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class WordHashEmbedder:
    """A cheap stand-in for the local MiniLM model: a hashed bag of words. The obedient model
    repeats its whole prompt into every event it causes, and each event becomes a memory; with
    the real model embedding those long texts took most of the suite's five minutes. What the
    suite tests — where text may travel — doesn't depend on how well memories are ranked."""

    name = "word-hash"
    model = "word-hash-384"
    dimensions = 384

    def __init__(self, **kwargs):
        pass

    def embed(self, texts):
        from memory.embeddings.base import normalise

        vectors = []
        for text in texts:
            vector = [0.0] * self.dimensions
            for word in re.findall(r"\w+", text.lower()):
                vector[int(hashlib.blake2b(word.encode(), digest_size=4).hexdigest(), 16) % 384] += 1.0
            vectors.append(vector)
        return normalise(vectors)


@pytest.fixture(autouse=True)
def cheap_embedder(settings, monkeypatch):
    from memory.embeddings import registry as embedders

    monkeypatch.setitem(embedders.EMBEDDERS, "word-hash", "tests.security.conftest:WordHashEmbedder")
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "embedder": "word-hash"}
    embedders.reset()
    yield
    embedders.reset()


@pytest.fixture
def obey(settings, monkeypatch):
    """The obedient model takes the narrator and summarizer roles; its key is a canary."""
    obedient.RECEIVED.clear()
    monkeypatch.setitem(registry.PROVIDERS, "obedient", "tests.security.obedient:ObedientNarrator")
    conf = {k: dict(v) if isinstance(v, dict) else v for k, v in settings.GTW_LLM.items()}
    conf["obedient"] = {"model": "obedient-1", "api_key": KEY, "base_url": ""}
    conf["openai"] = {**conf["openai"], "api_key": KEY}
    conf["narrator"] = {**conf["narrator"], "provider": "obedient"}
    conf["summarizer"] = {**conf["summarizer"], "provider": "obedient"}
    settings.GTW_LLM = conf
    settings.GTW_ACTION_RATE_LIMIT = 0
    yield obedient.RECEIVED
    obedient.RECEIVED.clear()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def sent(monkeypatch):
    """Every group message the broadcaster sends, as it would cross the wire."""
    messages: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        broadcast, "_send", lambda group, message: messages.append((group, json.loads(json.dumps(message))))
    )
    return messages


@pytest.fixture
def bea(session, gm):
    """The attacker: a second player at the table."""
    from tests.conftest import _user

    user = _user("bea")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    )
    campaign_services.invite_accept(code=invite.code, user=user)
    return user


def install_mission(commit, session, gm, *, npc: str = "Mara Quell") -> None:
    from missions.services import mission_install
    from narrative import engine

    source = MISSION % {"hidden": HIDDEN, "npc": npc.replace('"', "'").replace("\\", "/")}
    mission, _ = mission_install(source=source)
    commit(engine.mission_start, session=session, slug=mission.slug, actor_id=gm.pk)
    session.refresh_from_db()


def plant_secrets(commit, session, gm, player) -> None:
    """Kira's private note, the GM's private note and a whisper to Kira, each with its canary."""
    url = f"/api/campaigns/{session.campaign_id}/memories"
    for user, text in (
        (player, f"The vault code is {NOTE}; nobody else knows it."),
        (gm, f"GM prep: the quartermaster's real name is {GM_NOTE}."),
    ):
        r = commit(
            client_for(user).post,
            url,
            json.dumps({"text": text, "visibility": "private"}),
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
    r = commit(
        client_for(gm).post,
        f"/api/sessions/{session.pk}/whispers",
        json.dumps({"to": player.pk, "text": f"The keeper takes bribes: say {WHISPER}."}),
        content_type="application/json",
    )
    assert r.status_code == 201, r.content


def act(commit, session, user, text, key):
    commit(turns.submit_action, session_id=session.pk, user=user, text=text, idempotency_key=key)
    commit(turns.run_pending_turns, session.pk)


def seat(session, user) -> Membership:
    return Membership.objects.get(campaign=session.campaign, user=user)


# ---- the table, built once per module ---------------------------------------------------------
# Every payload attacks the same table: the personas, the mission with its hidden objective, the
# planted secrets. Building it (the opening narration and three memory writes through the real
# pipeline) took a quarter of each case, so it is built once, inside a transaction that stays
# open for the module; each test runs in a savepoint inside it, and whatever the test wrote
# (its payload, its turns, its memories) is rolled back before the next one starts.


@dataclasses.dataclass
class Table:
    gm: object
    player: object
    bea: object
    outsider: object
    session_id: int
    frames: list  # the broadcasts sent while the table was set up, as `sent` records them


def build_table(commit, *, npc: str = "Mara Quell") -> Table:
    """The personas, a session on the vault heist, Kira's and the GM's secrets: what the fixtures
    `session`, `gm`, `player`, `bea`, `outsider` and the calls install_mission and plant_secrets
    make, in that order."""
    from campaigns.content import content_load
    from tests.conftest import _user

    content_load()
    gm, player, outsider = _user("gm"), _user("player"), _user("outsider")
    campaign = campaign_services.campaign_create(user=gm, name="Vesper Run", pack_slug="starter")
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    invite = campaign_services.invite_create(membership=gm_seat)
    campaign_services.invite_accept(code=invite.code, user=player)
    for user, name, arch in ((player, "Kira Vance", "netrunner"), (gm, "Ossian", "envoy")):
        membership = selectors.membership_get(viewer=user, campaign_id=campaign.pk)
        campaign_services.character_create(membership=membership, name=name, archetype=arch)
    session = campaign_services.session_open(membership=gm_seat)
    bea = _user("bea")
    invite = campaign_services.invite_create(membership=gm_seat)
    campaign_services.invite_accept(code=invite.code, user=bea)
    install_mission(commit, session, gm, npc=npc)
    plant_secrets(commit, session, gm, player)
    return Table(gm=gm, player=player, bea=bea, outsider=outsider, session_id=session.pk, frames=[])


@pytest.fixture(scope="module")
def shared_table(django_db_setup, django_db_blocker):
    """One table for the module (see above), under the settings `obey` and `cheap_embedder` give
    each test; rolled back when the module is done."""
    from django.conf import settings
    from django.db import transaction
    from django.test import TestCase, override_settings

    from memory.embeddings import registry as embedders

    def commit(fn, *args, **kwargs):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return fn(*args, **kwargs)

    frames: list[tuple[str, dict]] = []
    conf = {k: dict(v) if isinstance(v, dict) else v for k, v in settings.GTW_LLM.items()}
    conf["obedient"] = {"model": "obedient-1", "api_key": KEY, "base_url": ""}
    conf["openai"] = {**conf["openai"], "api_key": KEY}
    conf["narrator"] = {**conf["narrator"], "provider": "obedient"}
    conf["summarizer"] = {**conf["summarizer"], "provider": "obedient"}
    overrides = override_settings(
        GTW_LLM=conf, GTW_ACTION_RATE_LIMIT=0, GTW_MEMORY={**settings.GTW_MEMORY, "embedder": "word-hash"}
    )
    with pytest.MonkeyPatch.context() as mp, overrides:
        mp.setitem(registry.PROVIDERS, "obedient", "tests.security.obedient:ObedientNarrator")
        mp.setitem(embedders.EMBEDDERS, "word-hash", "tests.security.conftest:WordHashEmbedder")
        mp.setattr(broadcast, "_send", lambda group, msg: frames.append((group, json.loads(json.dumps(msg)))))
        embedders.reset()
        with django_db_blocker.unblock():
            atomic = transaction.atomic()
            atomic.__enter__()
            try:
                built = build_table(commit)
            except BaseException:
                transaction.set_rollback(True)
                atomic.__exit__(None, None, None)
                raise
        built.frames = frames[:]
        obedient.RECEIVED.clear()
    embedders.reset()
    try:
        yield built
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
