"""The `local` moderation provider: the curated lexicon (lexicon.py) over evasion-normalised text
(normalize.py), plus the PII detectors of gtw_site.redact for the privacy category. Offline, no
model, well under a millisecond a line. No Django of its own (gtw_site.redact reads the settings
when Django is set up)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from campaigns.safety.categories import Verdict
from campaigns.safety.classifiers import lexicon, normalize
from gtw_site import redact

# A score, not a probability: the lexicon either matched or not. Matches that needed company (a
# sexual term near a minor term) are as sure as the plain ones.
HIT = 0.9
# What the PII detectors must find for the privacy category: contact data and payment data of a
# real person (an IP address or an API-key-like string is not a person's privacy).
PRIVACY_KINDS = ("email", "phone", "card", "iban", "address")
# Lines and veils the table drew (issue 18 part 4): their own categories.
LINES, VEILS = "lines", "veils"
# Sub-categories imply their parent, as OpenAI's "violence/graphic" is also "violence".
IMPLIES = {"graphic_violence": "violence", "minors": "sexual"}


class LocalModeration:
    """classify(text, lines=…, veils=…) → Verdict."""

    name = "local"
    model = "lexicon-v1"

    def __init__(self, **_: object) -> None:
        self.rules = _RULES

    def classify(
        self,
        text: str,
        *,
        lines: Iterable[str] = (),
        veils: Iterable[str] = (),
        role: str = "user",
        redact_kinds: Iterable[str] | None = None,
    ) -> Verdict:
        """`role` and `redact_kinds` matter only to remote classifiers: text never leaves here."""
        scores: dict[str, float] = {}
        evidence: dict[str, str] = {}
        if not text:
            return Verdict(provider=self.name)
        forms = [lexicon.blank_idioms(v) for v in normalize.variants(text)]
        for rule in self.rules:
            if rule.category in scores:
                continue
            for form in forms:
                match = rule.terms.search(form)
                if match is None:
                    continue
                if rule.near is not None and not rule.near.search(form):
                    continue
                if rule.unless is not None and rule.unless.search(form):
                    continue
                scores[rule.category] = HIT
                evidence[rule.category] = match.group(0).strip()[:80]
                break
        for child, parent in IMPLIES.items():
            if child in scores and parent not in scores:
                scores[parent] = scores[child]
                evidence[parent] = evidence[child]
        if "privacy" not in scores:
            spans = redact.find(text, PRIVACY_KINDS)
            if spans:
                scores["privacy"] = HIT
                evidence["privacy"] = f"[{spans[0].kind}]"  # never the data itself
        table_scores, table_evidence = table_terms(text, lines=lines, veils=veils, forms=forms)
        scores.update(table_scores)
        evidence.update(table_evidence)
        return Verdict(scores=scores, evidence=evidence, provider=self.name)


def table_terms(
    text: str, *, lines: Iterable[str] = (), veils: Iterable[str] = (), forms: list[str] | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """The table's lines and veils found in `text` (every provider runs this: a remote classifier
    has never heard of this table's lines)."""
    if forms is None:
        forms = [lexicon.blank_idioms(v) for v in normalize.variants(text)] if (lines or veils) else []
    scores: dict[str, float] = {}
    evidence: dict[str, str] = {}
    for category, phrases in ((LINES, lines), (VEILS, veils)):
        hit = _phrase_hit(forms, phrases)
        if hit:
            scores[category] = HIT
            evidence[category] = hit[:80]
    return scores, evidence


def _phrase_hit(forms: list[str], phrases: Iterable[str]) -> str:
    for phrase in phrases or ():
        if not isinstance(phrase, str):
            continue
        pattern = _phrase_pattern(phrase)
        if pattern is not None and any(pattern.search(form) for form in forms):
            return phrase
    return ""


@functools.lru_cache(maxsize=2048)
def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    """A line's or veil's pattern, built once per distinct text, not once per moderated sentence
    (it was half a sentence's check). Keyed by the text itself, so a line added, edited or
    removed simply asks for (or stops asking for) another key: nothing to invalidate."""
    return lexicon.phrase_pattern(normalize.base(phrase))


_RULES = lexicon.compile_rules()
