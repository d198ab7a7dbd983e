"""Table validations behind the asset checks; each returns a list of problems (empty = pass)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest import relative_path, walk_files
from pipeline.metadata import METADATA_TABLES, SIDECAR_SUFFIX
from pipeline.storage import TableFile

__all__ = [
    "check_accounting",
    "check_embedding_file",
    "check_offsets",
    "check_one_primary",
    "check_references",
    "check_schema",
    "check_shares",
    "check_unique",
]

_MAX_SHOWN = 5


def _show(values: Iterable[object]) -> str:
    items = list(values)
    more = f" (+{len(items) - _MAX_SHOWN} more)" if len(items) > _MAX_SHOWN else ""
    return ", ".join(repr(v) for v in items[:_MAX_SHOWN]) + more


def check_schema(table: pa.Table | TableFile, expected: pa.Schema) -> list[str]:
    """Columns, types and nullability match the contract (extra columns are reported too).

    A :class:`~pipeline.storage.TableFile` is read a batch at a time, for its null counts.
    """
    problems = []
    actual = {f.name: f for f in table.schema}
    required = [f.name for f in expected if not f.nullable and f.name in actual]
    if isinstance(table, TableFile):
        nulls = dict.fromkeys(required, 0)
        for batch in table.batches(required) if required else ():
            for name in required:
                nulls[name] += batch.column(name).null_count
    else:
        nulls = {name: table.column(name).null_count for name in required}
    for f in expected:
        got = actual.get(f.name)
        if got is None:
            problems.append(f"missing column {f.name!r}")
        elif not got.type.equals(f.type):
            problems.append(f"column {f.name!r} is {got.type}, expected {f.type}")
        elif nulls.get(f.name):
            problems.append(f"column {f.name!r} has {nulls[f.name]} nulls")
    extra = sorted(set(actual) - set(expected.names))
    if extra:
        problems.append(f"unexpected columns {extra}")
    return problems


def check_unique(table: pa.Table, column: str) -> list[str]:
    """No value of ``column`` occurs twice."""
    counts = pc.value_counts(table.column(column))
    dupes = counts.filter(pc.greater(counts.field("counts"), 1)).field("values").to_pylist()
    return [f"{len(dupes)} duplicate {column} values: {_show(dupes)}"] if dupes else []


def check_references(
    child: pa.Table, column: str, parent: pa.Table, parent_column: str, what: str
) -> list[str]:
    """Every value of ``child[column]`` exists in ``parent[parent_column]``."""
    values = pc.unique(child.column(column).combine_chunks())
    known = pc.is_in(values, value_set=parent.column(parent_column).combine_chunks())
    missing = pc.filter(values, pc.invert(known)).to_pylist()
    return (
        [f"{len(missing)} {column} values not in {what}: {_show(sorted(missing))}"]
        if missing
        else []
    )


def check_offsets(documents: pa.Table, rows: pa.Table, what: str) -> list[str]:
    """``documents.text[char_start:char_end] == rows.text`` for every row."""
    text = dict(
        zip(
            documents.column("doc_id").to_pylist(),
            documents.column("text").to_pylist(),
            strict=True,
        )
    )
    bad = [
        r["doc_id"]
        for r in rows.select(["doc_id", "text", "char_start", "char_end"]).to_pylist()
        if text.get(r["doc_id"], "")[r["char_start"] : r["char_end"]] != r["text"]
    ]
    return [f"{len(bad)} {what} do not match their document's text: {_show(bad)}"] if bad else []


def check_one_primary(claim_themes: pa.Table, claims: pa.Table) -> list[str]:
    """Every claim has exactly one rank-1 theme row."""
    primary = claim_themes.filter(pc.equal(claim_themes.column("rank"), 1)).column("claim_id")
    problems = check_unique(pa.table({"claim_id": primary}), "claim_id")
    ids = claims.column("claim_id").combine_chunks()
    missing = pc.filter(ids, pc.invert(pc.is_in(ids, value_set=primary.combine_chunks())))
    if len(missing):
        problems.append(
            f"{len(missing)} claims without a rank-1 theme: {_show(sorted(missing.to_pylist()))}"
        )
    return problems


def check_embedding_file(
    embeddings: TableFile, claims: TableFile, tolerance: float = 1e-3
) -> list[str]:
    """One finite, L2-normalised embedding per claim, read from disk a batch at a time.

    Rows must be in claim order (as :func:`pipeline.embed.embed_claims` writes them); the
    check compares ids row by row instead of sorting both lists.
    """
    problems = []
    off = non_finite = mismatched = 0
    low, high = np.inf, -np.inf
    n_emb = embeddings.num_rows
    ids = claims.batches(["claim_id"])
    pending = pa.array([], pa.string())
    for batch in embeddings.batches(["claim_id", "embedding"]):
        col = batch.column("embedding")
        vectors = col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size)
        norms = np.linalg.norm(vectors, axis=1)
        bad = np.abs(norms - 1) > tolerance
        off += int(bad.sum())
        if bad.any():
            low, high = min(low, float(norms[bad].min())), max(high, float(norms[bad].max()))
        non_finite += int((~np.isfinite(vectors)).any(axis=1).sum())
        while len(pending) < batch.num_rows:
            more = next(ids, None)
            if more is None:
                break
            pending = pa.concat_arrays([pending, more.column(0)])
        n = min(len(pending), batch.num_rows)
        mismatched += batch.num_rows - n
        if n:
            same = pc.equal(batch.column("claim_id").slice(0, n), pending.slice(0, n))
            mismatched += n - pc.sum(same).as_py()
        pending = pending.slice(n)
    if off:
        problems.append(f"{off} embeddings are not L2-normalised (norms {low:.4f}..{high:.4f})")
    if non_finite:
        problems.append(f"{non_finite} embeddings contain NaN or infinity")
    n_claims = claims.num_rows
    if mismatched or n_emb != n_claims:
        problems.append(
            f"{n_emb} embeddings for {n_claims} claims ({mismatched} rows out of claim order "
            "or with another claim_id)"
        )
    return problems


def check_shares(document_themes: pa.Table, tolerance: float = 1e-4) -> list[str]:
    """Each document's theme shares sum to 1."""
    sums: dict[str, float] = {}
    for doc, share in zip(
        document_themes.column("doc_id").to_pylist(),
        document_themes.column("share").to_pylist(),
        strict=True,
    ):
        sums[doc] = sums.get(doc, 0.0) + share
    bad = [d for d, s in sums.items() if abs(s - 1) > tolerance]
    return [f"{len(bad)} documents whose theme shares do not sum to 1: {_show(bad)}"] if bad else []


def check_accounting(
    raw_dir: str | os.PathLike[str], listed: list[str], listed_before: float | None = None
) -> list[str]:
    """No document silently missing: every raw file is a document, a reject or a duplicate.

    A sidecar of a listed file and the raw dir's metadata table count as read with it.

    Args:
        raw_dir: The raw dir.
        listed: ``source_path`` values of documents, rejected files and duplicates.
        listed_before: Ignore files modified at or after this time (epoch seconds): they arrived
            after the run listed the folder and belong to the next run.
    """
    problems = []
    seen: set[str] = set()
    twice = sorted({p for p in listed if p in seen or seen.add(p)})  # type: ignore[func-returns-value]
    if twice:
        problems.append(f"{len(twice)} files listed more than once: {_show(twice)}")
    root = Path(raw_dir)
    on_disk = []
    for path in walk_files(root):
        try:
            mtime = path.lstat().st_mtime
        except OSError:
            continue  # removed since: nothing to account for
        if listed_before is None or mtime < listed_before:
            on_disk.append(relative_path(path, root))
    # Metadata is read with its article, not listed on its own (pipeline.metadata).
    stems = {p.rsplit(".", 1)[0] for p in seen}
    missing = sorted(
        p
        for p in set(on_disk) - seen
        if p not in METADATA_TABLES
        and not (p.endswith(SIDECAR_SUFFIX) and p[: -len(SIDECAR_SUFFIX)] in stems)
    )
    if missing:
        problems.append(f"{len(missing)} raw files are in no table: {_show(missing)}")
    return problems


def check_shrink(
    documents: int, published: int | None, max_shrink: float, raw_dir: str
) -> list[str]:
    """The corpus did not vanish or shrink by more than ``max_shrink`` since the last run.

    An unmounted network share or an emptied folder looks like every article deleted; publishing
    that would replace good tables with empty ones. ``published`` is the last published run's
    document count (None: no previous run).
    """
    if not published or max_shrink >= 1.0:
        return []
    setting = "set max_corpus_shrink to 1.0 (PipelineSettings) to publish it on purpose"
    if documents == 0:
        return [
            f"{raw_dir} yields no documents while the last published run had {published}: "
            f"is the folder unmounted or emptied? The published tables are kept; {setting}"
        ]
    lost = 1 - documents / published
    if lost > max_shrink:
        return [
            f"{raw_dir} yields {documents} documents, {lost:.0%} fewer than the {published} of "
            f"the last published run (more than max_corpus_shrink = {max_shrink:.0%}); the "
            f"published tables are kept; {setting}"
        ]
    return []


def check_pairs(matches: pa.Table) -> list[str]:
    """Claim pairs: each once, ordered, the two claims in different documents."""
    problems = []
    same_doc = pc.sum(pc.equal(matches["doc_id"], matches["other_doc_id"])).as_py() or 0
    if same_doc:
        problems.append(f"{same_doc} pairs of claims of one document")
    unordered = pc.sum(pc.greater_equal(matches["claim_id"], matches["other_claim_id"])).as_py()
    if unordered:
        problems.append(f"{unordered} pairs not ordered as claim_id < other_claim_id")
    keys = pc.binary_join_element_wise(matches["claim_id"], matches["other_claim_id"], "|")
    if len(pc.unique(keys)) != matches.num_rows:
        problems.append("pairs listed more than once")
    return problems


def check_canonical(clusters: pa.Table) -> list[str]:
    """Exactly one canonical claim per cluster, and it is the one the rows name."""
    canonical = clusters.filter(clusters["is_canonical"])
    problems = check_unique(canonical, "cluster_id")
    n_clusters = len(pc.unique(clusters["cluster_id"]))
    if canonical.num_rows != n_clusters:
        problems.append(f"{n_clusters - canonical.num_rows} clusters without a canonical claim")
    wrong = pc.sum(pc.not_equal(canonical["claim_id"], canonical["canonical_claim_id"])).as_py()
    if wrong:
        problems.append(f"{wrong} canonical rows naming another claim")
    return problems
