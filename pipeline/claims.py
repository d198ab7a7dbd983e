"""Claims: the checkable statements of a document, with exact offsets and attributes.

A document is segmented (`pipeline.segment`); statements become claims, while questions,
headings and attribution lines are kept in the `segments` table but are not claims. Compound
sentences that join independent statements are split conservatively (see `split_compound`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import yaml

from pipeline.ids import stable_id
from pipeline.segment import DEFAULT_MAX_SENTENCE_CHARS, segment_text

__all__ = [
    "ClaimSet",
    "Gazetteer",
    "detect_attribution",
    "extract_claims",
    "find_entities",
    "is_hedged",
    "is_quote",
    "load_gazetteer",
    "split_compound",
]


@dataclass(slots=True)
class ClaimSet:
    """Rows for the `segments` and `claims` tables of one document."""

    segments: list[dict[str, Any]]
    claims: list[dict[str, Any]]


def extract_claims(
    doc_id: str,
    text: str,
    *,
    max_chars: int = DEFAULT_MAX_SENTENCE_CHARS,
    gazetteer: Gazetteer | None = None,
) -> ClaimSet:
    """Segment a document and derive its claims.

    Args:
        doc_id: The document's id; part of every segment and claim id.
        text: The document's normalised text; all offsets index it.
        max_chars: Longest segment (see `split_sentences`).
        gazetteer: Entity gazetteer; the packaged one by default.

    Returns:
        Every segment (nothing of the text is lost) and the claims, both in text order.
    """
    gaz = gazetteer or load_gazetteer()
    segments: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    for position, seg in enumerate(segment_text(text, max_chars=max_chars)):
        seg_text = text[seg.start : seg.end]
        segment_id = stable_id("segment", doc_id, seg.start, seg.end, seg_text)
        segments.append(
            {
                "segment_id": segment_id,
                "doc_id": doc_id,
                "kind": seg.kind,
                "paragraph": seg.paragraph,
                "position": position,
                "text": seg_text,
                "char_start": seg.start,
                "char_end": seg.end,
            }
        )
        if seg.kind != "statement":
            continue
        sentence_attribution = detect_attribution(seg_text)
        sentence_quote = is_quote(seg_text)
        for start, end in split_compound(text, seg.start, seg.end):
            claim_text = text[start:end]
            whole = (start, end) == (seg.start, seg.end)
            claims.append(
                {
                    "claim_id": stable_id("claim", doc_id, start, end, claim_text),
                    "doc_id": doc_id,
                    "text": claim_text,
                    "char_start": start,
                    "char_end": end,
                    "sentence_id": segment_id,
                    "position": len(claims),
                    "paragraph": seg.paragraph,
                    "is_hedged": is_hedged(claim_text),
                    "is_quote": sentence_quote,
                    "attributed_to": sentence_attribution
                    if whole
                    else detect_attribution(claim_text) or sentence_attribution,
                    "entities": find_entities(claim_text, gaz),
                }
            )
    return ClaimSet(segments, claims)


# --- compound sentences --------------------------------------------------------------------------

_SUBJECT: Final = (
    r"(?:I|we|you|he|she|it|they|this|that|these|those|there|the\s+\w+|its\s+\w+|their\s+\w+|"
    r"[A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)*)"
)
_FINITE: Final = (
    r"(?:is|are|was|were|has|have|had|will|would|can|could|may|might|must|should|shall|does|do|"
    r"did|remains?|seems?|appears?|continues?|\w+(?:s|ed))"
)
# A split point: a conjunction that opens a clause with its own subject and finite verb.
_SPLIT: Final = re.compile(
    rf"(?:,\s+(?:while|whereas|and|but|yet)|;)\s+(?={_SUBJECT}\s+(?:\w+\s+){{0,2}}{_FINITE}\b)"
)
_NOT_ONLY: Final = re.compile(r"\bnot only\b(.+?),?\s+\bbut also\b", re.S)
_VERB_HINT: Final = re.compile(rf"\b{_FINITE}\b")
_MIN_PART_WORDS: Final = 4


def split_compound(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split one sentence span into independent statements.

    Splits at ``, while``/``, whereas``/``, and``/``, but``/``; `` when a new subject and a
    finite verb follow, so each part stands alone. Parts without a verb, or shorter than four
    words, are never cut off: the split is conservative. "not only ... but also" constructions
    usually share one subject and are left whole.

    Returns:
        Spans (trimmed of whitespace and the joining punctuation) covering the sentence.
    """
    sentence = text[start:end]
    cuts = [m for m in _SPLIT.finditer(sentence)]
    if not cuts:
        return [(start, end)]
    spans: list[tuple[int, int]] = []
    prev = 0
    for m in cuts:
        left = sentence[prev : m.start()]
        right_start = m.end()
        if _is_clause(left) and _is_clause(sentence[right_start:]):
            spans.append((start + prev, start + m.start()))
            prev = right_start
    spans.append((start + prev, end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[1] > s[0]]


def _is_clause(part: str) -> bool:
    words = part.split()
    return len(words) >= _MIN_PART_WORDS and _VERB_HINT.search(part) is not None


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a] in " \t\n,;":
        a += 1
    while b > a and text[b - 1] in " \t\n,;":
        b -= 1
    return a, b


# --- attributes ----------------------------------------------------------------------------------

_HEDGE: Final = re.compile(
    r"\b(?:may|might|could|likely|unlikely|possibly|perhaps|probably|potentially|apparently|"
    r"reportedly|allegedly|presumably|appears?\s+to|seems?\s+to|is\s+(?:thought|believed|said)\s+to|"
    r"suggests?|suggested|it\s+is\s+(?:possible|unclear))\b",
    re.I,
)
_SPEECH_VERB: Final = (
    r"(?:say|says|said|suggest|suggests|suggested|note|notes|noted|argue|argues|argued|believe|"
    r"believes|believed|claim|claims|claimed|warn|warns|warned|told|tell|tells|state|states|stated|"
    r"add|adds|added|insist|insists|insisted|contend|contends|maintain|maintains|assert|asserts|"
    r"asserted|estimate|estimates|fear|fears|predict|predicts|point\s+out|points\s+out|observe|"
    r"observes|observed|report|reports|reported|announce|announced|acknowledge|acknowledged)"
)
_SPEAKER: Final = (
    r"(?P<who>(?:many\s+|some\s+|western\s+|foreign\s+|independent\s+|senior\s+|government\s+)?"
    r"(?:analysts|observers|experts|officials|critics|diplomats|economists|commentators|"
    r"scholars|sources|investors|researchers|historians|spokesmen)|"
    r"[Tt]he\s+(?:[A-Z][\w-]*\s+){0,5}(?:spokesman|spokeswoman|spokesperson|minister|ministry|"
    r"president|prime\s+minister|official|ambassador|government|kremlin|embassy|office|"
    r"foreign\s+ministry\s+spokesman)|"
    r"(?:[A-Z][\w’'.-]+\s+){0,3}[A-Z][\w’'-]+)"
)
_ATTRIB_PATTERNS: Final = (
    re.compile(
        r"\baccording\s+to\s+(?P<who>(?:the\s+)?[\w’'.-]+(?:\s+(?!that\b)[\w’'.-]+){0,5}?)"
        r"(?=[,.;]|\s+(?:in|on|at|who|which)\b|$)",
        re.I,
    ),
    re.compile(
        rf"(?:^|[,;:]\s*|\b)(?<![\w-]){_SPEAKER}\s+(?:have\s+|had\s+|also\s+)?{_SPEECH_VERB}\b"
    ),
    re.compile(rf"[,”\"]\s*{_SPEECH_VERB}\s+(?P<who>(?:[A-Z][\w’'.-]+\s*){{1,4}})"),
)
_NOT_SPEAKERS: Final = frozenset(
    {"it", "this", "that", "he", "she", "they", "we", "i", "there", "which", "who", "both", "one"}
)
# The quoted text cannot hold another opening quote: each match attempt then stops at the next
# quote mark, so a run of opening quotes costs linear time, not quadratic per sentence.
_QUOTED: Final = re.compile(r"[“\"]([^“”\"]{3,})[”\"]")


def is_hedged(text: str) -> bool:
    """Whether a claim is hedged (may, might, could, likely, appears to...)."""
    return _HEDGE.search(text) is not None


def is_quote(text: str) -> bool:
    """Whether a claim is or contains a direct quotation of at least three words."""
    return any(len(m.group(1).split()) >= 3 for m in _QUOTED.finditer(text))


def detect_attribution(text: str) -> str | None:
    """Who a claim is attributed to: "analysts", "the Foreign Ministry spokesman", a name."""
    for pattern in _ATTRIB_PATTERNS:
        for m in pattern.finditer(text):
            who = " ".join(m.group("who").split()).strip(" ,.;:")
            first = who.split(" ", 1)[0].lower()
            if who and first not in _NOT_SPEAKERS and not who.lower().startswith(("as ", "in ")):
                return "the " + who[4:] if who.startswith("The ") else who
    return None


# --- entities ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gazetteer:
    """Compiled alias matcher: alias text -> canonical entity name."""

    pattern: re.Pattern[str]
    canonical: dict[str, str]


@functools.cache
def load_gazetteer(path: str | None = None) -> Gazetteer:
    """Load the gazetteer (packaged by default) and add every pycountry country name."""
    import pycountry

    if path is None:
        raw = resources.files("pipeline").joinpath("data/gazetteer.yaml").read_text("utf-8")
    else:
        with open(path, encoding="utf-8") as fh:
            raw = fh.read()
    data = yaml.safe_load(raw)
    canonical: dict[str, str] = {}
    for country in pycountry.countries:
        name = getattr(country, "common_name", None) or country.name
        if "," not in name:  # "Korea, Republic of" is matched through the curated list
            canonical[name] = name
            canonical.setdefault(country.name, name)
    for section in ("countries", "organisations", "regions"):
        for name, aliases in (data.get(section) or {}).items():
            for alias in [name, *aliases]:
                canonical[alias] = name
    # Longest alias first, so "Russian Federation" wins over "Russian".
    alternatives = "|".join(re.escape(a) for a in sorted(canonical, key=len, reverse=True))
    return Gazetteer(re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w])"), canonical)


def find_entities(text: str, gazetteer: Gazetteer) -> list[str]:
    """Canonical names of the countries, organisations and regions a text mentions, sorted."""
    return sorted({gazetteer.canonical[m.group(0)] for m in gazetteer.pattern.finditer(text)})
