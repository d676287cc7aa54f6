"""The one text-storability rule: what PostgreSQL text and jsonb can hold.

PostgreSQL cannot store NUL, nor an unpaired UTF-16 surrogate (which a JSON body may smuggle in
as "\\ud800"). User input carrying one is refused with a clear 422 (`check_storable`,
`clean_text`, `check_storable_json`); text the game itself passes on (a model's tool arguments)
can be tested (`has_unstorable`) or stripped (`storable`). Every app calls these; none keeps a
copy.
"""

from __future__ import annotations

from typing import Any

from gtw_site.errors import Invalid

# Code points PostgreSQL can't keep: NUL and the surrogate range.
UNSTORABLE = frozenset({0, *range(0xD800, 0xE000)})


def is_storable(text: str) -> bool:
    return "\x00" not in text and not any(0xD800 <= ord(ch) < 0xE000 for ch in text)


def check_storable(text: str, *, what: str) -> str:
    """`text`, or Invalid (422) naming `what` when PostgreSQL could not store it."""
    if "\x00" in text:
        raise Invalid(f"{what} contains a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{what} contains invalid Unicode (an unpaired surrogate).") from None
    return text


def clean_text(value, *, what: str, max_len: int, required: bool = True) -> str:
    """Trimmed text, or a clear error: not text, missing, too long, or unstorable."""
    text = (value or "").strip() if isinstance(value, str | None) else None
    if text is None:
        raise Invalid(f"{what} must be text.")
    if required and not text:
        raise Invalid(f"{what} is required.")
    if len(text) > max_len:
        raise Invalid(f"{what} is at most {max_len} characters.")
    return check_storable(text, what=what)


def check_storable_json(value: Any, *, what: str, max_depth: int = 64) -> None:
    """Every string in a JSON document (keys included) storable, or Invalid naming `what`.
    Iterative, so a deeply nested document is an Invalid, never a RecursionError."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > max_depth:
            raise Invalid(f"{what} is nested too deeply.")
        if isinstance(item, str):
            check_storable(item, what=what)
        elif isinstance(item, dict):
            pending += [(k, depth + 1) for k in item] + [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            pending += [(v, depth + 1) for v in item]


def has_unstorable(value: Any) -> bool:
    """Whether any string in `value` (a JSON-like document, keys included) can't be stored."""
    if isinstance(value, str):
        return not is_storable(value)
    if isinstance(value, dict):
        return any(has_unstorable(k) or has_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_unstorable(v) for v in value)
    return False


def storable(value: Any) -> Any:
    """`value` without the characters PostgreSQL can't keep in JSON (NUL, lone surrogates)."""
    if isinstance(value, str):
        return "".join(ch for ch in value if ord(ch) not in UNSTORABLE)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value
