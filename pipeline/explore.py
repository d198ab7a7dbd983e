"""Reading the published tables for analysts: status, themes, claims, search, documents, matches.

Pure functions over ``<processed_dir>/<table>.parquet``; nothing here reruns the pipeline. The
``docthemes`` read commands (``assets/cli.py``) render what these return, as tables or JSON.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.storage import table_path

SEARCH_BATCH_ROWS = 65_536  # embeddings scanned at a time: memory stays flat for any corpus


class NoTablesError(RuntimeError):
    """The output dir has no published tables yet."""


class UnknownIdError(ValueError):
    """A theme or document id that is not in the published tables."""


def _path(out: str | Path, name: str) -> Path:
    path = table_path(out, name)
    if not path.exists():
        raise NoTablesError(
            f"no published tables in {out} yet (no {path.name}): run `docthemes run` first"
        )
    return path


def _read(out: str | Path, name: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(_path(out, name), columns=columns)


def status(out: str | Path) -> dict[str, Any]:
    """The last run: when, how long, rows per table, rejects by reason, and what changed."""
    runs = _read(out, "runs").to_pylist()
    last = runs[-1]
    before = runs[-2] if len(runs) > 1 else None
    counts = dict(last["row_counts"])
    changed = (
        {k: v - dict(before["row_counts"]).get(k, 0) for k, v in counts.items()}
        if before is not None
        else None
    )
    rejected = _read(out, "rejected_files", ["reason"]).column("reason").to_pylist()
    reasons: dict[str, int] = {}
    for reason in rejected:
        reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "output_dir": str(out),
        "runs": len(runs),
        "run_id": last["run_id"],
        "started_at": last["started_at"].isoformat(),
        "finished_at": last["finished_at"].isoformat(),
        "duration_s": round((last["finished_at"] - last["started_at"]).total_seconds(), 1),
        "model": last["model"],
        "input_files": last["input_files"],
        "row_counts": counts,
        "change_since_previous_run": changed,
        "rejected_by_reason": dict(sorted(reasons.items())),
        "published_tables": list(last["published_tables"]),
    }


def themes(out: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """Active themes, largest first: id, label, kind, size, share, trend, top keywords.

    ``trend`` compares the theme's share of claims on its last two dates in ``theme_trends``:
    ``up``, ``down``, ``flat`` (within 1 point), or None with fewer than two dates.
    """
    rows = _read(out, "themes").to_pylist()
    total = sum(r["n_claims"] for r in rows if r["kind"] != "broad")
    trends = _read(out, "theme_trends", ["theme_id", "date", "share"]).to_pylist()
    by_theme: dict[str, list[tuple[dt.date, float]]] = {}
    for t in trends:
        by_theme.setdefault(t["theme_id"], []).append((t["date"], t["share"]))
    out_rows = []
    for r in rows:
        if r["status"] != "active" or (kind is not None and r["kind"] != kind):
            continue
        series = sorted(by_theme.get(r["theme_id"], []))
        trend = None
        if len(series) >= 2:
            delta = series[-1][1] - series[-2][1]
            trend = "flat" if abs(delta) < 0.01 else ("up" if delta > 0 else "down")
        out_rows.append(
            {
                "theme_id": r["theme_id"],
                "label": r["label"],
                "kind": r["kind"],
                "parent_id": r["parent_id"],
                "n_claims": r["n_claims"],
                "share": round(r["n_claims"] / total, 4) if total else 0.0,
                "trend": trend,
                "keywords": list(r["keywords"][:5]),
            }
        )
    out_rows.sort(key=lambda r: (-r["n_claims"], r["theme_id"]))
    return out_rows


def theme_ids(out: str | Path) -> set[str]:
    """Every theme id of the published ``themes`` table."""
    return set(_read(out, "themes", ["theme_id"]).column("theme_id").to_pylist())


def claims(
    out: str | Path, theme_id: str, since: dt.date | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Claims whose primary theme is ``theme_id``, best score first, with their document.

    Raises:
        UnknownIdError: If the theme is not in ``themes``.
    """
    if theme_id not in theme_ids(out):
        raise UnknownIdError(f"unknown theme id {theme_id!r}: `docthemes themes` lists them")
    ct = _read(out, "claim_themes", ["claim_id", "theme_id", "score", "rank"])
    primary = ct.filter(pc.and_(pc.equal(ct["rank"], 1), pc.equal(ct["theme_id"], theme_id)))
    wanted = primary.column("claim_id")
    found = where(out, "claims", ["claim_id", "doc_id", "text"], pc.field("claim_id").isin(wanted))
    docs = _documents(out, set(found.column("doc_id").to_pylist()))
    score = dict(zip(wanted.to_pylist(), primary.column("score").to_pylist(), strict=True))
    rows = []
    for c in found.to_pylist():
        doc = docs[c["doc_id"]]
        if since is not None and (doc["date"] is None or doc["date"] < since):
            continue
        rows.append({**c, **doc, "date": _iso(doc["date"]), "score": score[c["claim_id"]]})
    rows.sort(key=lambda r: (-round(r["score"], 4), r["claim_id"]))
    return rows[:limit]


def search(
    out: str | Path,
    query_vector: np.ndarray,
    k: int = 10,
    theme_id: str | None = None,
) -> list[dict[str, Any]]:
    """The ``k`` claims nearest a query's unit vector (cosine), best first.

    Scans ``claim_embeddings`` ``SEARCH_BATCH_ROWS`` rows at a time with a running top-k, and
    reads the other tables filtered to the claims it returns (or to the theme's members), so
    memory is one batch plus the answer whatever the corpus; ``theme_id`` keeps claims with
    that primary theme.

    Raises:
        UnknownIdError: If ``theme_id`` is not in ``themes``.
    """
    members: set[str] | None = None
    if theme_id is not None:
        if theme_id not in theme_ids(out):
            raise UnknownIdError(f"unknown theme id {theme_id!r}: `docthemes themes` lists them")
        rank1 = (pc.field("rank") == 1) & (pc.field("theme_id") == theme_id)
        members = set(where(out, "claim_themes", ["claim_id"], rank1).column(0).to_pylist())
    q = np.asarray(query_vector, dtype=np.float32).ravel()
    best: list[tuple[float, str]] = []  # a min-heap of (score, claim_id)
    file = pq.ParquetFile(_path(out, "claim_embeddings"))
    for batch in file.iter_batches(batch_size=SEARCH_BATCH_ROWS, columns=["claim_id", "embedding"]):
        ids = batch.column("claim_id").to_pylist()
        flat = batch.column("embedding").flatten().to_numpy(zero_copy_only=False)
        scores = flat.reshape(len(ids), -1) @ q
        if members is not None:
            keep = np.fromiter((i in members for i in ids), bool, len(ids))
            scores = np.where(keep, scores, -np.inf)
        for j in np.argsort(-scores, kind="stable")[:k]:
            if np.isfinite(scores[j]):
                item = (float(scores[j]), ids[j])
                if len(best) < k:
                    heapq.heappush(best, item)
                elif item > best[0]:
                    heapq.heapreplace(best, item)
    ranked = sorted(best, key=lambda s: (-s[0], s[1]))
    wanted = pa.array([i for _, i in ranked], pa.string())
    found = {
        c["claim_id"]: c
        for c in where(
            out, "claims", ["claim_id", "doc_id", "text"], pc.field("claim_id").isin(wanted)
        ).to_pylist()
    }
    themes_of = primary_themes(out, [i for _, i in ranked])
    docs = _documents(out, {c["doc_id"] for c in found.values()})
    rows = []
    for score, cid in ranked:
        doc = docs[found[cid]["doc_id"]]
        rows.append(
            {
                "score": round(score, 4),
                "claim_id": cid,
                "text": found[cid]["text"],
                "doc_id": found[cid]["doc_id"],
                "title": doc["title"],
                "source_path": doc["source_path"],
                "date": _iso(doc["date"]),
                "theme_id": themes_of.get(cid),
            }
        )
    return rows


def search_model(out: str | Path) -> tuple[str, str | None, str]:
    """The embedding model of the last run (name, weights SHA-256, backend): queries use it.

    Runs recorded before the backend was recorded ran torch (or said ``[backend]`` in the name).
    """
    last = _read(out, "runs", ["model", "model_weights_sha256", "config_json"]).to_pylist()[-1]
    name, _, suffix = last["model"].partition(" [")
    embedder = json.loads(last["config_json"] or "{}").get("embedder", {})
    backend = embedder.get("backend") or suffix.rstrip("]") or "torch"
    return name, last["model_weights_sha256"], backend


def document(out: str | Path, doc_id: str) -> dict[str, Any]:
    """A document's text with its claims (spans) and their primary themes, in text order.

    Raises:
        UnknownIdError: If the document is not in ``documents``.
    """
    columns = ["doc_id", "source_path", "title", "published_date", "text"]
    match = where(out, "documents", columns, pc.field("doc_id") == doc_id).to_pylist()
    if not match:
        raise UnknownIdError(f"unknown document id {doc_id!r}: see documents.doc_id")
    doc = match[0]
    columns = ["claim_id", "doc_id", "text", "char_start", "char_end"]
    rows = where(out, "claims", columns, pc.field("doc_id") == doc_id).to_pylist()
    primary = primary_themes(out, [r["claim_id"] for r in rows])
    return {
        "doc_id": doc_id,
        "source_path": doc["source_path"],
        "title": doc["title"],
        "date": _iso(doc["published_date"]),
        "text": doc["text"],
        "claims": [
            {
                "claim_id": r["claim_id"],
                "char_start": r["char_start"],
                "char_end": r["char_end"],
                "text": r["text"],
                "theme_id": primary.get(r["claim_id"]),
            }
            for r in sorted(rows, key=lambda r: r["char_start"])
        ],
    }


def claim_exists(out: str | Path, claim_id: str) -> bool:
    """Whether ``claim_id`` is a claim of the published ``claims`` table."""
    found = where(out, "claims", ["claim_id"], pc.field("claim_id") == claim_id)
    return bool(found.num_rows > 0)


def matches(out: str | Path, claim_id: str) -> dict[str, Any]:
    """The same claim elsewhere: the claim's cluster, its other claims earliest first.

    Each other claim comes with its document's outlet, date, title and url, and the score of
    its direct match with this claim (None where the two are in one cluster through others).

    Raises:
        UnknownIdError: If the claim is not in ``claims``.
    """
    own = where(out, "claims", ["claim_id", "doc_id", "text"], pc.field("claim_id") == claim_id)
    if own.num_rows == 0:
        raise UnknownIdError(f"unknown claim id {claim_id!r}: see claims.claim_id")
    claim = own.to_pylist()[0]
    cluster_columns = ["cluster_id", "n_documents", "n_sources", "first_seen", "first_source"]
    row = where(out, "claim_clusters", cluster_columns, pc.field("claim_id") == claim_id)
    docs = _documents(out, {claim["doc_id"]})
    info: dict[str, Any] = {**claim, **docs[claim["doc_id"]], "cluster": None, "matches": []}
    info["date"] = _iso(info["date"])
    if row.num_rows == 0:
        return info
    cluster = row.to_pylist()[0]
    cluster["first_seen"] = _iso(cluster["first_seen"])
    info["cluster"] = cluster
    members = where(
        out, "claim_clusters", ["claim_id"], pc.field("cluster_id") == cluster["cluster_id"]
    ).column("claim_id")
    others = where(
        out,
        "claims",
        ["claim_id", "doc_id", "text"],
        pc.field("claim_id").isin(members) & (pc.field("claim_id") != claim_id),
    ).to_pylist()
    direct = where(
        out,
        "claim_matches",
        ["claim_id", "other_claim_id", "score"],
        (pc.field("claim_id") == claim_id) | (pc.field("other_claim_id") == claim_id),
    ).to_pylist()
    score = {}
    for r in direct:
        score[r["other_claim_id"] if r["claim_id"] == claim_id else r["claim_id"]] = r["score"]
    docs = _documents(out, {o["doc_id"] for o in others})
    rows = [{**o, **docs[o["doc_id"]], "score": score.get(o["claim_id"])} for o in others]
    rows.sort(key=lambda r: (r["date"] or dt.date.max, r["source"] or "", r["claim_id"]))
    info["matches"] = [{**r, "date": _iso(r["date"])} for r in rows]
    return info


def to_json(value: object) -> str:
    """JSON for scripts (dates as ISO strings)."""
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def where(out: str | Path, name: str, columns: list[str], condition: pc.Expression) -> pa.Table:
    """Rows of a table that meet ``condition``, scanned a batch at a time (pyarrow.dataset)."""
    import pyarrow.dataset as ds

    return ds.dataset(_path(out, name)).to_table(columns=columns, filter=condition)


def primary_themes(out: str | Path, claim_ids: list[str]) -> dict[str, str]:
    """The primary theme of each of these claims (read filtered, not the whole table)."""
    rows = where(
        out,
        "claim_themes",
        ["claim_id", "theme_id"],
        (pc.field("rank") == 1) & pc.field("claim_id").isin(pa.array(claim_ids, pa.string())),
    )
    return dict(
        zip(rows.column("claim_id").to_pylist(), rows.column("theme_id").to_pylist(), strict=True)
    )


def _documents(out: str | Path, doc_ids: set[str]) -> dict[str, dict[str, Any]]:
    docs = where(
        out,
        "documents",
        ["doc_id", "source_path", "title", "published_date", "source", "url"],
        pc.field("doc_id").isin(pa.array(sorted(doc_ids), pa.string())),
    )
    return {
        d["doc_id"]: {
            "title": d["title"],
            "source_path": d["source_path"],
            "date": d["published_date"],
            "source": d["source"],
            "url": d["url"],
        }
        for d in docs.to_pylist()
    }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None
