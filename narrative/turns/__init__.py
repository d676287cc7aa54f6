"""Turns: the narrator answering the players, under one per-session runner.

- party.py: a party session's turn — one player's action, answered for the whole table
  (submit_action, retry_turn, schedule_turns, run_pending_turns, run_turn, recap);
- batch.py: a stage session's batch turn — ONE summary for a closed beat window
  (schedule_batches, run_pending_batches, run_batch);
- runner.py: the per-session runner both share (advisory lock, loop, crash handling, yield
  after a budget and re-queue) and the narrator's streamed round with one retry;
- context.py: what the narrator may know (build_context, recall, the engine's view);
- prompts.py: the prompts built from that context.

The names below are this package's public face; django-q2 tasks are queued by these dotted
paths (`narrative.turns.run_pending_turns`, `narrative.turns.run_pending_batches`), so a queued
task survives a restart and a move inside the package.
"""

from narrative.turns.batch import run_batch, run_pending_batches, schedule_batches
from narrative.turns.context import build_context, game_context, personality_context
from narrative.turns.party import (
    LOCK_NAMESPACE,
    recap,
    resume_all_pending,
    retry_turn,
    run_pending_turns,
    run_turn,
    schedule_turns,
    submit_action,
    waiting_actions,
)
from narrative.turns.prompts import action_prompt, batch_messages, build_messages, game_text, prompt_template

__all__ = [
    "LOCK_NAMESPACE",
    "action_prompt",
    "batch_messages",
    "build_context",
    "build_messages",
    "game_context",
    "game_text",
    "personality_context",
    "prompt_template",
    "recap",
    "resume_all_pending",
    "retry_turn",
    "run_batch",
    "run_pending_batches",
    "run_pending_turns",
    "run_turn",
    "schedule_batches",
    "schedule_turns",
    "submit_action",
    "waiting_actions",
]
