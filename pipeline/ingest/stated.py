"""What an article's text states about itself: title, headings, attribution, date."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final

from pipeline.segment import classify_segment

_AGENCY_DATELINE: Final = re.compile(
    r"^\s*([A-Z][A-Za-z .,'’-]{1,40}?)\s*\((Reuters|AP|AFP|Bloomberg|TASS|Xinhua|Interfax|UPI)\)"
    r"\s*[-–—]"
)
_MONTHS: Final = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_MONTH_RE: Final = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS: Final = (
    (re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b"), ("y", "m", "d")),
    (re.compile(rf"\b(\d{{1,2}})\s+({_MONTH_RE})\.?,?\s+((?:19|20)\d\d)\b", re.I), ("d", "M", "y")),
    (
        re.compile(
            rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+((?:19|20)\d\d)\b", re.I
        ),
        ("M", "d", "y"),
    ),
)


def extract_metadata(text: str) -> dict[str, Any]:
    """Title, headings, source attribution and stated publication date of a normalised text.

    Returns:
        A dict with ``title`` (first line when it is a headline, else None), ``headings``
        (other heading lines, in order), ``source_attribution`` (source/byline lines and agency
        datelines joined by newlines, or None) and ``published_date`` (a ``date`` or None).
    """
    title: str | None = None
    headings: list[str] = []
    attributions: list[str] = []
    first_line, first_body = True, True
    for raw_line in text.split("\n"):
        line = raw_line.strip()
        if not line:
            continue
        kind = classify_segment(line, is_whole_line=True)
        if kind == "heading":
            if first_line:
                title = line
            else:
                headings.append(line)
        elif kind == "attribution":
            attributions.append(line)
        else:
            if first_body and (m := _AGENCY_DATELINE.match(line)):
                attributions.append(f"{m.group(2)} ({m.group(1).strip()})")
            first_body = False
        first_line = False
    return {
        "title": title,
        "headings": headings,
        "source_attribution": "\n".join(attributions) or None,
        "published_date": find_published_date(text),
    }


def find_published_date(text: str, window: int = 1500) -> dt.date | None:
    """Return the first valid date stated near the start of the text (or in its last lines)."""
    regions = (text[:window], text[-400:])
    for region in regions:
        for pattern, order in _DATE_PATTERNS:
            for m in pattern.finditer(region):
                parts = dict(zip(order, m.groups(), strict=True))
                month = int(parts["m"]) if "m" in parts else _MONTHS[parts["M"].lower()]
                try:
                    return dt.date(int(parts["y"]), month, int(parts["d"]))
                except ValueError:
                    continue
    return None
