"""The batch turn of a stage session: ONE GM summary for a whole beat window.

schedule_batches (narrative.listeners, when a BatchWindowClosed commits)
    → run_pending_batches (a django-q2 task; inline in tests): the session's runner (runner.py,
      its own advisory-lock namespace) answers each closed, unsummarised window, oldest first:

1. per action, the game decides whether it is risky — a game rule, narrative.intent.plan_check
   (the judgement the offline narrator makes too), whichever provider narrates — and rolls a
   `rules_skill_check` through narrative.tools.dispatch: a DiceRolled event per risky action,
   keyed by the action so a re-run reuses the roll instead of rolling again;
2. the narrator (role "narrator", any provider) receives the batch grouped by team, with each
   check's outcome, and writes ONE summary, streamed as deltas under the BatchWindowClosed entry
   (its seq is the stream's id); the offline provider writes it with offline_batch;
3. one append: the Narration (payload `batch` = the window) and the director's step, then a
   SquadSummary per fireteam addressed (Event.audience) to that fireteam's members only —
   [commit] → broadcast to the session, a notice to each `team.<id>` group, the new roster.

A crash loses nothing: the window stays in state.stage.unsummarised until its Narration lands,
and the next close (or `schedule_batches`) re-runs it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.db import transaction

from campaigns import events
from campaigns.models import Character, Event, FireteamMember, PlaySession
from gtw_site import jobs
from gtw_site.providers import ProviderError
from gtw_site.trace import mark
from narrative import dice_secrets, engine, intent, leakguard, prompts, tablesafety, tools
from narrative.llm import registry
from narrative.llm.base import ChatRequest, ToolCall
from narrative.llm.offline import batch as offline_batch
from narrative.turns import runner
from narrative.turns.context import game_context, personality_context
from narrative.turns.party import recap
from narrative.turns.prompts import batch_messages, prompt_template
from realtime import broadcast

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x67747702  # next to the party turn's 0x67747701
MAX_SUMMARY_WORDS = 450
FALLBACK_PROVIDER = "offline-fallback"


def schedule_batches(session_id: int) -> None:
    mark("batch.scheduled")
    jobs.enqueue(
        "narrative.turns.run_pending_batches",
        session_id,
        task_name=f"stage-batches-{session_id}",
        group="turns",
    )


def _unsummarised(session: PlaySession) -> list[dict]:
    return ((session.state or {}).get("stage") or {}).get("unsummarised") or []


def run_pending_batches(session_id: int) -> int:
    """Summarise every closed window of the session that has no summary yet. Returns how many."""
    return runner.run(BatchTurns(session_id))


class BatchTurns(runner.Turns):
    """The session's closed, unsummarised beat windows (state.stage.unsummarised)."""

    lock_namespace = LOCK_NAMESPACE
    crash_message = "batch turn for window %s of session %s crashed"

    def __init__(self, session_id: int) -> None:
        super().__init__(session_id)
        self.failed: set[int] = set()  # once per run: never spin on a window that keeps failing

    def _todo(self, session: PlaySession) -> list[dict]:
        return [w for w in _unsummarised(session) if w["n"] not in self.failed]

    def next(self, session: PlaySession) -> dict | None:
        todo = self._todo(session)
        return todo[0] if todo else None

    def key(self, window: dict) -> int:
        return window["n"]

    def run(self, session: PlaySession, window: dict) -> None:
        run_batch(session, window)

    def crashed(self, session: PlaySession, window: dict, exc: Exception) -> None:
        self.failed.add(window["n"])

    def more(self) -> bool:
        return bool(self._todo(PlaySession.objects.only("state").get(pk=self.session_id)))


# ---- 1. the per-action checks ---------------------------------------------------------------


def _roll_checks(session: PlaySession, seqs: list[int]) -> tuple[list[dict[str, Any]], list[int]]:
    """One item per action of the window, each with its check's result (or None). Rolls go
    through the narrator tools' own dispatch, so they are validated, seeded and replayable."""
    actions = list(
        Event.objects.filter(session=session, seq__in=seqs, type="Action")
        .select_related("actor")
        .order_by("seq")
    )
    characters = {c.owner_id: c for c in Character.objects.filter(campaign_id=session.campaign_id)}
    scene = (session.state or {}).get("scene")
    items: list[dict[str, Any]] = []
    tool_seqs: list[int] = []
    for action in actions:
        char = characters.get(action.actor_id)
        username = action.actor.username if action.actor else (action.payload.get("username") or "someone")
        name = char.name if char else username
        character = (
            {"name": char.name, "archetype": char.archetype, "attributes": char.attributes} if char else None
        )
        text = action.payload.get("text", "")
        args = intent.plan_check(
            text=text,
            name=name,
            actor=username,
            scene=scene,
            schema=tools.SKILL_CHECK.parameters,
            seed=dice_secrets.seed_for(session.campaign_id, session.pk, action.seq),
        )
        check = None
        if args is not None:
            call = ToolCall(
                id=f"batch_{action.seq}",
                name=tools.SKILL_CHECK.name,
                arguments=args,
                raw_arguments=json.dumps(args),
            )
            # Its DiceRolled is broadcast as it commits, before the summary streams.
            outcome, _created = tools.dispatch(
                session=session,
                campaign_id=session.campaign_id,
                action_seq=action.seq,
                actor_id=action.actor_id,
                character=character,
                call=call,
                round_no=0,
                index=0,
            )
            if outcome.event_seq:
                tool_seqs.append(outcome.event_seq)
            if not outcome.refused:
                check = {k: outcome.result.get(k) for k in ("skill", "attribute", "outcome", "total", "dc")}
        team = action.payload.get("team") or {}
        items.append(
            {
                "seq": action.seq,
                "actor": username,
                "user_id": action.actor_id,
                "name": name,
                "text": text,
                "team": team.get("name"),
                "fireteam_id": team.get("id"),
                "check": check,
            }
        )
    return items, tool_seqs


def group_by_team(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fireteams by name, then the speakers on no team ("On stage")."""
    groups: dict[Any, dict[str, Any]] = {}
    for item in items:
        key = item["fireteam_id"]
        group = groups.setdefault(key, {"team": item["team"], "fireteam_id": key, "actions": []})
        group["actions"].append({k: v for k, v in item.items() if k not in ("team", "fireteam_id")})
    return sorted(groups.values(), key=lambda g: (g["fireteam_id"] is None, (g["team"] or "").lower()))


# ---- 2. the narrator ------------------------------------------------------------------------


def build_context(session: PlaySession, window: dict, groups: list[dict[str, Any]]) -> dict[str, Any]:
    # The narrator's engine view and personality are shared with party turns.
    state = session.state or {}
    personality = session.campaign.personality
    game = game_context(session, state)
    named_teams = sum(1 for g in groups if g["actions"])
    game["word_limit"] = max(game.get("word_limit") or 180, min(MAX_SUMMARY_WORDS, 80 + 70 * named_teams))
    return {
        "batch": {"window": window["n"], "groups": groups, "count": sum(len(g["actions"]) for g in groups)},
        "scene": state.get("scene"),
        "world": session.campaign.pack.data.get("world", {}),
        "objective": state.get("objective"),
        "beat": state.get("beat"),
        **game,
        "personality": personality_context(personality),
        "turn": window["n"],
        "table_safety": tablesafety.safety_context(session.campaign_id, state),  # issue 18
    }


def _narrate(
    session: PlaySession, request: ChatRequest, stream: broadcast.DeltaStream
) -> tuple[str, str, str, float]:
    """Stream the summary. Returns (text, provider, model, seconds spent inside the provider).
    A retryable failure gets one more try; if the narrator still fails, the offline batch
    writer summarises instead, so a stage never waits on a dead provider."""
    provider = registry.get("narrator")
    stopwatch = runner.Stopwatch()
    try:
        text, _calls = runner.stream_with_retry(
            provider, request, stream, who="batch narrator", stopwatch=stopwatch
        )
        stream.flush()
        return text.strip(), provider.name, provider.model, stopwatch.seconds
    except ProviderError as exc:
        logger.warning("batch narrator failed (%s); the offline writer summarises this beat", exc)
        stream.reset("")
    summary = offline_batch.summarise(request.context, request.seed)
    return summary, FALLBACK_PROVIDER, "", stopwatch.seconds


# ---- 3. the summary and the squads' debriefs ------------------------------------------------


def run_batch(session: PlaySession, window: dict) -> list:
    """Summarise one closed window. Caller holds the session's batch lock."""
    started = time.perf_counter()
    mark("batch.started")
    n, close_seq = window["n"], window["close_seq"]
    items, tool_seqs = _roll_checks(session, list(window["actions"]))
    mark("batch.checks_rolled")
    session.refresh_from_db(fields=["state", "version"])
    groups = group_by_team(items)
    context = build_context(session, window, groups)
    request = ChatRequest(
        messages=batch_messages(context),
        tools=[],
        seed=dice_secrets.seed_for(session.campaign_id, session.pk, close_seq),
        context=context,
        max_tokens=1200,
    )
    # Issue 18: a model that copies out its own instructions shows the stage none of them.
    guard = leakguard.EchoGuard.of(
        prompt_template("stage_batch.txt"),
        prompts.DATA_RULE,
        (context.get("personality") or {}).get("system_prompt") or "",
        tablesafety.prompt_text(context.get("table_safety")),  # the table-safety section (issue 18)
    )
    stream = leakguard.GuardedStream(runner.TurnDeltaStream(session.pk, close_seq), guard)
    # The table's lines and veils hold for the preview and the final text alike (issue 18).
    stream = tablesafety.guarded(stream, context["table_safety"])
    # Issue 18: a sentence the campaign's policy holds waits for the GM or a stage moderator.
    from narrative import moderation

    stream = moderation.ModeratedStream(
        stream,
        campaign=session.campaign,
        source="batch",
        check=registry.resolve_provider_name("narrator") != "offline",
    )
    text, provider_name, model, inside = _narrate(session, request, stream)
    text = tablesafety.enforce(guard.scrub(stream.withhold(text)), context["table_safety"])
    stream.queue(session=session, of_seq=close_seq)
    from narrative import director

    text = director.enforce_window(
        text or "The beat passes in a blur of motion and static.", context["word_limit"]
    )
    squads = _squads(groups, n)
    rules = engine.load_rules(session)

    def derive(state, first_seq):
        batch = engine.Batch(rules, state, first_seq)
        batch.add(
            "Narration",
            {
                "batch": n,
                "close_seq": close_seq,
                "text": text,
                "action_seqs": [i["seq"] for i in items],
                "teams": [
                    {
                        "team": g["team"],
                        "fireteam_id": g["fireteam_id"],
                        "actions": [a["seq"] for a in g["actions"]],
                    }
                    for g in groups
                ],
                "tool_events": tool_seqs,
                "provider": provider_name,
                "model": model,
            },
        )
        # A window spends the party's time when any of its actions did (issue 13).
        took_time = any(
            engine.turn_took_time(text=i["text"], rolled=i["check"] is not None, name=i["name"])
            for i in items
        )
        turn = {"type": "TurnEnded", "took_time": took_time}
        actors = sorted({i["user_id"] for i in items if isinstance(i.get("user_id"), int)})
        if took_time and actors:
            turn["actors"] = actors  # each speaker in the window acted: `turns each` counts them
        effects = batch.feed(turn)
        batch.director_step(twist_fired=any(e["type"] == "TwistTriggered" for e in effects))
        created = batch.finish()
        for squad in squads:
            created.append(
                events.NewEvent(type="SquadSummary", payload=squad["payload"], audience=squad["audience"])
            )
        return created

    with transaction.atomic():
        result = events.append(session, derive=derive, idempotency_key=f"batch:{session.pk}:{n}")
        created = result.events
        if not result.replayed and created:
            engine.apply_projections(created)
            transaction.on_commit(lambda: _after_commit(session.pk, created))
    total = time.perf_counter() - started
    mark(f"batch.provider_ms={inside * 1000:.1f}")
    mark(f"batch.total_ms={total * 1000:.1f}")
    logger.info(
        "stage %s window %s: %s actions, %.0f ms (%.0f ms inside the narrator)",
        session.pk,
        n,
        len(items),
        total * 1000,
        inside * 1000,
    )
    if not result.replayed and any(e.type == "BeatChanged" for e in created):
        recap(session, close_seq)
    return created


def _squads(groups: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """A debrief per fireteam that acted, addressed to the team's members (and whoever acted for
    it this window, in case they were moved since)."""
    teams = [g for g in groups if g["fireteam_id"] is not None]
    if not teams:
        return []
    members: dict[int, set[int]] = {}
    for fireteam_id, user_id in FireteamMember.objects.filter(
        fireteam_id__in=[g["fireteam_id"] for g in teams]
    ).values_list("fireteam_id", "membership__user_id"):
        members.setdefault(fireteam_id, set()).add(user_id)
    return [
        {
            "payload": {
                "window": n,
                "fireteam_id": g["fireteam_id"],
                "fireteam": g["team"],
                "text": offline_batch.squad_summary(g, n),
            },
            "audience": sorted(
                members.get(g["fireteam_id"], set()) | {a["user_id"] for a in g["actions"] if a["user_id"]}
            ),
        }
        for g in teams
    ]


def _after_commit(session_id: int, created: list) -> None:
    from realtime import stage as realtime_stage

    mark("batch.committed")
    # The events themselves were broadcast by their listener; a squad's debrief also goes to
    # the team's own sockets, and the roster shows the window summarised.
    for event in created:
        if event.type == "SquadSummary":
            broadcast.team_notice(
                event.payload["fireteam_id"],
                {
                    "session": session_id,
                    "seq": event.seq,
                    "fireteam": event.payload["fireteam"],
                    "text": event.payload["text"],
                    "audience": event.audience,
                },
            )
    realtime_stage.send_roster(session_id)
