"""The mission language: source text -> validated, hashable mission AST. Pure Python, no Django.

    compiled = compile_source(text, "vesper-relay.mission")   # or raises MissionError
    compiled.ast, compiled.content_hash, compiled.slug
    to_source(compiled.ast)                                    # canonical source back

See docs/MISSIONS.md for the language reference.
"""

from __future__ import annotations

from .ast import VERSION, CompiledMission, DslError, MissionError, canonical_json, content_hash, strip_private
from .parser import parse
from .printer import to_source
from .validate import validate

__all__ = [
    "VERSION",
    "CompiledMission",
    "DslError",
    "MissionError",
    "canonical_json",
    "compile_source",
    "content_hash",
    "to_source",
]


def compile_source(text: str, filename: str = "<mission>") -> CompiledMission:
    """Parse and validate a mission. Raises MissionError (with every problem found) and nothing else."""
    raw = parse(text, filename)
    try:
        errors = validate(raw, filename)
    except (RecursionError, ValueError, KeyError, TypeError, IndexError) as exc:
        # Defensive: a validator bug must still surface as a MissionError, never a traceback.
        raise MissionError(
            [DslError(filename, 1, 1, f"could not validate the mission ({type(exc).__name__})")]
        ) from None
    if errors:
        raise MissionError(errors)
    ast = strip_private(raw)
    return CompiledMission(
        ast=ast, content_hash=content_hash(ast), slug=ast["slug"], title=ast["title"], biome=ast["biome"]
    )
