"""Sentence segmentation and segment classification.

`split_sentences` is public API (data contract v1): it returns character spans into the text it is
given, with surrounding whitespace excluded, so every downstream row can cite its exact source.

The splitter is rule based. A regex finds candidate terminators; each candidate is then judged by
the token before it (abbreviation, initial, acronym, number) and the text after it (lower case,
a capitalised sentence starter, a list marker). Line breaks are judged separately: a line without
final punctuation is a unit of its own (headings, list lines) unless it is soft-wrapped prose.
The rules follow the English Golden Rules of pragmatic_segmenter; see docs/segmentation.md.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "DEFAULT_MAX_SENTENCE_CHARS",
    "Segment",
    "SegmentKind",
    "classify_segment",
    "segment_text",
    "split_sentences",
]

DEFAULT_MAX_SENTENCE_CHARS: Final = 1000

# Abbreviations that precede a name: a period after them never ends a sentence.
_PREPOSITIVE: Final = frozenset(
    """mr mrs ms mssrs messrs mme mlle dr prof gen sen sens rep reps gov lt col capt cpt sgt cpl
    pvt maj brig adm cmdr cdr gen st mt ft fr rev hon pres supt insp det atty amb ste sr sra
    no nos nr vol vols pp fig figs art sec ch op n° nº""".split()
)
# Abbreviations that can also end a sentence: a period after them ends one only when the next
# word is a typical sentence starter ("Briggs & Co. It closed" vs "the U.S. Government").
_POSTPOSITIVE: Final = frozenset(
    """co corp inc ltd llc plc bros jr sr esq etc al vs approx est dept univ assn govt intl
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun
    a.m p.m am pm u.s u.s.a u.k u.n e.u u.a.e d.c l.a n.y e.g i.e cf ca viz p.s a.d b.c
    ave blvd rd hwy mph kg km cm mm lb lbs oz ft yd mi min max hr hrs sq dist""".split()
)
# Capitalised words that usually open a sentence; after an ambiguous abbreviation they tip the
# decision towards a boundary. Proper nouns ("Government", "Smith") are deliberately absent.
_STARTERS: Final = frozenset(
    """a an the this that these those it its he she they we i you his her their our my your there
    here but and or so yet nor however meanwhile moreover furthermore nevertheless still then now
    in on at for from by with as after before when while if although though because since
    what who whom whose why how where which did do does is are was were will would can could
    should shall may might must has have had many some most all both each one two three no not
    also even only just such other others several any every neither either once today yesterday
    tomorrow last next according despite during under over into instead thus hence therefore
    mr mrs ms dr let""".split()
)
_TIME_FRONT: Final = re.compile(
    r"^(?:at|by|before|after|until|till|around|about|from|since|between)\s+\S+\s*$", re.I
)

# A single period glued to "X." ("U.S.", "e.g.", "world.A.") never ends a sentence (see
# `_judge_glued_period`); the lookahead skips it in the engine, since inputs such as "U.S. "
# repeated hold two such periods in every five characters.
_TERMINATOR: Final = re.compile(
    r"""(?P<ell>\.(?:[ ]\.){2,3}|\.{3,}|…)|(?!\.[A-Za-z]\.)(?P<term>[.!?‽]+)"""
    r"""(?P<close>["'”’)\]»]*)""",
)
_LIST_HINT: Final = re.compile(r"[\d•⁃▪◦‣]|\. ")
_CLOSERS: Final = "\"'”’)]»"
_OPENERS: Final = "\"'“‘([«"
# Linear on any input: every repetition is bounded or anchored, so a hostile line (100k chars
# of "a.b-" before an "@", or a URL followed by 100k dots) cannot make the engine backtrack over
# the whole line at every position. The bounds are those of real addresses: RFC 5321 allows 64
# characters before the "@" and 63 per domain label; URLs past 2,000 characters are not
# protected from sentence cuts (browsers refuse them).
_URL_OR_EMAIL: Final = re.compile(
    r"(?:https?://|ftp://|www\.)\S{1,2000}?(?=[.,;:!?)\]\"'”’]{0,8}(?:\s|$))"
    r"|(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"
)
_ACRONYM: Final = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]?$")
_LIST_MARKER: Final = re.compile(
    r"(?:(?<=\s)|^)(?P<bullet>[•⁃▪◦‣]\s?)?(?P<val>\d{1,3}|[a-z])(?P<punct>\.\)|\)|\.)(?=\s)"
)
_BULLET_ONLY: Final = re.compile(r"(?:(?<=\s)|^)[•⁃▪◦‣](?=\s)")
_SOFT_BREAK_PUNCT: Final = re.compile(r"[.!?…]")
_WS: Final = frozenset(" \t\n\r\f\v\u00a0\u2009\u202f")


def split_sentences(
    text: str, *, max_chars: int = DEFAULT_MAX_SENTENCE_CHARS
) -> list[tuple[int, int]]:
    """Split text into sentence spans.

    Args:
        text: Any text; offsets refer to it unchanged.
        max_chars: Longest span returned. A run of text without sentence punctuation longer than
            this is cut at the last whitespace before the limit, so no unit is unbounded.

    Returns:
        Sorted, non-overlapping ``(start, end)`` spans with ``text[start:end]`` stripped of
        surrounding whitespace. Headings and other lines without final punctuation are spans of
        their own.
    """
    spans: list[tuple[int, int]] = []
    for line_start, line_end in _hard_units(text):
        start = line_start
        for cut in _boundaries(text, line_start, line_end):
            _emit(text, start, cut, max_chars, spans)
            start = cut
        _emit(text, start, line_end, max_chars, spans)
    return spans


SegmentKind = Literal["statement", "question", "heading", "attribution"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One unit of a document: a sentence, heading or attribution line, with its offsets."""

    start: int
    end: int
    kind: SegmentKind
    paragraph: int  # zero-based; one paragraph per line, soft-wrapped lines joined


_ATTRIBUTION: Final = re.compile(
    r"^\s*(?:\(?(?:source|sources|reporting by|reported by|writing by|additional reporting by|"
    r"editing by|compiled by|photo(?:graph)?s?|image|credit|copyright|©)\b\s*[:\-–—]?|"
    r"\(?(?:reuters|ap|afp|bloomberg|tass|xinhua|ria novosti|interfax)\)?\s*$)",
    re.I,
)


def classify_segment(text: str, *, is_whole_line: bool) -> SegmentKind:
    """Classify one segment's text.

    Args:
        text: The segment text (already stripped).
        is_whole_line: Whether the segment spans its entire line; headings must.

    Returns:
        ``attribution`` for source and byline lines, ``heading`` for a whole line without final
        punctuation, ``question`` for sentences ending in a question mark, else ``statement``.
    """
    if _ATTRIBUTION.match(text):
        return "attribution"
    tail = text.rstrip(_CLOSERS)
    if is_whole_line and tail and tail[-1] not in ".!?…:;," and len(text.split()) <= 20:
        return "heading"
    if tail.endswith("?"):
        return "question"
    return "statement"


def segment_text(text: str, *, max_chars: int = DEFAULT_MAX_SENTENCE_CHARS) -> list[Segment]:
    r"""Split text into classified segments; together they cover every non-blank character.

    Args:
        text: Document text with ``\\n`` line breaks.
        max_chars: Passed to :func:`split_sentences`.

    Returns:
        Segments in text order, each with its kind and zero-based paragraph number.
    """
    paragraph_starts = _paragraph_starts(text)
    segments: list[Segment] = []
    for start, end in split_sentences(text, max_chars=max_chars):
        paragraph = max(0, bisect.bisect_right(paragraph_starts, start) - 1)
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        whole_line = (
            not text[line_start:start].strip()
            and not text[end : len(text) if line_end < 0 else line_end].strip()
        )
        kind = classify_segment(text[start:end], is_whole_line=whole_line)
        segments.append(Segment(start, end, kind, paragraph))
    return segments


# --- line handling -------------------------------------------------------------------------------


def _paragraph_starts(text: str) -> list[int]:
    """Offsets where paragraphs start.

    News puts one paragraph per line, so every line starts one, except soft-wrapped lines.
    """
    starts: list[int] = []
    previous = ""
    pos = 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped:
            if not previous or not _is_soft_wrap(previous, stripped):
                starts.append(pos)
            previous = stripped
        else:
            previous = ""
        pos += len(line) + 1
    return starts


def _is_soft_wrap(before: str, after: str) -> bool:
    """Whether the break between two non-blank lines is a wrap inside one sentence.

    As in PDF text: the first line has no final punctuation and the next line is lower-case prose
    that reaches some.
    """
    last = before.rstrip(_CLOSERS)[-1:] if before.rstrip(_CLOSERS) else ""
    return (
        last not in ".!?…" and after[:1].islower() and _SOFT_BREAK_PUNCT.search(after) is not None
    )


def _hard_units(text: str) -> Iterator[tuple[int, int]]:
    """Yield stretches of text that no sentence may cross.

    A line break is hard unless the line before it has no final punctuation and the next line is
    lower-case prose that reaches sentence punctuation (a soft wrap, as in PDF extractions).
    A break after final punctuation is left to the sentence rules, like any other whitespace.
    """
    n = len(text)
    start = line_start = 0
    pos = text.find("\n")
    while pos >= 0:
        # The line before the break only: the unit so far would be re-read at every line of a
        # unit that runs on (quadratic on 250,000 short lines).
        before = text[line_start:pos].rstrip()
        nxt = pos + 1
        while nxt < n and text[nxt] in " \t\r\f\v":
            nxt += 1
        if not before or nxt >= n or text[nxt] == "\n":
            hard = True
        elif before.rstrip(_CLOSERS)[-1:] in (".", "!", "?", "…"):
            hard = False
        else:
            line_end = text.find("\n", nxt)
            hard = not _is_soft_wrap(before, text[nxt : n if line_end < 0 else line_end])
        if hard:
            yield start, pos
            start = pos + 1
        line_start = pos + 1
        pos = text.find("\n", pos + 1)
    yield start, n


# --- sentence boundaries -------------------------------------------------------------------------


def _boundaries(text: str, lo: int, hi: int) -> Iterator[int]:
    """Yield cut positions inside ``text[lo:hi]`` in increasing order."""
    protected: list[tuple[int, int]] = []  # in text order, not overlapping
    if "@" in text[lo:hi] or "://" in text[lo:hi] or "www." in text[lo:hi]:
        protected = [m.span() for m in _URL_OR_EMAIL.finditer(text, lo, hi)]
    starts = [a for a, _ in protected]
    list_cuts, list_periods = _list_structure(text, lo, hi)
    cuts: set[int] = set(list_cuts)
    sentence_start = lo
    for m in _TERMINATOR.finditer(text, lo, hi):
        pos = m.start()
        # Binary search: a scan of every span for every terminator was quadratic on long texts.
        at = bisect.bisect_right(starts, pos) - 1
        if at >= 0 and pos < protected[at][1]:
            continue
        if pos in list_periods:
            continue
        cut = _judge(text, m, lo, hi, sentence_start)
        if cut is not None:
            cuts.add(cut)
            sentence_start = cut
    yield from sorted(c for c in cuts if lo < c < hi)


def _judge(text: str, m: re.Match[str], lo: int, hi: int, sentence_start: int) -> int | None:
    """Decide whether the terminator match ``m`` ends a sentence; return the cut or None."""
    end = m.end()
    nxt = end
    while nxt < hi and text[nxt] in _WS:
        nxt += 1
    if nxt >= hi:
        return None  # the unit ends here anyway
    gap = nxt > end
    following = text[nxt]

    ell = m.group("ell")
    if ell is not None:
        return _judge_ellipsis(text, m.start(), end, nxt, following, gap, lo)

    term = m.group("term")
    if "!" in term or "?" in term or "‽" in term:
        # "Yahoo! in the accounting department", "'Great!' she said"
        return None if following.islower() else end
    if not gap:
        return _judge_glued_period(text, m.start(), end, following, lo)
    if m.group("close"):
        # A quotation or parenthesis closed after the period: "...great." she said / ." She
        return end if not following.islower() else None
    return _judge_spaced_period(text, m.start(), end, nxt, following, lo, hi, sentence_start)


def _judge_ellipsis(
    text: str, start: int, end: int, nxt: int, following: str, gap: bool, lo: int
) -> int | None:
    dots = text[start:end]
    attached = start > lo and text[start - 1] not in _WS
    if start > lo and text[start - 1] == "[":
        return None  # editorial omission "[...]"
    if " " in dots:
        n_dots = dots.count(".")
        starts_sentence = _starts_sentence(following)
        if attached and n_dots == 4 and starts_sentence and text[nxt].isupper():
            # "compounds. . . . The practice": the period ends the sentence and the spaced
            # ellipsis opens the next one.
            return start + 1
        if not attached and n_dots == 4 and starts_sentence:
            return end  # ". . . ." = ellipsis plus period
        return None  # a spaced three-dot ellipsis marks an omission inside a sentence
    if not gap:
        return None  # "what I mean...see"
    if following.isupper() and text[nxt : nxt + 2] != "I ":
        return end
    return None


def _judge_glued_period(text: str, start: int, end: int, following: str, lo: int) -> int | None:
    """Period with no space after it: "world.Today" splits, "U.S.A", "1.5", "Jr.'s" do not."""
    if not following.isupper():
        return None
    token = _token_before(text, start + 1, lo)
    if _ACRONYM.match(token + following):
        return None
    if text[end : end + 2].isupper() and end + 2 <= len(text) and text[end + 1 : end + 2] == ".":
        return None  # middle of an acronym such as "U.S.A."
    return end


def _judge_spaced_period(
    text: str, start: int, end: int, nxt: int, following: str, lo: int, hi: int, sent_start: int
) -> int | None:
    token = _token_before(text, start + 1, lo).lstrip(_OPENERS)
    word = token.rstrip(".").lower()
    if "." in word and not _ACRONYM.match(token):
        word = word.rsplit(".", 1)[1]  # glued sentences: "Tuesday.Mr. Smith"
    if following.islower():
        return None  # abbreviation mid-sentence or a continuation: "co. at the party"
    if following.isdigit():
        if word in _PREPOSITIVE or word in _POSTPOSITIVE or len(word) == 1:
            return None  # "p. 55", "Nov. 17", "No. 5"
        return end
    if following in _OPENERS or following in "•⁃▪◦‣-–—":
        return None if word in _PREPOSITIVE else end
    if not following.isalpha():
        return None
    if "://" in token or "@" in token or token.startswith("www."):
        return end  # an address, not an abbreviation, ends here
    if word in _PREPOSITIVE:
        return None
    is_initial = len(word) == 1 and word.isalpha()
    if word in _POSTPOSITIVE or is_initial or _ACRONYM.match(token):
        if word in ("a.m", "p.m", "am", "pm") and _TIME_FRONT.match(
            text[sent_start:start].rsplit(" ", 1)[0] if " " in text[sent_start:start] else ""
        ):
            return None  # "At 5 a.m. Mr. Smith went..." : a fronted time phrase
        return end if _next_word(text, nxt, hi).lower() in _STARTERS else None
    return end


def _starts_sentence(following: str) -> bool:
    return following.isupper() or following in _OPENERS or following.isdigit()


def _token_before(text: str, end: int, lo: int) -> str:
    """The whitespace-delimited token ending at ``end`` (exclusive)."""
    i = end
    while i > lo and text[i - 1] not in _WS:
        i -= 1
    return text[i:end]


def _next_word(text: str, pos: int, hi: int) -> str:
    j = pos
    while j < hi and (text[j].isalpha() or text[j] == "'"):
        j += 1
    return text[pos:j]


def _list_structure(text: str, lo: int, hi: int) -> tuple[list[int], set[int]]:
    """Find enumerated lists ("1) a 2) b", "a. x b. y", "• 9. x • 10. y").

    Returns:
        Cut positions before each list item after the first, and the positions of periods that
        belong to list markers (and so never end a sentence).
    """
    if _LIST_HINT.search(text, lo, hi) is None:
        return [], set()
    markers = list(_LIST_MARKER.finditer(text, lo, hi))
    cuts: list[int] = []
    periods: set[int] = set()
    run: list[re.Match[str]] = []

    def flush() -> None:
        if len(run) >= 2:
            for k, mk in enumerate(run):
                if k > 0:
                    cuts.append(mk.start())
                if mk.group("punct").startswith("."):
                    periods.add(mk.start("punct"))
        run.clear()

    for mk in markers:
        if run and _follows(run[-1], mk):
            run.append(mk)
            continue
        flush()
        if _may_open_list(mk):
            run.append(mk)
    flush()
    bullets = [b.start() for b in _BULLET_ONLY.finditer(text, lo, hi)]
    if len(bullets) >= 2:
        cuts.extend(bullets[1:])
    return cuts, periods


def _may_open_list(mk: re.Match[str]) -> bool:
    val = mk.group("val")
    return bool(mk.group("bullet")) or val in ("1", "a") or val.isdigit()


def _follows(prev: re.Match[str], cur: re.Match[str]) -> bool:
    a, b = prev.group("val"), cur.group("val")
    same_style = prev.group("punct") == cur.group("punct") and bool(prev.group("bullet")) == bool(
        cur.group("bullet")
    )
    if not same_style:
        return False
    if a.isdigit() and b.isdigit():
        return int(b) == int(a) + 1
    return len(a) == len(b) == 1 and a.isalpha() and ord(b) == ord(a) + 1


def _emit(text: str, start: int, end: int, max_chars: int, out: list[tuple[int, int]]) -> None:
    """Append the stripped span ``[start, end)``, cutting it at whitespace if over ``max_chars``."""
    while start < end and text[start] in _WS:
        start += 1
    while end > start and text[end - 1] in _WS:
        end -= 1
    while end - start > max_chars:
        cut = start + max_chars
        space = max(text.rfind(" ", start + 1, cut), text.rfind("\n", start + 1, cut))
        if space > start:
            cut = space
        _emit(text, start, cut, max_chars, out)
        start = cut
        while start < end and text[start] in _WS:
            start += 1
    if end > start:
        out.append((start, end))
