"""Checks a reader would accept: two similar claims are the same claim only if nothing contradicts.

A candidate pair (two claims whose embeddings are close) is refused when the claims disagree on
something a fact-checker would check:

* **quantities**: both state a quantity of the same kind (same unit, same counted noun, a date,
  a year) and no value on one side is compatible with the other's. Values are intervals:
  "617" is 617 give or take one unit of its last digit, "more than 600" is (600, 900],
  "nearly 700" is [665, 700], "about 300" is 300 ± 5%, "up to 10" and "at least 10" are
  bounds that must not merely touch. Lengths, masses and durations are converted ("8 metres" =
  "25 feet", "a week" = "seven days", "up to a year" = "12 months") and then compared within 10%.
* **negation**: one claim's own assertion is denied ("did not", "never", "failed to",
  "denied", "barred from entering"...) and the other has no denial at all ("signed" vs
  "failed to sign"). A denial only inside a subordinate clause does not make a claim negated,
  but it does keep the other claim's denial from refusing the pair: the two may share exactly
  that clause ("because we have not seen a turn, we act" / "we have not seen a turn").
* **dates**: both name a calendar day and the days differ ("June 27" vs "July 27").
* **actors**: both name countries or organisations (the gazetteer of `claims.entities`) and
  not one of them is the same ("Russia vetoed the resolution" vs "China vetoed the resolution").

What is checked and why is documented in docs/matching.md; the rules are deliberately few and
readable rather than learned.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from pipeline.claims import find_entities, load_gazetteer

__all__ = [
    "CHECKS_VERSION",
    "Facts",
    "Quantity",
    "conflict",
    "content_words",
    "extract_facts",
    "word_overlap",
]

# Part of the match key: a change of what the checks refuse rebuilds every match and cluster.
CHECKS_VERSION: Final = 3

_WORD_NUMBERS: Final = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100,
}  # fmt: skip
_MULTIPLIERS: Final = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9,
    "b": 1e9, "trillion": 1e12, "tn": 1e12,
}  # fmt: skip
# Units that convert: unit -> (dimension, factor to the dimension's base unit).
_UNITS: Final = {
    "metre": ("length", 1.0), "meter": ("length", 1.0), "m": ("length", 1.0),
    "kilometre": ("length", 1e3), "kilometer": ("length", 1e3), "km": ("length", 1e3),
    "mile": ("length", 1609.34), "foot": ("length", 0.3048), "feet": ("length", 0.3048),
    "ft": ("length", 0.3048), "yard": ("length", 0.9144),
    "kilogram": ("mass", 1.0), "kg": ("mass", 1.0), "tonne": ("mass", 1e3), "ton": ("mass", 1e3),
    "pound": ("mass", 0.4536), "lb": ("mass", 0.4536),
    "second": ("time", 1 / 86400), "minute": ("time", 1 / 1440), "hour": ("time", 1 / 24),
    "day": ("time", 1.0), "week": ("time", 7.0), "fortnight": ("time", 14.0),
    "month": ("time", 30.44), "year": ("time", 365.25), "decade": ("time", 3652.5),
    "%": ("percent", 1.0), "percent": ("percent", 1.0),
}  # fmt: skip
_MONTHS: Final = {
    m: i + 1
    for i, names in enumerate(
        ("jan january", "feb february", "mar march", "apr april", "may", "jun june",
         "jul july", "aug august", "sep sept september", "oct october", "nov november",
         "dec december")
    )
    for m in names.split()
}  # fmt: skip
_UPPER: Final = ("up to", "as many as", "as much as", "less than", "fewer than", "under",
                 "no more than", "at most", "nearly", "almost")  # fmt: skip
_LOWER: Final = ("more than", "over", "at least", "no less than", "upwards of", "above")
_ABOUT: Final = ("about", "around", "roughly", "approximately", "some", "an estimated",
                 "estimated", "circa", "close to")  # fmt: skip
_QUALIFIER: Final = "|".join(
    re.escape(q) for q in sorted((*_UPPER, *_LOWER, *_ABOUT), key=len, reverse=True)
)
_NUMBER_WORD: Final = "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True))
_QUANTITY: Final = re.compile(
    rf"(?:\b(?P<qual>{_QUALIFIER})\s+)?"
    r"(?P<cur>[$€£¥])?\s?"
    rf"(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|\b(?:{_NUMBER_WORD})\b)"
    r"(?:\s?(?P<mult>thousand|million|billion|trillion|bn|mn|tn|[kmb])\b)?"
    r"(?:\s?-\s?|\s)?(?:(?:new|more|other|additional|extra|further|fresh)\s+)?"
    r"(?P<unit>%|percent\b|per\s?cent\b|[A-Za-z][a-z]+)?",
    re.IGNORECASE,
)
_DATE: Final = re.compile(
    r"\b(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)[a-z]*\.?\s+(?P<day>\d{1,2})\b",
    re.IGNORECASE,
)
# A weekday names the day of the event in news copy ("drove them out on Wednesday"); two claims
# naming different days report different events, whichever day each article was written.
_WEEKDAY: Final = re.compile(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b")
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Sentential negation: "not" on an auxiliary or copula ("did not", "has still not", "we've
# not"); a "not" elsewhere negates one word or phrase ("freedoms not found on the mainland",
# "athletes and not neutrals") rather than the claim; "not to" and "not" on a gerund deny an
# action ("decided not to retaliate", "by not restating"). Other negators count wherever they are,
# and so do verbs that say "not" ("barred from entering" is "could not enter").
_AUXILIARY: Final = (
    r"(?:\b(?:am|is|are|was|were|be|been|do|does|did|have|has|had|will|would|shall|should|"
    r"can|could|may|might|must|need)|['’](?:s|re|ve|d|ll|m))"
)
_NEGATION: Final = re.compile(
    rf"{_AUXILIARY}(?:\s+[a-z]+ly|\s+(?:still|also|yet|even|just|ever))?\s+not\b|n[’']t\b|"
    r"\bnot\s+(?:to\b|[a-z]+ing\b)|"
    r"\b(?:never|no|none|nobody|nothing|neither|nor|without|cannot|unable to|"
    r"fail(?:s|ed)? to|refus(?:es|ed) to|declin(?:es|ed) to|den(?:y|ies|ied)|"
    r"(?:bar(?:s|red)?|ban(?:s|ned)?|prevent(?:s|ed)?|prohibit(?:s|ed)?|block(?:s|ed)?|"
    r"stop(?:s|ped)?|kept)\b[^,;]{0,40}?\bfrom\s+[a-z]+ing)\b",
    re.IGNORECASE,
)
# A subordinate clause runs from its conjunction to the next comma or semicolon.
_SUBORDINATE: Final = re.compile(
    r"\b(?:after|because|since|although|though|while|whereas|despite|unless|until|before|"
    r"when|if|whether|which|whose)\b[^,;]*",
    re.IGNORECASE,
)
# Negation words that belong to a quantifier ("no more than", "not only", "all or none") or
# cancel out ("would not have happened without", litotes): not a denial of the assertion.
_NOT_NEGATION: Final = re.compile(
    r"\b(?:no|not) (?:more|less|[a-z]+er) than\b|"
    r"\bnot (?:only|least|just|merely)\b|\bno doubt\b|"
    r"\b(?:all|some|any),? (?:or|and) (?:none|nothing)\b|"
    r"(?:\bnot|\bnever|n[’']t)\b[^,;]*?\bwithout\b",
    re.IGNORECASE,
)
_YEAR: Final = re.compile(r"^(?:1[89]|20)\d\d$")
_THE: Final = re.compile(r"\bthe\s+$", re.IGNORECASE)
_NEXT_WORD: Final = re.compile(r"\s+([a-z]+)")
# Words after a number that say nothing about what it counts ("in 2013", "10 to 20").
_NOT_UNITS: Final = frozenset(
    "a an and as at by for from in into of on or per than that the to when where which who "
    "with was were is are has have had will would since after before during last this next "
    "over under about around up down its their his her our".split()
)
_RELATIVE_TOLERANCE: Final = 0.10  # converted units: 1,250 miles is 2,012 km, "2,000 km"
_ABOUT_TOLERANCE: Final = 0.05
_LOWER_SPAN: Final = 1.5  # "more than 20" covers up to 30
_UPPER_SPAN: Final = 0.5  # "up to 20" covers 10 to 20


@dataclass(frozen=True, slots=True)
class Quantity:
    """A stated value as an interval, with what it counts or measures."""

    kind: str  # "length", "money:$", "date", "year", or a counted noun ("points", "jobs")
    low: float
    high: float
    bound: str  # "exact", "upper", "lower" or "about"
    spelled: bool = False  # written in words ("two systems", "a week")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the checks compare, extracted once per claim."""

    quantities: tuple[Quantity, ...]
    negated: bool  # the claim's own assertion denies something
    actors: frozenset[str] = frozenset()
    any_negation: bool = False  # a denial anywhere, subordinate clauses included


def _singular(word: str) -> str:
    word = word.lower()
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _number(text: str) -> tuple[float, float]:
    """A number and the size of one unit in its last digit ("2.4" -> 2.4, 0.1)."""
    word = _WORD_NUMBERS.get(text.lower())
    if word is not None:
        return float(word), 0.0 if word < 20 else 1.0
    digits = text.replace(",", "")
    decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
    return float(digits), 10.0**-decimals


def _counted_after_name(m: re.Match[str], name: str) -> str:
    """What a number followed by a capitalised word counts, if anything.

    A demonym or country adjective is skipped for the noun after it ("38 Russian people");
    a capitalised plural is what is counted ("57 Canadians", "23 Britons"); any other
    capitalised word starts a name ("Boeing 737 Max"): nothing is counted.
    """
    if name in load_gazetteer().canonical:
        after = _NEXT_WORD.match(m.string, m.end(), m.end() + 40)
        if after and after.group(1) not in _NOT_UNITS:
            return after.group(1)
        return name.lower()
    return name.lower() if name.endswith("s") and not name.endswith("ss") else ""


def _quantity(m: re.Match[str]) -> Quantity | None:
    raw, unit_word = m.group("num"), (m.group("unit") or "")
    article = raw.lower() in ("a", "an")
    if article and not m.group("mult") and _singular(unit_word) not in _UNITS:
        return None  # "a frantic effort" counts nothing; "a week" and "a million" do
    if raw.lower() == "one" and unit_word.lower() in _NOT_UNITS | {""}:
        return None  # "one of", "one" alone: a pronoun
    value, step = _number(raw)
    spelled = raw.lower() in _WORD_NUMBERS
    mult = _MULTIPLIERS.get((m.group("mult") or "").lower(), 1.0)
    value, step = value * mult, step * mult
    if unit_word[:1].isupper() and not unit_word.isupper():
        year = _YEAR.match(raw) is not None and mult == 1.0
        if year and _THE.search(m.string, max(0, m.start("num") - 8), m.start("num")):
            return None  # "the 2014 Sochi Games": the year is part of an event's name
        # "38 Russian people" counts people, "23 Russians" Russians; "Boeing 737 Max" and
        # "in 2014 Russia" name things: no unit.
        unit_word = "" if year else _counted_after_name(m, unit_word)
    unit = _singular(unit_word.replace(" ", "")) if unit_word else ""
    unit = "" if unit in _NOT_UNITS else unit
    unit = "percent" if unit in ("percent", "percentage", "percentagepoint") else unit
    qual = (m.group("qual") or "").lower()
    if m.group("cur"):
        kind, factor = f"money:{m.group('cur')}", 1.0
    elif unit in _UNITS:
        kind, factor = _UNITS[unit]
    elif not unit and mult == 1.0 and _YEAR.match(raw) and not qual:
        return Quantity("year", value, value, "exact")
    else:
        kind, factor = unit or "", 1.0
    value, step = value * factor, step * factor
    if qual in _UPPER:
        # A bound says something about values near it: "up to 20%" is not a claim of 3.7%.
        share = 1 - _ABOUT_TOLERANCE if qual in ("nearly", "almost") else _UPPER_SPAN
        return Quantity(kind, value * share, value, "upper", spelled)
    if qual in _LOWER:
        return Quantity(kind, value, value * _LOWER_SPAN, "lower", spelled)
    if qual in _ABOUT:
        low, high = value * (1 - _ABOUT_TOLERANCE), value * (1 + _ABOUT_TOLERANCE)
        return Quantity(kind, low, high, "about", spelled)
    return Quantity(kind, value - step, value + step, "exact", spelled)


def extract_facts(text: str) -> Facts:
    """The quantities, dates and polarity of one claim."""
    quantities: list[Quantity] = []
    dated: list[tuple[int, int]] = []
    for m in _DATE.finditer(text):
        day = int(m.group("day"))
        if 1 <= day <= 31:
            month = _MONTHS[m.group("month").lower()]
            quantities.append(Quantity("date", month * 32 + day, month * 32 + day, "exact"))
            dated.append(m.span("day"))
    for m in _WEEKDAY.finditer(text):
        weekday = _WEEKDAYS.index(m.group(1))
        quantities.append(Quantity("weekday", weekday, weekday, "exact"))
    for m in _QUANTITY.finditer(text):
        if any(a <= m.start("num") < b for a, b in dated):
            continue
        q = _quantity(m)
        if q is not None:
            quantities.append(q)
    plain = _NOT_NEGATION.sub(" ", text)
    return Facts(
        tuple(quantities),
        _NEGATION.search(_SUBORDINATE.sub(" ", plain)) is not None,
        frozenset(find_entities(text, load_gazetteer())),
        _NEGATION.search(plain) is not None,
    )


def _compatible(a: Quantity, b: Quantity) -> bool:
    converted = a.kind in ("length", "mass", "time")
    low_a, high_a, low_b, high_b = a.low, a.high, b.low, b.high
    if converted:
        low_a, high_a = low_a * (1 - _RELATIVE_TOLERANCE), high_a * (1 + _RELATIVE_TOLERANCE)
    overlap = min(high_a, high_b) - max(low_a, low_b)
    if overlap > 0 or (overlap == 0 and "exact" in (a.bound, b.bound)):
        return not ({a.bound, b.bound} == {"upper", "lower"} and math.isclose(overlap, 0.0))
    return False


def _quantity_conflict(a: Facts, b: Facts) -> str | None:
    kinds = {q.kind for q in a.quantities} & {q.kind for q in b.quantities}
    for kind in sorted(kinds - {""}):
        qa = [q for q in a.quantities if q.kind == kind]
        qb = [q for q in b.quantities if q.kind == kind]
        fewer, other = (qa, qb) if len(qa) <= len(qb) else (qb, qa)
        for q in fewer:
            if not any(_compatible(q, o) for o in other):
                return "date" if kind in ("date", "weekday") else "quantity"
    return None


def _disjoint_quantities(a: Facts, b: Facts) -> bool:
    """Both state amounts and not one value is shared: they report different figures.

    Compared across counted nouns ("210 wealthy Russians" is "more than 200 Russians"), but
    not across measures (a length is never a sum of money). Years, dates, bare numbers
    ("Boeing 737", "Flight 752": names more often than figures) and numbers in words ("one
    country, two systems", "a week": rarely the figure a claim reports) are left out.
    """
    dates = ("", "year", "date", "weekday")
    qa = [q for q in a.quantities if q.kind not in dates and not q.spelled]
    qb = [q for q in b.quantities if q.kind not in dates and not q.spelled]
    if not qa or not qb:
        return False
    measures = {"length", "mass", "time", "percent"}

    def comparable(x: Quantity, y: Quantity) -> bool:
        if x.kind in measures or y.kind in measures or x.kind.startswith("money"):
            return x.kind == y.kind
        return True

    return not any(comparable(x, y) and _compatible(x, y) for x in qa for y in qb)


def conflict(a: Facts, b: Facts) -> str | None:
    """Why two claims cannot be the same claim, or None.

    Reasons: "negation", "actors" (both name countries or organisations, none in common),
    "date", "quantity" (the same kind of quantity with incompatible values) or "figures"
    (both state figures and share none).
    """
    if (a.negated and not b.any_negation) or (b.negated and not a.any_negation):
        return "negation"
    if a.actors and b.actors and not a.actors & b.actors:
        return "actors"
    reason = _quantity_conflict(a, b)
    if reason is None and _disjoint_quantities(a, b):
        return "figures"
    return reason


_WORD: Final = re.compile(r"[a-z0-9]+")
_STEM_CHARS: Final = 6  # "sanctions" and "sanctioned" share a stem; cheap and language-blind


def content_words(text: str) -> frozenset[str]:
    """Stems of a claim's content words (no stop words, three letters or more)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(
        w[:_STEM_CHARS]
        for w in _WORD.findall(text.lower())
        if len(w) > 2 and w not in ENGLISH_STOP_WORDS
    )


def word_overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the shorter claim's content words that the other claim has too."""
    return len(a & b) / max(1, min(len(a), len(b)))
