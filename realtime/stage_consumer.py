"""The stage socket (`ws/stage/<session_id>/`). Thin, like the session socket it extends: it
authenticates (4403 for non-members), joins `session.<id>` (the event log, seq-healed and
audience-filtered by SessionConsumer), `stage.<id>` (roster and presence) and `team.<id>` while
its member is on a fireteam (squad debriefs), validates frames and calls campaigns.stage.

Spectators get the same stream, read-only: every write frame is refused by the services with a
message that says why. `?format=json` for scripts and the benchmark; HTML (htmx out-of-band
partials) for the stage page.
"""

from __future__ import annotations

import json
import logging

from channels.db import database_sync_to_async
from pydantic import ValidationError

from campaigns.errors import DomainError
from campaigns.selectors import may_see
from realtime import broadcast, presence
from realtime import stage as rt
from realtime.consumers import SessionConsumer, presence_json
from realtime.layer import once
from realtime.messages import ActionFrame, Ping

logger = logging.getLogger(__name__)

CLOSE_NOT_A_STAGE = 4404
CLEAR_NOTICE = '<div id="notice" role="alert" aria-live="assertive" hx-swap-oob="true"></div>'


class StageConsumer(SessionConsumer):
    """SessionConsumer's connection (auth, `session.<id>`, presence heartbeats, seq healing,
    frame checks) plus the stage: its groups, its frames, its roster."""

    known_types = rt.KNOWN_TYPES
    read_types = frozenset(rt.KNOWN_TYPES - rt.WRITE_TYPES)
    # The stage counts instead of the play page's party (session_presence below does nothing).
    fast_handlers = {
        **SessionConsumer.fast_handlers,
        "session.presence": "_fast_ignore",
        "stage.presence": "_fast_presence",
    }
    presence_kind = "stage"  # a count to `stage.<id>`, announced apart from the play page's party

    async def connect(self):
        self.team_id: int | None = None
        self.roster: dict | None = None
        self.roster_version = -1
        self.box: str | None = None
        self.on_stage = False
        await super().connect()  # closes non-members with 4403
        if getattr(self, "membership", None) is None:
            return
        # Join `stage.<id>` first, then read the roster (as SessionConsumer joins, then catches
        # up): a change committed in between arrives through the group and is not lost; an older
        # one is dropped by version in stage_roster.
        await self._join(broadcast.stage_group(self.session_id))
        self.on_stage = True  # from here disconnect() leaves the group, closed below or not
        roster = await self._seat_and_roster()
        if roster is None:
            await self.close(code=CLOSE_NOT_A_STAGE)
            return
        await self._follow_team(roster)
        self.roster, self.roster_version = roster, roster["version"]
        if self.json_mode:
            await self._send_json({"type": "roster", "roster": roster})

    async def disconnect(self, code):
        await super().disconnect(code)
        if getattr(self, "on_stage", False):
            await self._leave(broadcast.stage_group(self.session_id))
            if self.team_id is not None:
                await self.channel_layer.group_discard(broadcast.team_group(self.team_id), self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        data = await self._read_frame(text_data, bytes_data)
        if data is None:
            return
        try:
            frame = rt.stage_frame.validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"][1:]) or "frame"
            await self._error("invalid", f"{where}: {first['msg']}")
            return
        try:
            if isinstance(frame, rt.StageHello):
                self.box = frame.box
                await self._catch_up(frame.last_seq)
                await self._push_roster(await self._load_roster())
            elif isinstance(frame, Ping):
                await self._send_json({"type": "pong"})
            elif isinstance(frame, ActionFrame):
                seq = await self._submit(frame)
                await self._ack(seq, frame.idempotency_key)
            else:
                await database_sync_to_async(self._stage_call, thread_sensitive=False)(frame)
                if self.json_mode:
                    await self._send_json({"type": "ok", "frame": frame.type})
                elif frame.type != "window_check":
                    await self.send(text_data=CLEAR_NOTICE)  # done: an earlier refusal no longer applies
        except DomainError as exc:
            await self._error(exc.code, exc.message)

    # ---- group messages ------------------------------------------------------------------

    async def session_presence(self, message):
        pass  # the play page's party panel (a play socket on this session); the stage counts instead

    def _fast_ignore(self, message) -> bool:
        return True

    async def _announce_presence(self, online: list[str]):
        # Called (coalesced) by SessionConsumer's presence code: a count, not a rendered party.
        await broadcast.stage_presence_async(self.session_id, len(online))

    async def stage_presence(self, message):
        await self.send(text_data=self._presence_text(message)[1])

    def _presence_text(self, message) -> tuple[str, str]:
        if message["type"] != "stage.presence":
            return super()._presence_text(message)
        if self.json_mode:
            return "stage.presence.json", once(message, "stage.presence.json", lambda: presence_json(message))
        count = int(message["online"])
        return "stage.presence.html", f'<span id="online-count" hx-swap-oob="true">{count}</span>'

    async def stage_roster(self, message):
        roster = message["roster"]
        if roster["version"] < self.roster_version:
            return  # older than the snapshot this socket already has
        self.roster_version = roster["version"]
        await self._follow_team(roster)
        if self.json_mode:
            self.roster = roster
            # A big stage's roster is the largest frame it sends: encoded once per process.
            frame = once(message, "roster.json", lambda: json.dumps({"type": "roster", "roster": roster}))
            await self.send(text_data=frame)
            return
        seat = roster["seats"].get(self.user.username) or {}
        await self.send(
            text_data=message["html"]["moderator" if seat.get("role") == "moderator" else "member"]
        )
        await self._push_self(roster)

    async def team_notice(self, message):
        if message.get("session") != self.session_id or not may_see(message.get("audience"), self.membership):
            return  # the same fireteam in another stage of the campaign, or no longer ours
        if self.json_mode:
            notice = {k: message[k] for k in ("seq", "fireteam", "text")}
            await self._send_json({"type": "squad", **notice})
        else:
            await self.send(text_data=rt.squad_html(message))

    # ---- helpers -----------------------------------------------------------------------

    def _event_text(self, message) -> tuple[str | None, str] | None:
        event = message["event"]
        if (
            not self.json_mode
            and rt.is_stage_entry(event)
            and may_see(event.get("audience"), self.membership)
        ):
            # The stage's own entry: the same for every socket of the session (cached by seq).
            html = once(message, "stage.entry", lambda: rt.entry_oob_html(self.session_id, event))
            return "stage.entry", html
        return super()._event_text(message)

    async def _push_roster(self, roster: dict):
        """Everything roster-shaped, for this socket only (after hello)."""
        await self._follow_team(roster)
        if self.json_mode:
            await self._send_json({"type": "roster", "roster": roster})
            return
        seat = roster["seats"].get(self.user.username) or {}
        await self.send(text_data=rt.roster_html(roster, moderator=seat.get("role") == "moderator"))
        await self._push_self(roster)

    async def _push_self(self, roster: dict):
        self.roster, self.roster_version = roster, max(self.roster_version, roster["version"])
        username = self.user.username
        await self.send(text_data=rt.me_html(roster, username))
        key = rt.box_key(roster, username)
        if key != self.box:  # only when it changes: a re-render would wipe a half-typed action
            self.box = key
            await self.send(text_data=rt.action_box_html(roster, username))

    async def _follow_team(self, roster: dict):
        """Join `team.<id>` for the member's fireteam (spectators never have one)."""
        seat = roster["seats"].get(self.user.username) or {}
        team = seat.get("team")
        if team == self.team_id:
            return
        if self.team_id is not None:
            await self.channel_layer.group_discard(broadcast.team_group(self.team_id), self.channel_name)
        if team is not None:
            await self.channel_layer.group_add(broadcast.team_group(team), self.channel_name)
        self.team_id = team
        try:
            await presence.set_team(self.session_id, self.user.username, str(team) if team else None)
        except Exception:  # the presence roster is a convenience; the socket carries on
            logger.warning("could not record the team of %s", self.user.username, exc_info=True)

    async def _ack(self, seq: int, key: str):
        if self.json_mode:
            await self._send_json({"type": "ack", "seq": seq, "idempotency_key": key})
            return
        roster = await self._load_roster()
        self.box = rt.box_key(roster, self.user.username)
        await self.send(text_data=rt.action_box_html(roster, self.user.username) + CLEAR_NOTICE)  # new key

    @database_sync_to_async
    def _seat_and_roster(self) -> dict | None:
        from campaigns.models import PlaySession
        from campaigns.stage.selectors import stage_roster
        from campaigns.stage.services import seat_ensure
        from campaigns.stage.windows import window_check

        session = PlaySession.objects.select_related("campaign").get(pk=self.session_id)
        if session.kind != PlaySession.Kind.STAGE:
            return None
        seat_ensure(session=session, membership=self.membership)
        window_check(session)
        return stage_roster(session)

    @database_sync_to_async
    def _load_roster(self) -> dict:
        from campaigns.models import PlaySession
        from campaigns.stage.selectors import stage_roster

        return stage_roster(PlaySession.objects.get(pk=self.session_id))

    def _stage_call(self, frame) -> None:
        """Runs a write frame through campaigns.stage (in a worker thread: closing a window may
        run its whole batch turn inline when tasks run synchronously)."""
        from campaigns.stage import selectors, services, windows

        session, membership = selectors.stage_get(viewer=self.user, session_id=self.session_id)
        if frame.type == "window_check":
            windows.window_check(session)
            return
        if frame.type == "raise_hand":
            services.hand_raise(session=session, membership=membership)
        elif frame.type == "lower_hand":
            services.hand_lower(session=session, membership=membership)
        elif frame.type == "window_open":
            windows.window_open(session=session, membership=membership, seconds=frame.seconds)
        elif frame.type == "window_close":
            windows.window_close(session=session, membership=membership)
        else:
            target = selectors.target_get(campaign_id=session.campaign_id, username=frame.username)
            common = {"session": session, "membership": membership, "target": target}
            if frame.type == "assign_team":
                services.team_assign(**common, fireteam_id=frame.fireteam)
            elif frame.type in ("mute", "unmute"):
                services.speaker_mute(**common, muted=frame.type == "mute")
            elif frame.type in ("promote", "demote"):
                services.moderator_set(**common, moderator=frame.type == "promote")
            else:
                handlers = {
                    "approve": services.hand_approve,
                    "deny": services.hand_deny,
                    "remove": services.speaker_remove,
                }
                handlers[frame.type](**common)
