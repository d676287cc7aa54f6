"""API shapes. Times travel as text ("2027-01-07T19:30", a wall time in the schedule's zone) and
are checked by the services after the caller's access is: a bad value is a clear 422 there."""

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field


class ScheduleIn(Schema):
    start: str = Field(max_length=40, description="First session, wall time in time_zone: 2027-01-07T19:30")
    time_zone: str = Field(max_length=64, description="IANA zone, e.g. Europe/Berlin")
    duration_minutes: int = Field(description="1 to 1440")
    rrule: str = Field(default="", max_length=600, description="e.g. FREQ=WEEKLY;INTERVAL=2;BYDAY=TH")
    exdates: list[str] = Field(default_factory=list, max_length=600, description="skipped sessions")
    title: str = Field(default="", max_length=500)
    notes: str = Field(default="", max_length=20_000)


class SchedulePatch(Schema):
    start: str | None = Field(default=None, max_length=40)
    time_zone: str | None = Field(default=None, max_length=64)
    duration_minutes: int | None = None
    rrule: str | None = Field(default=None, max_length=600)
    exdates: list[str] | None = Field(default=None, max_length=600)
    title: str | None = Field(default=None, max_length=500)
    notes: str | None = Field(default=None, max_length=20_000)


class OccurrenceOut(Schema):
    original: str  # the recurrence id: wall time in the schedule's zone
    start: datetime
    end: datetime
    moved: bool
    cancelled: bool


class OverrideOut(Schema):
    original: str
    cancelled: bool
    start: datetime | None
    duration_minutes: int | None
    sequence: int


class ScheduleOut(Schema):
    id: int
    uid: str
    title: str
    notes: str
    start: str
    time_zone: str
    duration_minutes: int
    rrule: str
    exdates: list[str]
    sequence: int
    updated_at: datetime
    overrides: list[OverrideOut]
    upcoming: list[OccurrenceOut]


class OccurrenceIn(Schema):
    action: Literal["move", "cancel", "restore"]
    original: str = Field(max_length=40, description="the session as the rule makes it: 2027-01-21T19:30")
    start: str | None = Field(default=None, max_length=40, description="move: the new wall time")
    duration_minutes: int | None = None
