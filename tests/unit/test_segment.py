"""Sentence segmentation: the public `split_sentences` contract and the Golden Rules."""

import json
import re

import pytest

from pipeline.segment import classify_segment, segment_text, split_sentences
from tests.conftest import DATA

# English Golden Rules of pragmatic_segmenter (attribution: tests/data/ATTRIBUTION.md).
GOLDEN = json.loads((DATA / "golden_rules_en.json").read_text(encoding="utf-8"))


def _norm(s: str) -> str:
    # The rules' expected output joins soft-wrapped lines with a space; spans keep the newline.
    return re.sub(r"\s+", " ", s).strip()


@pytest.mark.parametrize("rule", GOLDEN, ids=[f"{r['id']:02d}-{r['name']}" for r in GOLDEN])
def test_golden_rule(rule):
    text = rule["text"]
    got = [_norm(text[a:b]) for a, b in split_sentences(text)]
    assert got == [_norm(s) for s in rule["sentences"]]


def test_golden_rules_file_is_complete():
    # Guards against a truncated copy silently shrinking the benchmark.
    assert len(GOLDEN) == 52


@pytest.mark.parametrize(
    "text, expected",
    [
        # Seed sentence that must stay whole (walking pipeline requirement).
        (
            "These efforts reflect a desire to counterbalance what they perceive as an overreach "
            "of U.S. authority in global affairs. Next one.",
            2,
        ),
        # News abbreviations: titles, months with numbers, times.
        ("Gen. Smith met Mr. Jones on Nov.17 at 9 a.m. in Kyiv. They talked.", 2),
        ("The deal closed on Nov. 17, officials said. Markets rose.", 2),
        # Initials and decimals.
        ("J. R. R. Tolkien wrote it in 1954. Sales rose 3.5 percent.", 2),
        # URL and e-mail addresses do not end sentences.
        ("Write to press@example.org for details. See https://example.org/a.b. Done.", 3),
        # A quotation holding two sentences is split into them.
        ('"We will respond. We are ready," the minister said.', 2),
        # Ellipsis inside a sentence.
        ("Prices rose ... and then fell again. It was over.", 2),
    ],
)
def test_news_text(text, expected):
    spans = split_sentences(text)
    assert len(spans) == expected, [text[a:b] for a, b in spans]


def test_headline_without_punctuation_is_its_own_unit():
    # Headings between paragraphs must never glue onto the next sentence.
    text = (
        "Russia faces isolation.\nStrained Ties with Traditional Allies\n\nMoscow's ties weakened."
    )
    units = [text[a:b] for a, b in split_sentences(text)]
    assert units == [
        "Russia faces isolation.",
        "Strained Ties with Traditional Allies",
        "Moscow's ties weakened.",
    ]


def test_spans_are_stripped_sorted_and_cover_all_text():
    # Offsets are the contract: no overlap, no surrounding whitespace, nothing dropped.
    text = "  First one.  Second one!\n\nThird?\n  A heading\nLast line without stop  "
    spans = split_sentences(text)
    assert spans == sorted(spans)
    covered = set()
    for a, b in spans:
        assert text[a:b] == text[a:b].strip()
        covered.update(range(a, b))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_unpunctuated_text_is_bounded():
    # A 1 MB paragraph with no punctuation must not become a 1 MB claim.
    text = "word " * 200_000
    spans = split_sentences(text, max_chars=500)
    assert max(b - a for a, b in spans) <= 500
    assert len(spans) >= 2000


def test_empty_and_whitespace():
    # Empty documents reach the splitter in edge cases; they must yield nothing, not crash.
    assert split_sentences("") == []
    assert split_sentences(" \n\t ") == []


def test_classify_segment():
    # The kind decides what becomes a claim: headings and sources must never be counted.
    assert (
        classify_segment("Strained Ties with Traditional Allies", is_whole_line=True) == "heading"
    )
    assert (
        classify_segment(
            "Source: Official Russian Ministry of Foreign Affairs website.", is_whole_line=True
        )
        == "attribution"
    )
    assert classify_segment("Will this alliance last?", is_whole_line=False) == "question"
    assert classify_segment("The alliance grew.", is_whole_line=True) == "statement"
    # A sentence fragment mid-line is never a heading even without punctuation.
    assert classify_segment("the rest", is_whole_line=False) == "statement"


def test_segment_text_paragraphs_follow_lines():
    # News puts one paragraph per line; soft-wrapped lines join the same paragraph.
    text = "One. Two.\nThree here\nwraps onto this line.\nFour."
    segs = segment_text(text)
    assert [text[s.start : s.end] for s in segs][2] == "Three here\nwraps onto this line."
    assert [s.paragraph for s in segs] == [0, 0, 1, 2]
