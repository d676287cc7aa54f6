"""`gtw bench playtest --seeds N`: scripted playtests of the starter missions (issue 13, fair stakes).

A seeded bot party of three characters plays EACH mission of the starter pack to its end, N seeds
per mission, through the HTTP API (`POST /api/sessions/{id}/actions` as each player, the GM's
`POST /api/sessions/{id}/mission`, `GET /api/sessions/{id}/game`) and the real turn pipeline
with the offline narrator (the default product: no key, no GPU). The bot is a sensible player:
it pursues the open objective with an action that fits it (the skill its `complete when` asks
for, as a designer who knows the mission would), now and then asks a question or talks to an NPC
present, and takes turns round the table. It reads the mission's rules from the database to pick
its approach, never the dice.

Reported per mission: turns to finish (p50 / max), success rate, and the fewest actions of their
own a player had had when a mission was lost — the fair-chance rule says that is at least
FAIR_ACTIONS (8). Not a test (the test suite runs a short version: tests/narrative/
test_playtest_fairness.py); prints a table, a final JSON line, and (unless --no-write) its
section of docs/BENCHMARKS.md.

Runs in its own database (gtw_bench_playtest in var/bench's embedded PostgreSQL), with tasks run
inline (gtw_site.test_settings), so it needs no running server.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gtw_site.bench.common import BASE_DIR, DATA_DIR, DOC, UNSET_ENV, machine_text, update_section

FAIR_ACTIONS = 8  # the fewest actions of their own every player must have had before a loss
PARTY = (("Kira Vance", "netrunner"), ("Bram Holt", "vanguard"), ("Sela Quill", "envoy"))
DB_NAME = "gtw_bench_playtest"
MAX_TURNS = 90  # a mission still running after this many actions counts as unfinished

SECTION = "## gtw bench playtest"
HOW_MEASURED = """\
How measured: `gtw bench playtest --seeds N` — a seeded bot party of three characters plays each
starter mission to its end, N seeds per mission, through the HTTP API and the real turn pipeline
with the offline narrator (tasks inline, its own database). The bot pursues the open objective
with a fitting action (the skill the objective's `complete when` names), asks a question about one
turn in seven and talks to an NPC present about one in ten, round the table. **turns** counts every
action (questions included) until the mission completes or fails (p50 / max); **success** is the
share completed; **min own actions before a loss** is the fewest actions any player had taken
when a mission was lost ("—" when none was lost). The fair-chance rule: at least 8."""
TABLE_HEADER = (
    "| mission | seeds | success | turns p50 / max | losses | min own actions before a loss "
    "| machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---|---:|---:|---|---:|---:|---|---|---|"
)

# ---- the bot's phrasebook: one approach per skill or attribute a mission's checks name ----------

APPROACHES: dict[str, tuple[str, ...]] = {
    "piloting": ("I pilot our shuttle in close to {goal}", "I steer the skiff through the debris to {goal}"),
    "tech": ("I hack the nearest control panel to {goal}", "I bypass the lockout on the console to {goal}"),
    "hacking": ("I hack the nearest control panel to {goal}", "I decrypt the access codes to {goal}"),
    "engineering": ("I reroute auxiliary power to {goal}", "I repair the burnt-out couplings to {goal}"),
    "perception": (
        "I search the area carefully for anything hidden",
        "I inspect every crate and locker here",
    ),
    "investigation": (
        "I investigate the logs and tracks to {goal}",
        "I search the wreckage for clues to {goal}",
    ),
    "wits": ("I study the old maps and markings to {goal}", "I investigate the tracks to {goal}"),
    "survival": (
        "I track the old trail through the terrain to {goal}",
        "I study the ground for a safe path to {goal}",
    ),
    "navigation": (
        "I navigate by the beacon's pulse to {goal}",
        "I plot a course through the storm to {goal}",
    ),
    "might": ("I force the jammed mechanism open to {goal}", "I haul the heavy gate aside to {goal}"),
    "athletics": ("I climb down the hanging cables to {goal}", "I leap across the gap to {goal}"),
    "agility": ("I climb down the hanging vines to {goal}", "I swing across on a cable to {goal}"),
    "insight": (
        "I study the man's face for the lie behind his words",
        "I investigate who really paid for this job",
    ),
    "persuasion": (
        "I persuade them to settle it our way: {goal}",
        "I convince everyone to agree on a plan to {goal}",
    ),
    "presence": (
        "I persuade the others to settle it our way: {goal}",
        "I convince them to put their cards on the table: {goal}",
    ),
    "negotiation": ("I negotiate a fair deal with them to {goal}", "I bargain hard to {goal}"),
    "intimidation": ("I threaten them until they back down: {goal}", "I intimidate them to {goal}"),
    "medicine": ("I treat everyone's lungs and fit the masks to {goal}", "I bandage the wounded to {goal}"),
    "stealth": ("I sneak past the sentries to {goal}", "I creep through the shadows to {goal}"),
}
QUESTIONS = (
    "What do we know about this place?",
    "What are our objectives right now?",
    "Where does that passage lead?",
    "What made these marks, and how fresh are they?",
    "How much time do we have left?",
)
TALK = (
    "{npc}, who are you, and what happened here?",
    "{npc}, what do you want from us?",
    "{npc}, what do you know about {goal}?",
)


def _skills(cond: dict | None) -> list[str]:
    """The skills or attributes a condition's successful checks name (in order)."""
    if not isinstance(cond, dict):
        return []
    if cond.get("op") in ("and", "or"):
        return [s for a in cond["args"] for s in _skills(a)]
    if cond.get("op") == "check" and cond.get("result") in ("succeeded", "critically_succeeded"):
        return [cond["skill"].lower()] if cond.get("skill") else ["tech"]
    return []


def _goal(text: str) -> str:
    """An objective as the end of "... to <goal>": "Restore power to the relay core" -> "restore
    power to the relay core"."""
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]


class Bot:
    """A sensible player for one mission: reads the mission's rules, never the dice."""

    def __init__(self, ast: dict, rng: random.Random):
        self.ast = ast
        self.rng = rng
        self.objectives = {o["id"]: o for o in ast["objectives"]}

    def _approach(self, objective: dict, skills: list[str]) -> str:
        known = [s for s in skills if s in APPROACHES]
        skill = self.rng.choice(known) if known else "investigation"
        return self.rng.choice(APPROACHES[skill]).format(goal=_goal(objective["text"]))

    def action(self, view: dict) -> tuple[str, str]:
        """(kind, text): "question", "talk" or "pursue", and the action's words."""
        open_ = [o for o in view["objectives"] if o["status"] == "active"]
        here = view["scene"]["id"]
        ready = [o for o in open_ if not o["blocked_by"] and o["scene"] in (None, here)]
        target = ready[0] if ready else (open_[0] if open_ else None)
        goal = _goal(target["text"]) if target else "this place"
        roll = self.rng.random()
        if roll < 1 / 7:
            return "question", self.rng.choice(QUESTIONS)
        if roll < 1 / 7 + 0.1 and view["npcs"]:
            npc = self.rng.choice(view["npcs"])["name"]
            return "talk", self.rng.choice(TALK).format(npc=npc, goal=goal)
        if target is None or not ready:
            # Nothing to do here yet: look for what is hidden (a hidden objective's reveal).
            hidden = [
                o for o in self.ast["objectives"] if o["id"] not in {v["id"] for v in view["objectives"]}
            ]
            skills = [s for o in hidden for s in _skills(o.get("hidden_until"))]
            fake = {"text": target["text"] if target else "find a way forward"}
            return "pursue", self._approach(fake, skills or ["investigation"])
        skills = _skills(self.objectives[target["id"]].get("complete_when"))
        # An objective hidden until a check is revealed by the same kind of search.
        return "pursue", self._approach(target, skills)


@dataclass
class Run:
    mission: str
    seed: int
    outcome: str = "unfinished"  # complete | failed | unfinished
    turns: int = 0
    own: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    ended_by: str | None = None

    @property
    def min_own(self) -> int:
        return min(self.own.values()) if self.own else 0


# ---- one playtest: HTTP calls through `call(client, method, path, payload)` -------------------


def play(
    *,
    call: Callable[[Any, str, str, dict | None], tuple[int, Any]],
    session_id: int,
    players: list[tuple[Any, str]],
    ast: dict,
    seed: int,
    max_turns: int = MAX_TURNS,
) -> Run:
    """Play the session's running mission to its end. `players`: (HTTP client, character name),
    in turn order; `call` sends one request and returns (status, JSON)."""
    rng = random.Random(f"gtw-playtest:{ast['slug']}:{seed}")
    bot = Bot(ast, rng)
    run = Run(ast["slug"], seed, own={name: 0 for _, name in players})
    for turn in range(max_turns):
        client, name = players[turn % len(players)]
        status, game = call(client, "GET", f"/api/sessions/{session_id}/game", None)
        if status != 200:
            raise RuntimeError(f"GET game answered {status}: {game}")
        view = game["mission"]
        if view is None or view["status"] != "active":
            break
        kind, text = bot.action(view)
        key = f"pt-{seed}-{turn}-{uuid.uuid4().hex[:8]}"
        status, body = call(
            client, "POST", f"/api/sessions/{session_id}/actions", {"text": text, "idempotency_key": key}
        )
        if status != 202:
            raise RuntimeError(f"POST action answered {status}: {body}")
        run.turns += 1
        run.own[name] += 1
        run.kinds[kind] = run.kinds.get(kind, 0) + 1
    status, game = call(players[0][0], "GET", f"/api/sessions/{session_id}/game", None)
    view = game["mission"] or {}
    if view.get("status") in ("complete", "failed"):
        run.outcome = view["status"]
        run.ended_by = (view.get("ending") or {}).get("text")
    return run


def new_party(*, slug: str, tag: str) -> tuple[Any, list[Any], Any]:
    """A campaign of the starter pack with a GM and three players (each with a character), a
    session open. Returns (gm, [players], session). The GM then starts `slug` over the API."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    from campaigns import selectors, services

    def user(name: str):
        person = get_user_model().objects.create_user(
            username=f"{name}-{tag}", email=f"{name}-{tag}@example.com"
        )
        EmailAddress.objects.create(user=person, email=person.email, primary=True, verified=True)
        return person

    gm = user("gm")
    campaign = services.campaign_create(user=gm, name=f"Playtest {slug} {tag}", pack_slug="starter")
    gm_membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    players = []
    for name, archetype in PARTY:
        person = user(name.split()[0].lower())
        invite = services.invite_create(membership=gm_membership)
        services.invite_accept(code=invite.code, user=person)
        membership = selectors.membership_get(viewer=person, campaign_id=campaign.pk)
        services.character_create(membership=membership, name=name, archetype=archetype)
        players.append(person)
    session = services.session_open(membership=gm_membership)
    return gm, players, session


def playtest(*, slug: str, seed: int, call, client_for, tag: str | None = None) -> Run:
    """Set up a party, have the GM start mission `slug` over the API, play it to the end."""
    from narrative.engine import mission_ast

    gm, people, session = new_party(slug=slug, tag=tag or f"{slug}-{seed}-{uuid.uuid4().hex[:6]}")
    gm_client = client_for(gm)
    status, game = call(gm_client, "POST", f"/api/sessions/{session.pk}/mission", {"slug": slug})
    if status != 200:
        raise RuntimeError(f"starting {slug} answered {status}: {game}")
    session.refresh_from_db()
    ast = mission_ast(session.state["mission"]["hash"])
    players = [(client_for(p), name) for p, (name, _) in zip(people, PARTY, strict=True)]
    return play(call=call, session_id=session.pk, players=players, ast=ast, seed=seed)


def starter_slugs() -> list[str]:
    """The starter pack's missions (installed by `content_load`)."""
    from missions.models import Mission

    return sorted(set(Mission.objects.filter(pack__slug="starter").values_list("slug", flat=True)))


# ---- the numbers ------------------------------------------------------------------------------


def summarise(runs: list[Run]) -> dict[str, dict]:
    by: dict[str, list[Run]] = {}
    for run in runs:
        by.setdefault(run.mission, []).append(run)
    result = {}
    for slug, group in sorted(by.items()):
        losses = [r for r in group if r.outcome == "failed"]
        finished = [r.turns for r in group if r.outcome != "unfinished"]
        result[slug] = {
            "seeds": len(group),
            "success_rate": round(sum(r.outcome == "complete" for r in group) / len(group), 3),
            "losses": len(losses),
            "unfinished": sum(r.outcome == "unfinished" for r in group),
            "turns_p50": statistics.median(finished) if finished else None,
            "turns_max": max(finished) if finished else None,
            "min_own_actions_before_loss": min((r.min_own for r in losses), default=None),
            "fail_reasons": sorted({r.ended_by for r in losses if r.ended_by}),
        }
    return result


def fair(summary: dict[str, dict]) -> bool:
    return all(
        s["min_own_actions_before_loss"] is None or s["min_own_actions_before_loss"] >= FAIR_ACTIONS
        for s in summary.values()
    )


def table_row(slug: str, s: dict, machine: str, date: str, command: str) -> str:
    turns = f"{s['turns_p50']} / {s['turns_max']}" if s["turns_p50"] is not None else "—"
    least = s["min_own_actions_before_loss"]
    return (
        f"| {slug} | {s['seeds']} | {s['success_rate'] * 100:.0f} % | {turns} | {s['losses']} "
        f"| {'—' if least is None else least} | {machine} | {date} | `{command}` |"
    )


# ---- `gtw bench playtest` -----------------------------------------------------------------------


def setup() -> None:
    """Django on var/bench's embedded PostgreSQL, database gtw_bench_playtest (created and
    migrated here), tasks inline and the offline narrator (gtw_site.test_settings), packs loaded."""
    os.environ["GTW_DATA_DIR"] = str(DATA_DIR)
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "gtw_site.test_settings"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    import psycopg

    from gtw_site import embedded

    pg = embedded.start_postgres(DATA_DIR)
    with psycopg.connect(pg.url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    os.environ["GTW_DB_NAME"] = DB_NAME
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from campaigns.content import content_load

    call_command("migrate", interactive=False, verbosity=0)
    content_load()
    # Bots act as fast as the turns answer: the per-player action limit is for people.
    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "action": (100_000, 30, "actions")}
    # Django's test client speaks as host "testserver" (the requests never leave this process).
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


def http_call(client, method: str, path: str, payload: dict | None) -> tuple[int, Any]:
    """One request through Django's full HTTP stack (middleware, auth, the Ninja API)."""
    if method == "GET":
        response = client.get(path)
    else:
        response = client.post(path, data=json.dumps(payload or {}), content_type="application/json")
    try:
        body = response.json()
    except ValueError:
        body = response.content[:200]
    return response.status_code, body


def logged_in(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def main(args) -> int:
    seeds = args.seeds
    if seeds < 1:
        sys.stderr.write("gtw bench playtest: --seeds must be at least 1\n")
        return 2
    load = os.getloadavg()[0]
    setup()
    slugs = starter_slugs()
    print(f"gtw bench playtest: {len(slugs)} missions x {seeds} seeds, a party of {len(PARTY)}", flush=True)
    started = time.perf_counter()
    runs = []
    for slug in slugs:
        for seed in range(seeds):
            run = playtest(slug=slug, seed=seed, call=http_call, client_for=logged_in)
            runs.append(run)
            print(
                f"  {slug} seed {seed}: {run.outcome} after {run.turns} turns "
                f"(own actions {sorted(run.own.values())}, {run.kinds})",
                flush=True,
            )
    summary = summarise(runs)
    print(f"{'mission':<18}{'success':>9}{'turns p50':>11}{'max':>6}{'losses':>8}{'min own':>9}")
    for slug, s in summary.items():
        least = s["min_own_actions_before_loss"]
        print(
            f"{slug:<18}{s['success_rate'] * 100:>8.0f}%{s['turns_p50'] or 0:>11}{s['turns_max'] or 0:>6}"
            f"{s['losses']:>8}{'—' if least is None else least:>9}"
        )
    ok = fair(summary)
    print(f"fair chance (every loss after >= {FAIR_ACTIONS} own actions): {'yes' if ok else 'NO'}")
    wall = time.perf_counter() - started
    if not args.no_write:
        machine = machine_text(load)
        date = datetime.now(UTC).strftime("%Y-%m-%d")
        command = f"gtw bench playtest --seeds {seeds}"
        text = DOC.read_text() if DOC.exists() else ""
        for slug, s in summary.items():
            row = table_row(slug, s, machine, date, command)
            text = update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=2)
        DOC.write_text(text)
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(
        json.dumps(
            {
                "bench": "playtest",
                "seeds": seeds,
                "party": len(PARTY),
                "fair_actions": FAIR_ACTIONS,
                "fair": ok,
                "wall_s": round(wall, 1),
                "missions": summary,
            }
        )
    )
    return 0 if ok else 1
