"""Helpers for the engine tests: a session's log and its event types, the replay check, a mission
installed as an older compiler accepted it, and a mission that opens with an inciting beat."""

from __future__ import annotations

import json

from campaigns import state as reducer
from campaigns.events import to_record
from campaigns.models import Event
from missions.dsl.ast import content_hash
from missions.models import Mission
from missions.services import mission_install


def log(session):
    return list(Event.objects.filter(session=session).order_by("seq"))


def types(session):
    return [e.type for e in log(session)]


def assert_replays(session):
    session.refresh_from_db()
    assert reducer.replay(to_record(e) for e in log(session)) == session.state


def install_legacy(source: str, edit) -> Mission:
    """Install `source`, then change its AST as an older compiler might have accepted it."""
    mission, _ = mission_install(source=source)
    ast = json.loads(json.dumps(mission.ast))
    edit(ast)
    Mission.objects.filter(pk=mission.pk).update(ast=ast, content_hash=content_hash(ast))
    return Mission.objects.get(pk=mission.pk)


# A mission that opens with rules for the inciting beat.
OPENER = """mission opener "Opener" biome derelict-station summary "s"
scene a "A"
objective greet "Greet" { complete when beat inciting and flag hello }
twist early { at beat inciting
  when flag hello
  text "An early twist." }
twist omen { at beat inciting
  text "An omen." }
complete when flag done
"""
