"""Stage mode: one session for 50+ people — moderators, speakers, a queue of raised hands, an
audience — on the campaign's fireteams (campaigns.teams), and actions batched per beat window.

- services.py: opening a stage, seats, hands, speakers, moving people between teams, moderators;
- windows.py: beat windows (open, close, the timer) and the actions recorded into them;
- selectors.py: the stage as a viewer may read it (the guard, the roster);
- api.py, views.py, urls.py: the HTTP surface (also the fireteam and alliance endpoints and forms).

Services write (`<entity>_<verb>`, keyword-only, one transaction each); selectors read through
the viewer. Every stage change is an Event (HandRaised, HandApproved, SpeakerMuted,
TeamAssigned, BatchWindowOpened, BatchWindowClosed, …) so late joiners and replays see it; the
StageSeat table is the fast projection the roster reads, written in the same transaction.
After commit the event store's listeners broadcast the events and `signals.roster_changed` has
the roster sent (realtime subscribes to both; this package imports neither).

Who may do what:
- non-members get NotFound (404) everywhere, like every other campaign read;
- moderators (the campaign's GM always, and members the GM promotes) approve or deny raised
  hands, mute and remove speakers, move people between fireteams, open and close beat windows;
- players raise a hand, and act during an open window once on stage or on a fireteam;
- spectators watch: every write is Forbidden, with a message that says so.

A beat window collects actions (Action events flagged `batched`, which never enter the per-action
turn queue). It closes when a moderator closes it, or when its time is up: a django-q2 Schedule
runs `window_close_due` at `closes_at` (the scheduler wakes about every 30 s), and every stage read
and write — including each client's countdown reaching zero — checks lazily, so a timed window
closes on time while anyone is watching. The narrative layer hears the BatchWindowClosed and
runs the batch turn (narrative.turns.batch): per-action dice, then ONE GM summary, then
per-squad debriefs.
"""


def __getattr__(name: str):
    # Timers scheduled before stage mode became a package name the old path; django-q2 resolves
    # "campaigns.stage.window_close_due" through this (new ones name campaigns.stage.windows).
    if name == "window_close_due":
        from campaigns.stage.windows import window_close_due

        return window_close_due
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
