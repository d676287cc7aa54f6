"""Happenings of the calendar that layers above may react to (reminders, the warm-up).

`session_upcoming` is sent after commit, exactly once per occurrence and lead time (the
UpcomingNotice row's unique constraint decides which worker sends it), with keyword arguments
`notice_id`, `schedule_id`, `campaign_id`, `occurrence` (the recurrence id as an aware instant),
`starts_at` (aware; differs for a moved session) and `lead_minutes`.
"""

from django.dispatch import Signal

session_upcoming = Signal()
