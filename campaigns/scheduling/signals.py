"""Happenings of the calendar that layers above may react to (reminders, the warm-up).

`session_upcoming` is sent after commit, exactly once per occurrence and lead time (the
UpcomingNotice row's unique constraint decides which worker sends it), with keyword arguments
`notice_id`, `schedule_id`, `campaign_id`, `occurrence` (the recurrence id as an aware instant),
`starts_at` (aware; differs for a moved session) and `lead_minutes`.
"""

from django.dispatch import Signal

session_upcoming = Signal()

# Sent by the warm-up job (scheduling/warmup.py), outside any transaction, with `campaign_id`,
# `run_id` and `starts_at` (aware, or None for a GM's "run now"). Each receiver does its part
# of getting ready for the session (memory: prefetch the recap's recall; images: the likely
# scene) and returns a list of check lines, each {"check": str, "ok": bool, "detail": str,
# "ms": float}, which the GM reads on the campaign page. A receiver that raises is shown as a
# failed check, and the others still run.
warmup_requested = Signal()
