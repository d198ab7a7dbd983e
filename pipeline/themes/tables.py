"""The four theme tables of a fitted model, and the key of the inputs they were made from."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa

from pipeline.schemas import SCHEMAS, to_table
from pipeline.themes.base import UNASSIGNED, ThemeInfo
from pipeline.themes.catalog import ThemeCatalog
from pipeline.themes.config import ThemeConfig
from pipeline.themes.model import ThemeModel

INPUTS_KEY: Final = b"docthemes.theme_inputs"


def theme_rows(
    model: ThemeModel, catalog: ThemeCatalog, doc_dates: Mapping[str, dt.date] | None = None
) -> list[dict[str, Any]]:
    """Rows of the `themes` table: every theme of a fitted model, then the retired ones.

    Args:
        model: A fitted :class:`ThemeModel`.
        catalog: The catalog (labels and descriptions of named themes).
        doc_dates: Each document's date (published, else ingested), for first and last seen.
    """
    dates = doc_dates or {}
    date_of = [dates.get(d) for d in model.doc_ids_]
    claim_ids = model.representative_ids_
    rows = []
    for t in model.themes_:
        named = catalog.themes.get(t.theme_id)
        docs = np.unique(model.doc_index_[t.member_idx])
        seen = sorted(d for d in (date_of[g] for g in docs) if d is not None)
        rows.append(
            {
                "theme_id": t.theme_id,
                "label": named.label if named else t.label,
                "kind": t.kind,
                "keywords": t.keywords,
                "n_claims": len(t.member_idx),
                "description": named.description if named else _keyword_description(t),
                "parent_id": t.parent_id,
                "representative_claim_ids": [claim_ids[i] for i in t.representatives],
                "coherence": t.coherence,
                "status": "active",
                "first_seen": seen[0] if seen else None,
                "last_seen": seen[-1] if seen else None,
                "centroid": t.centroid.tolist()
                if t.centroid is not None and t.kind != "named"
                else None,
            }
        )
    return rows + model.retired_


def claim_theme_table(model: ThemeModel, claim_ids: Sequence[str], start: int = 0) -> pa.Table:
    """Rows of `claim_themes` for claims ``start`` onwards: the primary theme, then secondaries.

    Each row carries its evidence: the nearest seed or example of the theme (for discovered
    themes, the theme's most representative claim) and, for the primary, the margin over the
    runner-up. Called a batch of claims at a time, so the table is written without being held.
    """
    stop = start + len(claim_ids)
    labels, scores = model.labels_[start:stop], model.scores_[start:stop]
    margins = model.margins_[start:stop]
    columns = ("claim_id", "theme_id", "score", "rank", "margin", "evidence", "evidence_kind")
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for i, extra in enumerate(model.secondary(start, stop)):
        primary = (str(labels[i]), float(scores[i]), float(margins[i]))
        for rank, (theme_id, score, margin) in enumerate(
            [primary, *((t, s, math.nan) for t, s in extra)], start=1
        ):
            evidence, kind = model.evidence(start + i, theme_id)
            out["claim_id"].append(claim_ids[i])
            out["theme_id"].append(theme_id)
            out["score"].append(score)
            out["rank"].append(rank)
            out["margin"].append(None if math.isnan(margin) else margin)
            out["evidence"].append(evidence)
            out["evidence_kind"].append(kind)
    return pa.Table.from_pydict(out, schema=SCHEMAS["claim_themes"])


def document_theme_table(model: ThemeModel) -> pa.Table:
    """Rows of `document_themes`: each document's share of claims per primary theme."""
    counts: dict[tuple[int, str], int] = {}
    for doc, label in zip(model.doc_index_.tolist(), model.labels_, strict=True):
        counts[(doc, label)] = counts.get((doc, label), 0) + 1
    totals = np.bincount(model.doc_index_, minlength=len(model.doc_ids_))
    out: dict[str, list[Any]] = {"doc_id": [], "theme_id": [], "share": [], "n_claims": []}
    for (doc, theme_id), n in sorted(
        counts.items(), key=lambda kv: (model.doc_ids_[kv[0][0]], kv[0][1])
    ):
        out["doc_id"].append(model.doc_ids_[doc])
        out["theme_id"].append(theme_id)
        out["share"].append(n / int(totals[doc]))
        out["n_claims"].append(n)
    return pa.Table.from_pydict(out, schema=SCHEMAS["document_themes"])


def trend_table(model: ThemeModel, doc_dates: Mapping[str, dt.date] | None = None) -> pa.Table:
    """Rows of `theme_trends`: claims and documents per theme and day.

    Broad themes aggregate their children; claims of undated documents are left out.
    """
    dates = doc_dates or {}
    date_of = [dates.get(d) for d in model.doc_ids_]
    parents = {t.theme_id: t.parent_id for t in model.themes_}
    broad = {t.theme_id for t in model.themes_ if t.kind == "broad"}

    def counted_in(label: str) -> list[str]:
        # The claim's theme and its broad theme (through a named parent, for nested themes).
        out, parent = [label], parents.get(label)
        while parent is not None:
            if parent in broad:
                out.append(parent)
            parent = parents.get(parent)
        return out

    claims: dict[tuple[str, dt.date], int] = {}
    docs: dict[tuple[str, dt.date], set[int]] = {}
    per_day: dict[dt.date, int] = {}
    for doc, label in zip(model.doc_index_.tolist(), model.labels_, strict=True):
        day = date_of[doc]
        if day is None:
            continue
        per_day[day] = per_day.get(day, 0) + 1
        for theme in counted_in(label):
            if theme is not None:
                claims[(theme, day)] = claims.get((theme, day), 0) + 1
                docs.setdefault((theme, day), set()).add(doc)
    out: dict[str, list[Any]] = {
        "theme_id": [],
        "date": [],
        "n_claims": [],
        "n_documents": [],
        "share": [],
    }
    for (theme, day), n in sorted(claims.items()):
        out["theme_id"].append(theme)
        out["date"].append(day)
        out["n_claims"].append(n)
        out["n_documents"].append(len(docs[(theme, day)]))
        out["share"].append(n / per_day[day])
    return pa.Table.from_pydict(out, schema=SCHEMAS["theme_trends"])


def assign_themes(
    model: ThemeModel,
    catalog: ThemeCatalog,
    claim_ids: Sequence[str],
    doc_dates: Mapping[str, dt.date] | None = None,
) -> dict[str, pa.Table]:
    """All four theme tables of a fitted model, in memory (tests, benchmarks, small inputs).

    The tables are `themes`, `claim_themes`, `document_themes` and `theme_trends`; the asset
    writes `claim_themes` a batch at a time with :func:`claim_theme_table` instead.

    Args:
        model: A fitted :class:`ThemeModel`.
        catalog: The catalog (labels and descriptions of named themes).
        claim_ids: Claim ids in the order the model was fitted on.
        doc_dates: Each document's date (published, else ingested) for trends and first/last seen.
    """
    rows = theme_rows(model, catalog, doc_dates)
    return {
        "themes": to_table(rows, SCHEMAS["themes"]),
        "claim_themes": claim_theme_table(model, claim_ids),
        "document_themes": document_theme_table(model),
        "theme_trends": trend_table(model, doc_dates),
    }


def theme_inputs_key(
    claim_ids: Iterable[Sequence[str]],
    doc_dates: Mapping[str, dt.date],
    catalog: ThemeCatalog,
    config: ThemeConfig,
    model_key: str,
    labels_sha256: str = "",
) -> str:
    """Hash of everything the theme tables are computed from (claims, dates, settings, model).

    Claim ids hash their text and document, so equal keys mean equal inputs. They come in
    batches, in table order (the claims table's order is itself determined by its inputs); the
    key does not depend on the batching.
    """
    from pipeline.manifest import PIPELINE_VERSION

    ids = hashlib.sha256()
    for batch in claim_ids:
        ids.update("".join(f"{claim_id}\n" for claim_id in batch).encode("utf-8"))
    h = hashlib.sha256()
    for part in (
        PIPELINE_VERSION,
        ids.hexdigest(),
        "\n".join(f"{d}\t{doc_dates[d].isoformat()}" for d in sorted(doc_dates)),
        catalog.model_dump_json(),
        config.model_dump_json(),
        model_key,
        labels_sha256,
    ):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def _keyword_description(theme: ThemeInfo) -> str | None:
    if theme.kind == "broad":
        return f"Broad theme grouping related themes; keywords: {', '.join(theme.keywords)}"
    if theme.kind == UNASSIGNED:
        return "Claims that fit no named theme and no discovered theme large enough to keep."
    return f"Discovered theme; keywords: {', '.join(theme.keywords)}" if theme.keywords else None
