"""Kept only so batch-turn tasks queued before the move to narrative/turns/ (by the dotted path
`narrative.stage_turns.run_pending_batches`) still resolve after a restart. New code imports
narrative.turns."""

from narrative.turns.batch import run_pending_batches

__all__ = ["run_pending_batches"]
