"""PII redaction: what is blanked out of text before it leaves this server (issue 18 part 5).

`redact(text, kinds)` replaces e-mail addresses, phone numbers, card numbers (Luhn-checked),
IBANs (mod-97-checked), IPv4/IPv6 addresses, API-key-like strings and street addresses with
short placeholders that keep a story readable ("call me on [phone]"). It runs on every
message the remote chat adapters and embedders send, on provider error text and telemetry
rows, and on every log record (`RedactingFilter`, on the console handler in settings.LOGGING).

The detectors are rules, not a model: nothing is downloaded. They are tuned against game text,
whose numbers are mostly not PII — dice ("2d6+3"), years and dates ("2187-03-14"), stardates
("41153.7"), coordinates ("12.5, -7.25"), version numbers ("v1.2.3.4"), hex colours ("#ff00aa"),
ship registries ("NCC-1701-D") — so a match is checked (Luhn, mod-97, octet ranges, a phone
word before a short local number) rather than taken on shape alone. Measured precision and
recall on the labelled set in tests/gtw_site/data/redact_labelled.jsonl are in
tests/gtw_site/test_redact_quality.py.

Pure: no Django. `configured()` reads GTW_REDACT / GTW_REDACT_LOCAL from django.conf.settings
when Django is set up, and the defaults when it is not.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

KINDS = ("key", "email", "iban", "card", "ip", "phone", "address")
PLACEHOLDERS = {
    "email": "[email]",
    "phone": "[phone]",
    "card": "[card number]",
    "iban": "[IBAN]",
    "ip": "[IP address]",
    "key": "[secret]",
    "address": "[street address]",
}


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    kind: str


# ---- detectors --------------------------------------------------------------------------------
# Each yields (start, end) of a match in `text`; `find` merges them, the earlier kind in KINDS
# winning an overlap (a key that looks like a card number is still a key).

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for m in _EMAIL.finditer(text):
        yield m.span()


# Known key shapes, then a generic rule for long random-looking tokens.
_KEY_SHAPES = re.compile(
    r"""(?<![\w-])(?:
        sk-(?:proj-|ant-(?:api\d\d-)?|live_|test_)?[A-Za-z0-9_-]{16,}
      | (?:rk|pk|sk)_(?:live|test)_[A-Za-z0-9]{16,}
      | (?:AKIA|ASIA)[0-9A-Z]{16}
      | gh[pousr]_[A-Za-z0-9]{30,}
      | github_pat_[A-Za-z0-9_]{30,}
      | xox[abprs]-[A-Za-z0-9-]{10,}
      | AIza[0-9A-Za-z_-]{35}
      | hf_[A-Za-z0-9]{30,}
      | glpat-[A-Za-z0-9_-]{20,}
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}
    )(?![\w-])""",
    re.VERBOSE,
)
# "Bearer <token>", "api_key=<token>", "password: <token>": whatever follows is a secret.
_KEY_ASSIGNED = re.compile(
    r"(?i)\b(?:bearer|api[_ -]?key|access[_ -]?token|secret[_ -]?key|auth[_ -]?token|password|passwd)"
    r"(?:\s*[:=]\s*|\s+)[\"']?([^\s\"'<>,;]{12,})"
)
_TOKEN = re.compile(r"(?<![\w+/-])[A-Za-z0-9_\-+/]{24,}={0,2}(?![\w+/=-])")


def _entropy(token: str) -> float:
    counts: dict[str, int] = {}
    for ch in token:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_random(token: str) -> bool:
    """A long token that is not a word, a dashed name or a number: mixed classes, high entropy."""
    core = token.strip("=")
    if len(core) < 24:
        return False
    has_digit = any(c.isdigit() for c in core)
    has_lower = any(c.islower() for c in core)
    has_upper = any(c.isupper() for c in core)
    if re.fullmatch(r"[0-9a-fA-F]+", core):
        # A hex digest or key: long enough not to be a colour, a registry or a year.
        return len(core) >= 32 and has_digit and (has_lower or has_upper)
    if not has_digit or not (has_lower or has_upper):
        return False
    # Words joined by dashes or underscores (a slug, a flag name) are not secrets.
    pieces = re.split(r"[-_]", core)
    if len(pieces) > 1 and all(len(p) <= 12 for p in pieces):
        return False
    return ((has_lower and has_upper) or len(core) >= 32) and _entropy(core) >= 3.8


def _keys(text: str) -> Iterator[tuple[int, int]]:
    for m in _KEY_SHAPES.finditer(text):
        yield m.span()
    for m in _KEY_ASSIGNED.finditer(text):
        start, end = m.span(1)
        while end > start and text[end - 1] in ".,:!?)]}":
            end -= 1  # the sentence's punctuation, not the secret's
        if end - start >= 12:
            yield start, end
    for m in _TOKEN.finditer(text):
        if _looks_random(m.group()):
            yield m.span()


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# 13-19 digits in groups of 1-6 joined by one space or dash; a card starts with 2-6.
_CARD = re.compile(r"(?<![\w.,/+-])[2-6]\d{0,5}(?:[ -]?\d{1,6}){2,8}(?![\w]|[.,/-]\d)")


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            yield m.span()


_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w])")


def _iban_ok(raw: str) -> bool:
    iban = raw.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN.finditer(text):
        raw = m.group()
        # The optional tail may have swallowed a following word's start; try shorter cuts.
        while raw:
            if _iban_ok(raw):
                yield m.start(), m.start() + len(raw)
                break
            cut = raw.rfind(" ")
            if cut <= 4:
                break
            raw = raw[:cut]


_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?![\w]|\.\d)")
_VERSION_WORDS = re.compile(r"(?i)\b(?:v|version|build|release|firmware|patch|rev|ver)\.?\s*$")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)


def _in_url(text: str, start: int) -> bool:
    # A URL's host is a server the site talks to (an operator's Ollama box, a provider), which
    # error messages must keep naming; a person's address shows up bare ("from 10.1.2.3").
    return text[max(0, start - 3) : start] == "://" or text[max(0, start - 4) : start] == "://["


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for m in _IPV4.finditer(text):
        address = m.group().split("/")[0]
        if _VERSION_WORDS.search(text[max(0, m.start() - 12) : m.start()]) or _in_url(text, m.start()):
            continue
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            continue
        yield m.span()
    for m in _IPV6.finditer(text):
        raw = m.group()
        hexdigits = sum(c in "0123456789abcdefABCDEF" for c in raw)
        if "::" not in raw and raw.count(":") < 7:
            continue  # "12:30:45" is a time, not an address
        if (hexdigits < 4 and raw != "::1") or _in_url(text, m.start()):
            continue
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            continue
        yield m.span()


_PHONE_WORDS = re.compile(
    r"(?i)\b(?:call|calls|called|calling|phone|tel|telephone|mobile|cell|ring|dial|text|sms|whatsapp|"
    r"signal|fax|number|no\.|reach|contact)\b[^\n]{0,24}$"
)
# +CC then 7-13 more digits, grouped by spaces, dots, dashes or (brackets).
_PHONE_INTL = re.compile(r"(?<![\w+/-])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w]|[.,]\d)")
# (212) 555-0187, 212-555-0187, 212.555.0187
_PHONE_NANP = re.compile(r"(?<![\w.+-])(?:1[-. ])?(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![\w]|[.,-]\d)")
# Trunk-prefixed local numbers: 020 7946 0958, 07700 900123, 06 12 34 56 78, 030/1234567
_PHONE_TRUNK = re.compile(r"(?<![\w.+/-])0[1-9]\d{0,4}(?:[ /-]?\d{2,4}){1,4}(?![\w]|[.,:-]\d)")
# A bare 7-11-digit number or 555-0187 counts only after a phone word ("call me on 5550187").
_PHONE_SHORT = re.compile(
    r"(?<![\w.+/-])\d{3}[-. ]?\d{4}(?![\w]|[.,:-]\d)|(?<![\w.+/-])\d{7,11}(?![\w]|[.,:-]\d)"
)
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")


def _digits(raw: str) -> int:
    return sum(c.isdigit() for c in raw)


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for m in _PHONE_INTL.finditer(text):
        # "00" is the international prefix in Europe: with it, the number is longer.
        low = 10 if m.group().startswith("00") else 8
        if low <= _digits(m.group()) <= 15:
            yield m.span()
    for m in _PHONE_NANP.finditer(text):
        yield m.span()
    for m in _PHONE_TRUNK.finditer(text):
        raw = m.group()
        if 9 <= _digits(raw) <= 12 and not _DATE_LIKE.match(raw.replace(" ", "-")):
            yield m.span()
    for m in _PHONE_SHORT.finditer(text):
        if _PHONE_WORDS.search(text[max(0, m.start() - 40) : m.start()]) and not _DATE_LIKE.match(m.group()):
            yield m.span()


_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace|"
    r"Crescent|Close|Square|Sq|Parkway|Pkwy|Highway|Hwy|Way|Row|Gardens|Mews)"
)
_STREET_EN = re.compile(
    r"(?<![\w-])\d{1,5}[A-Za-z]?,? "
    r"(?:(?:[NSEW]\.? |North |South |East |West )?[A-Z][a-z]+(?:['\u2019][a-z]+)?"
    r"(?: [A-Z][a-z]*\.?){0,4}) " + _STREET_SUFFIX + r"\b\.?"
    r"(?: (?:N|S|E|W|NE|NW|SE|SW)\b)?"
    r"(?:,? (?:Apt|Apartment|Suite|Unit|Flat)\.? ?#?\w{1,5})?"
)
_STREET_EU = re.compile(
    r"(?<![\w-])[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|allee|platz|laan|straat|gracht|vej|gatan|gata)"
    r" \d{1,4}[a-z]?\b"
)
# A street suffix also names corridors and docks in play ("7 Hangar Way"): an address needs
# one more sign — a postcode, a city line, or an address word before it.
_ADDRESS_CONTEXT_BEFORE = re.compile(
    r"(?i)\b(?:live[sd]? at|living at|address|addr\.?|home is|house is|flat is|apartment is|moved to|"
    r"send (?:it|them|mail|post) to|ship (?:it|them) to|deliver(?:ed)? to|mail(?:ed)? to|post(?:ed)? to|"
    r"visit me at|office (?:is )?at|i'?m at|we'?re at|stay(?:ing)? at)\b[^\n]{0,12}$"
)
_ADDRESS_CONTEXT_AFTER = re.compile(
    r"^,? (?:[A-Z][a-z]+(?: [A-Z][a-z]+)?,? (?:[A-Z]{2} )?\d{5}(?:-\d{4})?\b|"  # Springfield, IL 62704
    r"[A-Z][a-z]+(?: [A-Z][a-z]+)?,? [A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b|"  # London, SW1A 1AA
    r"[A-Z][a-z]+(?: [A-Z][a-z]+)?,? (?:[A-Z]{2}|USA|UK|U\.S\.|Canada|Australia)\b|"  # Austin, TX
    r"[A-Z][a-z]+(?: [A-Z][a-z]+)?, [A-Z][a-z]+(?: [A-Z][a-z]+)?\b|"  # Cork, Ireland
    r"(?:Apt|Apartment|Suite|Unit|Flat)\b)"
)


def _addresses(text: str) -> Iterator[tuple[int, int]]:
    for m in _STREET_EN.finditer(text):
        before = text[max(0, m.start() - 40) : m.start()]
        after = text[m.end() : m.end() + 40]
        if (
            _ADDRESS_CONTEXT_BEFORE.search(before)
            or _ADDRESS_CONTEXT_AFTER.match(after)
            or m.group(0).find(", Apt") >= 0
        ):
            yield m.span()
    for m in _STREET_EU.finditer(text):
        yield m.span()


_DETECTORS: dict[str, Callable[[str], Iterable[tuple[int, int]]]] = {
    "key": _keys,
    "email": _emails,
    "iban": _ibans,
    "card": _cards,
    "ip": _ips,
    "phone": _phones,
    "address": _addresses,
}

# ---- the interface ----------------------------------------------------------------------------


def parse_kinds(value: str | Iterable[str]) -> frozenset[str]:
    """GTW_REDACT's value: "all" (or an empty string: the default), "none", or a comma list of
    KINDS; or a list of kinds, taken as it is (an empty list redacts nothing). Raises ValueError
    naming an unknown kind."""
    if not isinstance(value, str):
        items = [str(v).strip().lower() for v in value]
        unknown = sorted(set(items) - set(KINDS))
        if unknown:
            raise ValueError(
                f"unknown redaction kind(s) {', '.join(unknown)} — use some of {', '.join(KINDS)}"
            )
        return frozenset(items)
    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    if not items or items == ["all"]:
        return frozenset(KINDS)
    if items == ["none"]:
        return frozenset()
    unknown = sorted(set(items) - set(KINDS))
    if unknown:
        raise ValueError(
            f"unknown redaction kind(s) {', '.join(unknown)} — use all, none, or some of {', '.join(KINDS)}"
        )
    return frozenset(items)


def find(text: str, kinds: Iterable[str] = KINDS) -> list[Span]:
    """The PII spans in `text`, in order, none overlapping."""
    if not text:
        return []
    wanted = set(kinds)
    found: list[Span] = []
    for kind in KINDS:
        if kind in wanted:
            found += [Span(start, end, kind) for start, end in _DETECTORS[kind](text) if end > start]
    order = {kind: i for i, kind in enumerate(KINDS)}
    # Higher-priority kind first, then the longer match: it claims its characters.
    found.sort(key=lambda s: (order[s.kind], -(s.end - s.start), s.start))
    taken: list[Span] = []
    for span in found:
        if all(span.end <= t.start or span.start >= t.end for t in taken):
            taken.append(span)
    return sorted(taken)


def redact(text: str, kinds: Iterable[str] = KINDS) -> str:
    """`text` with each PII span replaced by its placeholder."""
    if not text or not kinds:
        return text
    spans = find(text, kinds)
    if not spans:
        return text
    out: list[str] = []
    at = 0
    for span in spans:
        out.append(text[at : span.start])
        out.append(PLACEHOLDERS[span.kind])
        at = span.end
    out.append(text[at:])
    return "".join(out)


def redact_value(value: object, kinds: Iterable[str] = KINDS) -> object:
    """Strings inside JSON-like data (tool-call arguments), redacted; everything else as it was."""
    if isinstance(value, str):
        return redact(value, kinds)
    if isinstance(value, dict):
        return {k: redact_value(v, kinds) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, kinds) for v in value]
    return value


def redact_message(message: Any, kinds: Iterable[str]) -> Any:
    """A chat message (narrative.llm.base.Message, or any frozen dataclass shaped like it) with
    its text and its tool calls' arguments redacted. A tool result is JSON the game wrote: only
    its strings are redacted, so a dice total or a seed is never taken for a phone number."""
    kinds = frozenset(kinds)
    if not kinds:
        return message
    changes: dict[str, Any] = {
        "content": _redact_content(message.content, kinds, json_body=message.role == "tool")
    }
    calls = getattr(message, "tool_calls", ())
    if calls:
        changes["tool_calls"] = tuple(
            dataclasses.replace(
                call,
                arguments=redact_value(call.arguments, kinds),
                raw_arguments=redact(call.raw_arguments, kinds),
            )
            for call in calls
        )
    return dataclasses.replace(message, **changes)


def _redact_content(content: str, kinds: frozenset[str], *, json_body: bool) -> str:
    if not content:
        return content
    if json_body:
        try:
            value = json.loads(content)
        except ValueError:
            return redact(content, kinds)
        cleaned = redact_value(value, kinds)
        return content if cleaned == value else json.dumps(cleaned, ensure_ascii=False)
    return redact(content, kinds)


@dataclass(frozen=True)
class Policy:
    """What to redact, and whether local providers get it redacted too."""

    kinds: frozenset[str] = frozenset(KINDS)
    local: bool = False

    def for_destination(self, *, remote: bool) -> frozenset[str]:
        """The kinds to blank out of text sent to a provider (nothing for a local one unless
        GTW_REDACT_LOCAL)."""
        return self.kinds if (remote or self.local) else frozenset()


def configured() -> Policy:
    """The deployment's policy: GTW_REDACT / GTW_REDACT_LOCAL, or the defaults outside Django."""
    try:
        from django.conf import settings

        if not settings.configured:
            return Policy()
        return Policy(
            kinds=parse_kinds(getattr(settings, "GTW_REDACT", KINDS)),
            local=bool(getattr(settings, "GTW_REDACT_LOCAL", False)),
        )
    except ImportError:  # pragma: no cover - Django is always installed with the project
        return Policy()


# The per-campaign switch (issue 18): campaigns.safety registers how to read a campaign's kinds;
# this module stays free of Django models. None: no campaign-level choice, keep the site's.
_campaign_kinds: Callable[[int], Iterable[str] | None] | None = None


def register_campaign_kinds(resolver: Callable[[int], Iterable[str] | None]) -> None:
    global _campaign_kinds
    _campaign_kinds = resolver


def outbound_for(kinds: frozenset[str], campaign_id: int | None) -> frozenset[str]:
    """The kinds to redact from a campaign's text on its way to a provider: the campaign's own
    switch where it has one, else `kinds` (the adapter's, from GTW_REDACT). A destination that
    gets nothing redacted (a local provider without GTW_REDACT_LOCAL) stays so."""
    if not kinds or campaign_id is None or _campaign_kinds is None:
        return kinds
    try:
        chosen = _campaign_kinds(campaign_id)
    except Exception:  # noqa: BLE001 - never let a settings lookup send text unredacted: keep the site's kinds
        logging.getLogger(__name__).warning("campaign %s: redaction switch unreadable", campaign_id)
        return kinds
    return kinds if chosen is None else frozenset(chosen)


def is_local_url(url: str | None) -> bool:
    """Whether a provider's base URL points at this machine or the private network (Ollama on
    localhost, vLLM on the LAN, a docker service name), where text never leaves the site."""
    if not url:
        return False
    try:
        host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan", ".home.arpa")):
        return True
    if "." not in host and ":" not in host:
        return True  # a single-label name: a docker/compose service or a LAN host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (arguments merged in) and traceback.

    Put on handlers (settings.LOGGING's console): a handler's filters see every record that
    reaches it, propagated ones included. It never drops a record.
    """

    def __init__(self, name: str = "", kinds: Iterable[str] | None = None) -> None:
        super().__init__(name)
        self._kinds = frozenset(kinds) if kinds is not None else None

    def kinds(self) -> frozenset[str]:
        return self._kinds if self._kinds is not None else configured().kinds

    def filter(self, record: logging.LogRecord) -> bool:
        kinds = self.kinds()
        if not kinds:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string is logging's own error to report
            return True
        cleaned = redact(message, kinds)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, kinds)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, kinds)
        return True
