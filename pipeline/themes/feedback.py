"""Analysts' feedback: a labels file that the next run uses as positive and negative examples.

The file is a CSV with a header and two columns:

- ``claim_id`` *or* ``text`` (a claim's exact text; a statement that is not a claim of the
  corpus is still used as an example);
- ``theme_id``: a named theme, ``unassigned`` (the claim belongs to no named theme), or
  ``not:<theme_id>`` (the claim does not belong to that theme).

Each labelled text becomes an example (:class:`~pipeline.themes.catalog.Example`): a positive
one joins its theme's seeds, an ``unassigned`` one the background, a ``not:`` one that theme's
negatives, so similar claims move too. The labelled claims themselves take their label
(:class:`ClaimLabels`). Rows are checked against the catalog and the claims: an unknown theme
or claim id is an error that names the row.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.themes.base import UNASSIGNED
from pipeline.themes.catalog import Example

__all__ = [
    "ClaimLabels",
    "Feedback",
    "FeedbackError",
    "LabelRow",
    "labels_sha256",
    "load_feedback",
    "read_labels",
]

NOT: str = "not:"


class FeedbackError(ValueError):
    """The labels file is malformed, or names an unknown claim or theme."""


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One row of the labels file (``line`` counts from 1, the header being line 1)."""

    line: int
    claim_id: str | None
    text: str | None
    theme_id: str
    positive: bool


@dataclass(frozen=True, slots=True)
class ClaimLabels:
    """Labels of claims of the corpus: ``positive`` decides a claim, ``negative`` vetoes themes."""

    positive: Mapping[str, str] = field(default_factory=dict)
    negative: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """Whether any claim is labelled."""
        return bool(self.positive or self.negative)


@dataclass(frozen=True, slots=True)
class Feedback:
    """A checked labels file: examples for every claim, labels for the labelled ones."""

    examples: tuple[Example, ...]
    claim_labels: ClaimLabels
    sha256: str
    rows: int


def read_labels(path: str | Path) -> tuple[list[LabelRow], str]:
    """Parse the labels file; return its rows and the SHA-256 of its bytes.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        FeedbackError: If the header or a row is malformed (the message names the line).
    """
    data = Path(path).read_bytes()
    digest = _sha256(data)
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise FeedbackError(f"{path}: not UTF-8 ({err})") from err
    reader = csv.DictReader(lines)
    columns = set(reader.fieldnames or ())
    if "theme_id" not in columns or not columns & {"claim_id", "text"}:
        raise FeedbackError(
            f"{path}: the header must have theme_id and claim_id or text; got "
            f"{sorted(columns) or 'nothing'}"
        )
    rows = []
    for number, raw in enumerate(reader, start=2):
        claim_id = (raw.get("claim_id") or "").strip() or None
        text = raw.get("text") or None
        label = (raw.get("theme_id") or "").strip()
        where = f"{path}, line {number}"
        if (claim_id is None) == (text is None or not text.strip()):
            raise FeedbackError(f"{where}: give exactly one of claim_id and text")
        positive = not label.startswith(NOT)
        theme_id = label.removeprefix(NOT).strip()
        if not theme_id:
            raise FeedbackError(f"{where}: theme_id is empty")
        if not positive and theme_id == UNASSIGNED:
            raise FeedbackError(f"{where}: 'not:{UNASSIGNED}' means nothing; name a theme")
        rows.append(LabelRow(number, claim_id, text, theme_id, positive))
    return rows, digest


def labels_sha256(path: str | Path) -> str:
    """SHA-256 of the labels file's bytes (the digest the runs manifest records)."""
    return _sha256(Path(path).read_bytes())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_feedback(
    path: str | Path,
    themes: Iterable[str],
    claim_texts: Callable[[set[str]], Mapping[str, str]],
    claim_ids_of: Callable[[set[str]], Mapping[str, list[str]]],
) -> Feedback:
    """Read and check the labels file against the catalog's themes and the corpus's claims.

    Args:
        path: The labels CSV.
        themes: The named theme ids of the catalog.
        claim_texts: Looks up claim ids, returning ``{claim_id: text}`` for those that exist.
        claim_ids_of: Looks up exact claim texts, returning ``{text: [claim_id, ...]}``.

    Raises:
        FeedbackError: On a malformed row, an unknown theme or an unknown claim id.
    """
    rows, digest = read_labels(path)
    known = set(themes)
    for row in rows:
        if row.theme_id != UNASSIGNED and row.theme_id not in known:
            raise FeedbackError(
                f"{path}, line {row.line}: unknown theme {row.theme_id!r} "
                f"(known: {', '.join(sorted(known | {UNASSIGNED}))})"
            )
    texts = claim_texts({r.claim_id for r in rows if r.claim_id is not None})
    for row in rows:
        if row.claim_id is not None and row.claim_id not in texts:
            raise FeedbackError(f"{path}, line {row.line}: unknown claim_id {row.claim_id!r}")
    ids_of = claim_ids_of({r.text for r in rows if r.text is not None})
    examples: list[Example] = []
    positive: dict[str, str] = {}
    negative: dict[str, set[str]] = {}
    for row in rows:
        text = texts[row.claim_id] if row.claim_id is not None else str(row.text)
        examples.append(Example(text, row.theme_id, row.positive))
        claims = [row.claim_id] if row.claim_id is not None else ids_of.get(text, [])
        for claim_id in claims:
            if row.positive:
                positive[claim_id] = row.theme_id  # a later row wins, as in a spreadsheet
            else:
                negative.setdefault(claim_id, set()).add(row.theme_id)
    vetoes = {c: frozenset(t) for c, t in negative.items()}
    unique = tuple(dict.fromkeys(examples))  # the same statement labelled twice counts once
    return Feedback(unique, ClaimLabels(positive, vetoes), digest, len(rows))
