"""Installing and listing missions. Compilation and validation are missions.dsl's (pure)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from campaigns.errors import Invalid
from missions.dsl import MissionError, compile_source
from missions.models import Mission

MAX_SOURCE_BYTES = 256 * 1024


class MissionInvalid(Invalid):
    """A mission that does not compile; `errors` are the `file:line:col: message` lines."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def mission_install(
    *, source: str, filename: str = "mission.mission", user=None, pack=None
) -> tuple[Mission, bool]:
    """Compile and install a mission. Returns (mission, created); installing the same source
    again is a no-op. Raises MissionInvalid with every error the compiler found."""
    if not isinstance(source, str):
        raise MissionInvalid([f"{filename}:1:1: the mission must be UTF-8 text"])
    filename = (filename or "mission.mission").replace("\\", "/").rsplit("/", 1)[-1][:200]
    try:
        compiled = compile_source(source, filename)
    except MissionError as exc:
        raise MissionInvalid([str(e) for e in exc.errors]) from None
    existing = Mission.objects.filter(slug=compiled.slug, content_hash=compiled.content_hash).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            mission = Mission.objects.create(
                slug=compiled.slug,
                title=compiled.title,
                biome=compiled.biome,
                summary=compiled.ast.get("summary", ""),
                source=source,
                filename=filename,
                ast=compiled.ast,
                content_hash=compiled.content_hash,
                pack=pack,
                installed_by=user,
            )
    except IntegrityError:  # a concurrent install of the same version won
        return Mission.objects.get(slug=compiled.slug, content_hash=compiled.content_hash), False
    return mission, True


def missions_latest() -> list[Mission]:
    """The newest version of each installed mission."""
    return list(Mission.objects.order_by("slug", "-installed_at", "-pk").distinct("slug"))


def override_from_fields(data) -> dict:
    """A GM override (see narrative.engine.gm_override) from form or JSON fields: an objective
    and its status, a clock and its value, or a scene."""
    if data.get("objective"):
        return {"objective": str(data["objective"])[:60], "status": str(data.get("status", ""))[:20]}
    if data.get("clock"):
        try:
            value = int(data.get("value", ""))
        except (TypeError, ValueError):
            raise Invalid("A clock override needs a whole-number value.") from None
        return {"clock": str(data["clock"])[:60], "value": value}
    if data.get("scene"):
        return {"scene": str(data["scene"])[:60]}
    raise Invalid("Say what to override: an objective and its status, a clock and its value, or a scene.")
