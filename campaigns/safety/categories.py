"""The fixed list of content categories, what each vendor's labels map to, and the actions a
campaign can take on each. Pure: no Django.

Every classifier, local or remote, answers in these categories; a campaign's policy maps each to
one action. The vendor mappings are written down here, once:

- OpenAI's moderation categories (omni-moderation / text-moderation), e.g. "violence/graphic";
- Llama Guard 3's hazard codes S1-S14 (the MLCommons taxonomy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# allow: nothing happens; soften: the narrator is told to keep it off-screen / tone it down;
# hold: a human (the GM, a stage moderator) approves it before the table sees it; block: refused.
ALLOW, SOFTEN, HOLD, BLOCK = "allow", "soften", "hold", "block"
ACTIONS = (ALLOW, SOFTEN, HOLD, BLOCK)
SEVERITY = {ALLOW: 0, SOFTEN: 1, HOLD: 2, BLOCK: 3}

CATEGORIES: dict[str, str] = {
    "violence": "Violence: fights, threats, killing (the stuff of a war story)",
    "graphic_violence": "Graphic violence: gore, torture, mutilation in detail",
    "sexual": "Sexual content",
    "minors": "Sexual content involving minors",
    "self_harm": "Self-harm and suicide (real, not a character's heroics)",
    "hate": "Hate against real groups of people: slurs, dehumanising, calls for violence",
    "harassment": "Harassment of a real person at the table: abuse, threats, 'kill yourself'",
    "illicit": "Real-world crime how-tos: drugs, fraud, break-ins",
    "weapons": "Real-world weapons of mass harm: how to build bombs, chemical or biological agents",
    "privacy": "Private data about real people: addresses, phone numbers, doxxing",
    "defamation": "Defamation of real people",
    "specialized_advice": "Specialised medical, legal or financial advice",
    "intellectual_property": "Copyright infringement",
    "elections": "Election misinformation",
    "code_abuse": "Code-interpreter abuse",
    # The table's own (issue 18 part 4: lines and veils, kept by narrative.tablesafety).
    "lines": "A line the table drew: it never appears",
    "veils": "A veil the table drew: it happens off screen",
}

# The site's defaults (GTW_SAFETY_DEFAULTS overrides them; a content pack's `safety` block and then
# the GM override those): tuned for a sci-fi adventure where fights are the point.
DEFAULT_ACTIONS: dict[str, str] = {
    "violence": ALLOW,
    "graphic_violence": SOFTEN,
    "sexual": HOLD,
    "minors": BLOCK,
    "self_harm": HOLD,
    "hate": HOLD,
    "harassment": HOLD,
    "illicit": SOFTEN,
    "weapons": HOLD,
    "privacy": HOLD,
    "defamation": ALLOW,
    "specialized_advice": ALLOW,
    "intellectual_property": ALLOW,
    "elections": ALLOW,
    "code_abuse": ALLOW,
    "lines": HOLD,
    "veils": SOFTEN,
}

# OpenAI moderation category → ours.
OPENAI_MAP: dict[str, str] = {
    "harassment": "harassment",
    "harassment/threatening": "harassment",
    "hate": "hate",
    "hate/threatening": "hate",
    "illicit": "illicit",
    "illicit/violent": "weapons",
    "self-harm": "self_harm",
    "self-harm/intent": "self_harm",
    "self-harm/instructions": "self_harm",
    "sexual": "sexual",
    "sexual/minors": "minors",
    "violence": "violence",
    "violence/graphic": "graphic_violence",
}

# Llama Guard 3 hazard code → ours (S1-S14 of the MLCommons AI Safety taxonomy).
LLAMA_GUARD_MAP: dict[str, str] = {
    "S1": "violence",  # Violent Crimes
    "S2": "illicit",  # Non-Violent Crimes
    "S3": "sexual",  # Sex-Related Crimes
    "S4": "minors",  # Child Sexual Exploitation
    "S5": "defamation",  # Defamation
    "S6": "specialized_advice",  # Specialized Advice
    "S7": "privacy",  # Privacy
    "S8": "intellectual_property",  # Intellectual Property
    "S9": "weapons",  # Indiscriminate Weapons
    "S10": "hate",  # Hate
    "S11": "self_harm",  # Suicide & Self-Harm
    "S12": "sexual",  # Sexual Content
    "S13": "elections",  # Elections
    "S14": "code_abuse",  # Code Interpreter Abuse
}

# Llama Guard 3's own names for its codes, as its prompt lists them.
LLAMA_GUARD_NAMES: dict[str, str] = {
    "S1": "Violent Crimes.",
    "S2": "Non-Violent Crimes.",
    "S3": "Sex Crimes.",
    "S4": "Child Exploitation.",
    "S5": "Defamation.",
    "S6": "Specialized Advice.",
    "S7": "Privacy.",
    "S8": "Intellectual Property.",
    "S9": "Indiscriminate Weapons.",
    "S10": "Hate.",
    "S11": "Self-Harm.",
    "S12": "Sexual Content.",
    "S13": "Elections.",
    "S14": "Code Interpreter Abuse.",
}


class PolicyError(ValueError):
    """A category or action that does not exist."""


def check_actions(actions: Mapping[str, object]) -> dict[str, str]:
    """`actions` checked: every key a known category, every value a known action."""
    if not isinstance(actions, Mapping):
        raise PolicyError("categories must be an object of category → action")
    out: dict[str, str] = {}
    for category, action in actions.items():
        if category not in CATEGORIES:
            raise PolicyError(f"unknown category '{category}' (known: {', '.join(CATEGORIES)})")
        if action not in ACTIONS:
            raise PolicyError(f"unknown action '{action}' for {category} (choose: {', '.join(ACTIONS)})")
        out[str(category)] = str(action)
    return out


def resolve_actions(*layers: Mapping[str, str] | None) -> dict[str, str]:
    """DEFAULT_ACTIONS overridden by each layer in turn (site, pack, campaign)."""
    out = dict(DEFAULT_ACTIONS)
    for layer in layers:
        if layer:
            out.update(check_actions(layer))
    return out


@dataclass(frozen=True)
class Verdict:
    """What a classifier found: category → score in [0, 1], and the matched evidence (for the
    GM only; players never see scores)."""

    scores: Mapping[str, float] = field(default_factory=dict)
    evidence: Mapping[str, str] = field(default_factory=dict)
    provider: str = "local"
    threshold: float = 0.5

    @property
    def categories(self) -> list[str]:
        return sorted(c for c, s in self.scores.items() if s >= self.threshold)

    @property
    def flagged(self) -> bool:
        return bool(self.categories)


@dataclass(frozen=True)
class Decision:
    """A verdict under a campaign's policy: the strongest action any flagged category asks for."""

    action: str
    categories: tuple[str, ...]  # flagged categories whose action is not allow
    verdict: Verdict

    @property
    def allowed(self) -> bool:
        return self.action == ALLOW


def decide(verdict: Verdict, actions: Mapping[str, str]) -> Decision:
    worst = ALLOW
    hit: list[str] = []
    for category in verdict.categories:
        action = actions.get(category, DEFAULT_ACTIONS.get(category, ALLOW))
        if action != ALLOW:
            hit.append(category)
        if SEVERITY[action] > SEVERITY[worst]:
            worst = action
    return Decision(action=worst, categories=tuple(hit), verdict=verdict)


def merge(verdicts: Iterable[Verdict]) -> Verdict:
    scores: dict[str, float] = {}
    evidence: dict[str, str] = {}
    provider = "local"
    for v in verdicts:
        provider = v.provider
        for c, s in v.scores.items():
            if s > scores.get(c, 0.0):
                scores[c] = s
                if c in v.evidence:
                    evidence[c] = v.evidence[c]
    return Verdict(scores=scores, evidence=evidence, provider=provider)
