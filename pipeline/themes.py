"""Themes: named themes from a catalog, plus themes discovered in the claims that fit none.

Assignment (see docs/themes.md):

1. Each named theme has seed phrases and a description. A claim's raw score for a theme blends
   its best cosine to a seed phrase, its cosine to the seeds' centroid and to the description.
2. Context: the raw scores are mixed with the mean scores of the claim's paragraph and document,
   because a news paragraph develops one idea and a sentence alone is often ambiguous.
3. A claim takes the best named theme if the score clears ``assign_threshold``. The rest are
   clustered (k-means, k chosen by silhouette); clusters smaller than ``min_cluster_size`` are
   ``unassigned`` rather than noise themes.
4. Keywords come from class-based TF-IDF (c-TF-IDF) over each theme's claims.

Memory: claims are read in chunks of whole documents (a :data:`ClaimSource`), several times,
instead of held at once. Across the whole corpus the model keeps a few numbers per claim (its
labels and scores), one mean vector per document, and at most ``fit_sample`` vectors for
discovery; above that, discovery is fitted on a sample and the other claims are assigned to
its themes.

Everything is deterministic: inputs are used in the order given (callers sort them) and all
randomness goes through ``random_state``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.embed import align_embeddings
from pipeline.ids import stable_id
from pipeline.schemas import SCHEMAS, to_table
from pipeline.storage import TableFile

__all__ = [
    "UNASSIGNED",
    "ClaimChunk",
    "ClaimSource",
    "NamedTheme",
    "ThemeCatalog",
    "ThemeConfig",
    "ThemeModel",
    "PreviousThemes",
    "ThemeVectors",
    "INPUTS_KEY",
    "array_claims",
    "assign_themes",
    "claim_theme_table",
    "ctfidf_keywords",
    "document_theme_table",
    "file_claims",
    "theme_rows",
    "trend_table",
    "theme_inputs_key",
    "load_catalog",
]

log = logging.getLogger(__name__)

UNASSIGNED: Final = "unassigned"
INPUTS_KEY: Final = b"docthemes.theme_inputs"


class NamedTheme(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    seed_phrases: list[str] = Field(min_length=1)


class ThemeCatalog(BaseModel):
    """The theme catalog file: ``version`` and a mapping of theme key to :class:`NamedTheme`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    themes: dict[str, NamedTheme] = Field(min_length=1)

    @field_validator("themes")
    @classmethod
    def _keys_are_ids(cls, themes: dict[str, NamedTheme]) -> dict[str, NamedTheme]:
        for key in themes:
            if not key.replace("_", "").isalnum() or not key.islower():
                raise ValueError(f"theme key {key!r} must be lower_snake_case")
            if key == UNASSIGNED or key.startswith("discovered_"):
                raise ValueError(f"theme key {key!r} is reserved")
        return themes


def load_catalog(path: str | Path | None = None) -> ThemeCatalog:
    """Load and validate a theme catalog (the packaged one when ``path`` is None).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        pydantic.ValidationError: If the file does not match the catalog schema.
    """
    if path is None:
        raw = resources.files("pipeline").joinpath("data/theme_catalog.yaml").read_text("utf-8")
    else:
        raw = Path(path).read_text(encoding="utf-8")
    return ThemeCatalog.model_validate(yaml.safe_load(raw))


class ThemeConfig(BaseModel):
    """Assignment and discovery settings; the defaults are documented in docs/themes.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assign_threshold: float = Field(0.45, ge=0, le=1)
    secondary_threshold: float = Field(0.5, ge=0, le=1)
    secondary_margin: float = Field(0.08, ge=0, le=1)
    max_secondary: int = Field(2, ge=0)
    seed_weight: float = Field(0.5, ge=0)
    centroid_weight: float = Field(0.25, ge=0)
    description_weight: float = Field(0.25, ge=0)
    context_weight: float = Field(0.4, ge=0, lt=1)
    paragraph_share: float = Field(0.7, ge=0, le=1)
    min_cluster_size: int = Field(3, ge=2)
    max_discovered: int = Field(40, ge=1)
    max_claims_per_theme: int = Field(2000, ge=10)
    discovery_context_weight: float = Field(0.5, ge=0, lt=1)
    max_broad: int = Field(12, ge=2)
    match_threshold: float = Field(0.8, ge=0, le=1)
    novelty_threshold: float = Field(0.35, ge=-1, le=1)
    novel_min_documents: int = Field(3, ge=1)
    stickiness: float = Field(0.03, ge=0, le=1)
    n_keywords: int = Field(8, ge=1)
    keyword_sample: int = Field(1000, ge=10)
    n_representatives: int = Field(5, ge=1)
    silhouette_sample: int = Field(3000, ge=100)
    search_sample: int = Field(5000, ge=100)
    fit_sample: int = Field(50_000, ge=100)
    random_state: int = 0


@dataclass(frozen=True, slots=True)
class ThemeVectors:
    """Embedded catalog: per theme, its seed phrase vectors and description vector."""

    keys: list[str]
    seeds: list[np.ndarray]
    descriptions: np.ndarray  # (n_themes, dim)

    @classmethod
    def from_catalog(cls, catalog: ThemeCatalog, embed: Any) -> ThemeVectors:
        """Embed the catalog with ``embed(texts) -> (n, dim)`` normalised vectors."""
        keys = sorted(catalog.themes)
        # The label is itself a short seed phrase ("Energy axis"), often used verbatim in text.
        phrases = [[catalog.themes[k].label, *catalog.themes[k].seed_phrases] for k in keys]
        descriptions = [catalog.themes[k].description for k in keys]
        # One call for the whole catalog: each call is a cache lookup.
        vectors = np.asarray(embed([p for ps in phrases for p in ps] + descriptions), np.float32)
        bounds = np.cumsum([0] + [len(ps) for ps in phrases])
        seeds = [vectors[bounds[i] : bounds[i + 1]] for i in range(len(keys))]
        desc = vectors[bounds[-1] :]
        return cls(keys, seeds, desc)


@dataclass(slots=True)
class ThemeInfo:
    """A theme row before it becomes a table row."""

    theme_id: str
    label: str
    kind: str
    member_idx: np.ndarray
    centroid: np.ndarray | None = None
    keywords: list[str] = field(default_factory=list)
    representatives: list[int] = field(default_factory=list)
    coherence: float | None = None
    parent_id: str | None = None


CHUNK_ROWS: Final = 16_384
REPLAY_CLAIMS: Final = 50_000  # at most this many claims are kept between passes (~90 MB)


@dataclass(frozen=True, slots=True)
class ClaimChunk:
    """Consecutive claims, whole documents only, with their embeddings.

    Whole documents because a claim's scores and discovery vector mix in its paragraph's and
    document's means: a document cut in two would give its claims other values.
    """

    start: int  # position of the first claim in the claims table
    claim_ids: list[str]
    doc_ids: list[str]
    texts: list[str]
    paragraphs: list[int]
    embeddings: np.ndarray  # (len, dim), L2-normalised

    def __len__(self) -> int:
        """Number of claims."""
        return len(self.claim_ids)

    def rows(self, a: int, b: int, start: int) -> ClaimChunk:
        """Claims ``a`` to ``b`` of this chunk, the first being claim ``start`` of the table."""
        return ClaimChunk(
            start,
            self.claim_ids[a:b],
            self.doc_ids[a:b],
            self.texts[a:b],
            self.paragraphs[a:b],
            self.embeddings[a:b],
        )

    @staticmethod
    def concat(parts: Sequence[ClaimChunk]) -> ClaimChunk:
        """One chunk of these parts, in order."""
        if len(parts) == 1:
            return parts[0]
        return ClaimChunk(
            parts[0].start,
            [c for p in parts for c in p.claim_ids],
            [d for p in parts for d in p.doc_ids],
            [t for p in parts for t in p.texts],
            [g for p in parts for g in p.paragraphs],
            np.concatenate([p.embeddings for p in parts]),
        )


ClaimSource = Callable[[], Iterable[ClaimChunk]]
"""Reads the claims afresh on each call, chunk by chunk: the model makes several passes."""


def array_claims(
    embeddings: np.ndarray,
    texts: Sequence[str],
    doc_ids: Sequence[str],
    paragraphs: Sequence[int],
    claim_ids: Sequence[str],
    chunk_rows: int = CHUNK_ROWS,
) -> ClaimSource:
    """Claims held in memory, as a source (tests, benchmarks, small inputs).

    Raises:
        ValueError: If a document's claims are not consecutive.
    """
    if not len(embeddings) == len(texts) == len(doc_ids) == len(paragraphs) == len(claim_ids):
        raise ValueError("embeddings, texts, doc_ids, paragraphs and claim_ids differ in length")

    def pieces() -> Iterator[ClaimChunk]:
        for a in range(0, len(claim_ids), chunk_rows):
            b = a + chunk_rows
            yield ClaimChunk(
                a,
                list(claim_ids[a:b]),
                list(doc_ids[a:b]),
                list(texts[a:b]),
                list(paragraphs[a:b]),
                np.asarray(embeddings[a:b], dtype=np.float32),
            )

    return lambda: _whole_documents(pieces(), chunk_rows)


def file_claims(
    claims: TableFile, embeddings: TableFile, chunk_rows: int = CHUNK_ROWS
) -> ClaimSource:
    """The ``claims`` table and its ``claim_embeddings``, read a batch at a time.

    Raises:
        ValueError: If a document's claims are not consecutive, or the tables differ in rows.
        KeyError: If a claim's embedding is not in the same batch (stale embeddings).
    """

    def pieces() -> Iterator[ClaimChunk]:
        vectors = _Rows(embeddings.batches(["claim_id", "embedding"], batch_size=chunk_rows))
        start = 0
        for batch in claims.batches(["claim_id", "doc_id", "text", "paragraph"], chunk_rows):
            ids = batch.column("claim_id")
            yield ClaimChunk(
                start,
                ids.to_pylist(),
                batch.column("doc_id").to_pylist(),
                batch.column("text").to_pylist(),
                batch.column("paragraph").to_pylist(),
                align_embeddings(vectors.take(batch.num_rows), ids),
            )
            start += batch.num_rows
        if not vectors.exhausted():
            raise ValueError("claim_embeddings has more rows than claims: rematerialize it")

    return lambda: _whole_documents(pieces(), chunk_rows)


class _Rows:
    """Record batches re-cut to any number of rows (two files' batches need not line up)."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self._pending: list[pa.RecordBatch] = []
        self._size = 0

    def exhausted(self) -> bool:
        """Whether every row has been taken."""
        while not self._size:
            batch = next(self._batches, None)
            if batch is None:
                return True
            self._pending, self._size = [batch], batch.num_rows
        return False

    def take(self, n: int) -> pa.Table:
        while self._size < n:
            batch = next(self._batches, None)
            if batch is None:
                break
            self._pending.append(batch)
            self._size += batch.num_rows
        table = pa.Table.from_batches(self._pending) if self._pending else pa.table({})
        if table.num_rows < n:
            raise ValueError("claim_embeddings has fewer rows than claims: rematerialize it")
        head, rest = table.slice(0, n), table.slice(n)
        self._pending, self._size = rest.to_batches(), rest.num_rows
        return head


def _whole_documents(pieces: Iterable[ClaimChunk], chunk_rows: int) -> Iterator[ClaimChunk]:
    """Chunks of about ``chunk_rows`` claims that end where a document ends."""
    pending: list[ClaimChunk] = []
    size = start = 0
    finished: set[str] = set()

    def checked(chunk: ClaimChunk) -> ClaimChunk:
        firsts = [0, *(i for i in range(1, len(chunk)) if chunk.doc_ids[i] != chunk.doc_ids[i - 1])]
        for i in firsts:
            doc = chunk.doc_ids[i]
            if doc in finished:
                raise ValueError(
                    f"the claims of document {doc} are not consecutive: sort claims by doc_id"
                )
            finished.add(doc)
        return chunk

    for piece in pieces:
        pending.append(piece)
        size += len(piece)
        if size < chunk_rows:
            continue
        merged = ClaimChunk.concat(pending)
        docs = merged.doc_ids
        cut = next((i for i in range(len(docs) - 1, 0, -1) if docs[i] != docs[i - 1]), 0)
        if cut == 0:  # one document so far: wait for the next one to start
            pending = [merged]
            continue
        yield checked(merged.rows(0, cut, start))
        start += cut
        pending, size = [merged.rows(cut, len(merged), start)], len(merged) - cut
    if size:
        yield checked(ClaimChunk.concat(pending).rows(0, size, start))


class ThemeModel:
    """Assign claims to named themes and discover the others (scikit-learn style).

    Args:
        vectors: The embedded catalog.
        config: Thresholds and weights.

    Attributes (after ``fit``):
        labels_: Primary theme id per claim.
        scores_: Primary score per claim.
        named_scores_: ``(n, n_named)`` context-mixed scores per named theme.
        themes_: :class:`ThemeInfo` per theme, named first (catalog order), then discovered,
            broad and ``unassigned``.
        retired_: Rows of last run's discovered and broad themes that did not come back.
        doc_ids_: Each document, in order of first appearance.
        doc_index_: Per claim, its document's position in ``doc_ids_``.
        sampled_: Whether discovery was fitted on a sample of ``fit_sample`` claims.
        representative_ids_: Claim id of each theme's representatives, by position.
    """

    def __init__(self, vectors: ThemeVectors, config: ThemeConfig | None = None) -> None:
        """Store parameters only; all work happens in :meth:`fit`."""
        self.vectors = vectors
        self.config = config

    def fit(self, claims: ClaimSource, previous: PreviousThemes | None = None) -> ThemeModel:
        """Assign every claim a primary theme.

        Reads ``claims`` two or three times, a chunk at a time.

        Args:
            claims: The claims with their embeddings (:func:`file_claims`, :func:`array_claims`).
            previous: The last run's themes; their ids are kept for the same themes.
        """
        cfg = self.config or ThemeConfig()
        claims = _Replay(claims, REPLAY_CLAIMS)
        scan = self._scan(claims, cfg, previous)
        keys = np.asarray(self.vectors.keys, dtype=object)
        n = len(scan.best)
        labels = keys[scan.best] if n else np.zeros(0, dtype=object)
        labels[~scan.named] = UNASSIGNED
        scores = scan.best_score.copy()

        themes: list[ThemeInfo] = []
        for k, key in enumerate(self.vectors.keys):
            themes.append(ThemeInfo(key, key, "named", np.flatnonzero(labels == key)))
            themes[-1].centroid = _unit(self.vectors.seeds[k].mean(axis=0))
        sample = scan.sample
        fine = _fine_themes(
            sample.vectors, sample.claim_ids, sample.doc_ids, sample.previous, cfg, previous
        )
        for theme_id, members, centroid in fine:
            labels[sample.index[members]] = theme_id
            scores[sample.index[members]] = sample.vectors[members] @ centroid
        self.sampled_ = sample.sampled
        sample.drop_vectors()  # up to fit_sample of them; the other passes read chunks
        if self.sampled_ and fine:
            self._assign_unsampled(claims, cfg, previous, fine, scan, labels, scores)
        for theme_id, _, centroid in fine:
            members = np.flatnonzero(labels == theme_id)
            themes.append(ThemeInfo(theme_id, theme_id, "discovered", members, centroid))
        named_means = {
            key: _unit(scan.named_sums[k])
            for k, key in enumerate(self.vectors.keys)
            if len(themes[k].member_idx)
        }
        themes += _broad_themes(
            themes, scan.doc_vectors, scan.doc_index, named_means, cfg, previous
        )
        self.retired_ = _retired(themes, previous)
        themes.append(
            ThemeInfo(UNASSIGNED, "Unassigned", UNASSIGNED, np.flatnonzero(labels == UNASSIGNED))
        )
        self.labels_ = labels
        self.scores_ = scores
        self.named_scores_ = scan.named_scores
        self.doc_ids_ = scan.doc_ids
        self.doc_index_ = scan.doc_index
        self.themes_ = themes
        self._describe(claims, cfg, named_means)
        return self

    def _scan(
        self, claims: ClaimSource, cfg: ThemeConfig, previous: PreviousThemes | None
    ) -> _Scan:
        """First pass: named scores, document vectors, and the claims left to discovery."""
        dim = self.vectors.descriptions.shape[1]
        n_named = len(self.vectors.keys)
        named_scores, doc_index, doc_vectors = [], [], []
        doc_ids: list[str] = []
        named_sums = np.zeros((n_named, dim), dtype=np.float64)
        sample = _RestSample(cfg.fit_sample, cfg.random_state, dim)
        for chunk in claims():
            scores = _mix_context(
                self._raw_scores(chunk.embeddings, cfg),
                chunk.doc_ids,
                chunk.paragraphs,
                cfg.context_weight,
                cfg.paragraph_share,
            )
            named_scores.append(scores)
            groups = _group_ids(chunk.doc_ids)
            n_docs = int(groups.max()) + 1
            doc_index.append(groups + len(doc_ids))
            doc_ids += [chunk.doc_ids[i] for i in np.unique(groups, return_index=True)[1]]
            doc_vectors.append(_unit_rows(_group_means(chunk.embeddings, groups, n_docs)))
            best = scores.argmax(axis=1)
            named = scores[np.arange(len(chunk)), best] >= cfg.assign_threshold
            for k in np.unique(best[named]):
                named_sums[k] += chunk.embeddings[named & (best == k)].sum(axis=0)
            rest = np.flatnonzero(~named)
            if len(rest):
                space = _document_context(
                    chunk.embeddings, chunk.doc_ids, cfg.discovery_context_weight
                )
                rest_ids = [chunk.claim_ids[i] for i in rest]
                sample.add(
                    chunk.start + rest,
                    rest_ids,
                    [chunk.doc_ids[i] for i in rest],
                    previous.labels_of(rest_ids) if previous else [None] * len(rest),
                    space[rest],
                )
        scores = (
            np.concatenate(named_scores)
            if named_scores
            else np.zeros((0, n_named), dtype=np.float32)
        )
        n = len(scores)
        best = scores.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
        best_score = scores[np.arange(n), best] if n else np.zeros(0, dtype=np.float32)
        return _Scan(
            named_scores=scores,
            best=best,
            best_score=best_score.astype(np.float32),
            named=best_score >= cfg.assign_threshold,
            doc_index=np.concatenate(doc_index) if doc_index else np.zeros(0, dtype=np.int64),
            doc_ids=doc_ids,
            doc_vectors=(
                np.concatenate(doc_vectors) if doc_vectors else np.zeros((0, dim), np.float32)
            ),
            named_sums=named_sums.astype(np.float32),
            sample=sample,
        )

    def _assign_unsampled(
        self,
        claims: ClaimSource,
        cfg: ThemeConfig,
        previous: PreviousThemes | None,
        fine: list[tuple[str, np.ndarray, np.ndarray]],
        scan: _Scan,
        labels: np.ndarray,
        scores: np.ndarray,
    ) -> None:
        """Second pass, above ``fit_sample``: the claims discovery did not see join its themes.

        Each joins the nearest theme unless it is novel next to every one (then it stays
        unassigned); a claim that had a theme last night keeps it unless another is clearly
        closer. The same rules the warm start applies to the claims it fits.
        """
        ids = [tid for tid, _, _ in fine]
        centroids = np.stack([c for _, _, c in fine])
        column = {tid: c for c, tid in enumerate(ids)}
        for chunk in claims():
            a = chunk.start
            rows = np.flatnonzero(~scan.named[a : a + len(chunk)])
            rows = rows[~np.isin(a + rows, scan.sample.index)]
            if not len(rows):
                continue
            space = _document_context(chunk.embeddings, chunk.doc_ids, cfg.discovery_context_weight)
            sims = space[rows] @ centroids.T
            best = sims.argmax(axis=1)
            top = sims.max(axis=1)
            pick = np.where(top >= cfg.novelty_threshold, best, -1)
            prev = previous.labels_of([chunk.claim_ids[i] for i in rows]) if previous else []
            _keep_previous(pick, sims, top, prev, column, cfg.stickiness)
            placed = pick >= 0
            labels[a + rows[placed]] = np.asarray(ids, dtype=object)[pick[placed]]
            scores[a + rows[placed]] = sims[np.flatnonzero(placed), pick[placed]]

    def _describe(
        self, claims: ClaimSource, cfg: ThemeConfig, named_means: Mapping[str, np.ndarray]
    ) -> None:
        """Last pass: each theme's keywords, label, representatives and coherence.

        Representatives are the members nearest the centroid, kept as a running top-k; keywords
        come from at most ``keyword_sample`` claims per theme, evenly spread: their cost stays
        bounded as the corpus grows night after night (a broad theme would otherwise re-read
        every claim of its children).
        """
        themes = self.themes_
        position = {t.theme_id: p for p, t in enumerate(themes)}
        primary = np.fromiter((position[lab] for lab in self.labels_), np.int64, len(self.labels_))
        parent = np.array([position.get(t.parent_id or "", -1) for t in themes])
        levels = (primary, parent[primary])  # a claim counts in its theme and in its broad theme
        picks = [_spread(t.member_idx, cfg.keyword_sample) for t in themes]
        wanted = np.unique(np.concatenate(picks)) if picks else np.zeros(0, np.int64)
        texts: dict[int, str] = {}
        self.representative_ids_: dict[int, str] = {}
        best = [_TopK(cfg.n_representatives) for _ in themes]
        totals = np.zeros(len(themes), dtype=np.float64)
        for chunk in claims():
            a, b = chunk.start, chunk.start + len(chunk)
            lo, hi = np.searchsorted(wanted, [a, b])
            texts |= {int(i): chunk.texts[int(i) - a] for i in wanted[lo:hi]}
            space = _document_context(chunk.embeddings, chunk.doc_ids, cfg.discovery_context_weight)
            for level in levels:
                codes = level[a:b]
                for p in np.unique(codes[codes >= 0]):
                    theme = themes[p]
                    if theme.centroid is None:
                        continue
                    rows = np.flatnonzero(codes == p)
                    clustered = theme.kind in ("discovered", "broad")
                    sims = (space if clustered else chunk.embeddings)[rows] @ theme.centroid
                    best[p].add(sims, a + rows, [chunk.claim_ids[i] for i in rows])
                    if clustered:
                        totals[p] += float(sims.sum(dtype=np.float64))
                    else:
                        totals[p] += float(
                            (chunk.embeddings[rows] @ named_means[theme.theme_id]).sum(
                                dtype=np.float64
                            )
                        )
        keywords = ctfidf_keywords(
            [" ".join(texts[int(i)] for i in pick) for pick in picks], cfg.n_keywords
        )
        for p, (theme, kw) in enumerate(zip(themes, keywords, strict=True)):
            theme.keywords = kw
            if theme.kind in ("discovered", "broad"):
                theme.label = " / ".join(kw[:3]) if kw else theme.theme_id
            if theme.centroid is not None and len(theme.member_idx):
                picked = best[p].best()
                theme.representatives = list(picked)
                self.representative_ids_ |= picked
                theme.coherence = totals[p] / len(theme.member_idx)

    def secondary(self, start: int = 0, stop: int | None = None) -> list[list[tuple[str, float]]]:
        """Per claim (``start`` to ``stop``), named themes other than the primary that also fit.

        Best first, at most ``max_secondary``.
        """
        cfg = self.config or ThemeConfig()
        scores = self.named_scores_[start:stop]
        if not len(scores) or not scores.shape[1] or cfg.max_secondary == 0:
            return [[] for _ in range(len(scores))]
        keys = np.asarray(self.vectors.keys, dtype=object)
        top = scores.max(axis=1, keepdims=True)
        fits = (
            (scores >= cfg.secondary_threshold)
            & (scores >= top - cfg.secondary_margin)
            & (keys[None, :] != np.asarray(self.labels_[start:stop], dtype=object)[:, None])
        )
        # Rounded scores and a stable sort: cached and fresh embeddings differ by ~1e-7.
        order = np.argsort(-_ranking(scores), axis=1, kind="stable")
        out: list[list[tuple[str, float]]] = [[] for _ in range(len(scores))]
        for i in np.flatnonzero(fits.any(axis=1)):
            picks = [(str(keys[j]), float(scores[i, j])) for j in order[i] if fits[i, j]]
            out[i] = picks[: cfg.max_secondary]
        return out

    def _raw_scores(self, embeddings: np.ndarray, cfg: ThemeConfig) -> np.ndarray:
        total = cfg.seed_weight + cfg.centroid_weight + cfg.description_weight
        cols = []
        for k in range(len(self.vectors.keys)):
            seed_sims = embeddings @ self.vectors.seeds[k].T
            seed_max = seed_sims.max(axis=1) if len(embeddings) else np.zeros(0)
            centroid = embeddings @ _unit(self.vectors.seeds[k].mean(axis=0))
            desc = embeddings @ self.vectors.descriptions[k]
            cols.append(
                (
                    cfg.seed_weight * seed_max
                    + cfg.centroid_weight * centroid
                    + cfg.description_weight * desc
                )
                / total
            )
        return np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((len(embeddings), 0))


@dataclass(slots=True)
class _Scan:
    """What the first pass over the claims keeps (see :meth:`ThemeModel._scan`)."""

    named_scores: np.ndarray  # (n, n_named)
    best: np.ndarray  # best named theme per claim
    best_score: np.ndarray
    named: np.ndarray  # the best named theme clears assign_threshold
    doc_index: np.ndarray  # per claim, position of its document in doc_ids
    doc_ids: list[str]
    doc_vectors: np.ndarray  # (n_docs, dim) unit mean of each document's claims
    named_sums: np.ndarray  # (n_named, dim) sum of each named theme's members
    sample: _RestSample


class _Replay:
    """A source whose chunks are kept after the first pass if they total ``limit`` claims or less.

    Small corpora (BBC's 40,000 claims) are then read once instead of two or three times; the
    memory this holds is capped by ``limit``, not by the corpus.
    """

    def __init__(self, source: ClaimSource, limit: int) -> None:
        self._source, self._limit = source, limit
        self._kept: list[ClaimChunk] | None = None

    def __call__(self) -> Iterator[ClaimChunk]:
        """The chunks: from memory once a complete first pass kept them, else read afresh."""
        return iter(self._kept) if self._kept is not None else self._read()

    def _read(self) -> Iterator[ClaimChunk]:
        kept: list[ClaimChunk] | None = []
        held = 0
        for chunk in self._source():
            held += len(chunk)
            if kept is not None and held > self._limit:
                kept = None
            elif kept is not None:
                kept.append(chunk)
            yield chunk
        self._kept = kept


class _RestSample:
    """The claims left to discovery, or ``limit`` of them drawn by a seeded hash of their id.

    The draw depends on the claim ids and ``random_state`` only, not on the order or the
    chunking, so the same claims are drawn every night they are present. Members are kept in
    table order: below the limit, discovery sees exactly what it would see in memory.
    """

    def __init__(self, limit: int, random_state: int, dim: int) -> None:
        self.limit, self.random_state = limit, random_state
        self.index = np.zeros(0, dtype=np.int64)
        # Joined when read or pruned, not on every chunk: each join copies every vector held.
        self._vectors = [np.zeros((0, dim), dtype=np.float32)]
        self.claim_ids: list[str] = []
        self.doc_ids: list[str] = []
        self.previous: list[str | None] = []
        self._priority = np.zeros(0, dtype=np.uint64)
        self.sampled = False

    def add(
        self,
        index: np.ndarray,
        claim_ids: list[str],
        doc_ids: list[str],
        previous: list[str | None],
        vectors: np.ndarray,
    ) -> None:
        """Offer these claims (positions in the table, ascending, after those already held)."""
        self.index = np.concatenate([self.index, index])
        self._vectors.append(vectors)
        self.claim_ids += claim_ids
        self.doc_ids += doc_ids
        self.previous += previous
        if len(self.index) > self.limit:
            # Priorities only once the limit is passed: below it every claim is kept anyway.
            salt = f"{self.random_state}\x1f".encode()
            new = self.claim_ids[len(self._priority) :]
            priority = np.fromiter(
                (
                    int.from_bytes(hashlib.sha256(salt + c.encode()).digest()[:8], "big")
                    for c in new
                ),
                dtype=np.uint64,
                count=len(new),
            )
            self._priority = np.concatenate([self._priority, priority])
            keep = np.sort(np.argpartition(self._priority, self.limit - 1)[: self.limit])
            self.index, self._vectors = self.index[keep], [self.vectors[keep]]
            self._priority = self._priority[keep]
            self.claim_ids = [self.claim_ids[i] for i in keep]
            self.doc_ids = [self.doc_ids[i] for i in keep]
            self.previous = [self.previous[i] for i in keep]
            self.sampled = True

    @property
    def vectors(self) -> np.ndarray:
        """The held claims' discovery vectors, in table order."""
        if len(self._vectors) > 1:
            self._vectors = [np.concatenate(self._vectors)]
        return self._vectors[0]

    def drop_vectors(self) -> None:
        """Free the vectors once discovery has run."""
        self._vectors = [self.vectors[:0]]


class _TopK:
    """The ``k`` highest scores seen so far with their positions; ties go to the lower position.

    Scores are compared rounded (:func:`_ranking`), as the in-memory ranking did.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self._scores = np.zeros(0, dtype=np.float64)
        self._index = np.zeros(0, dtype=np.int64)
        self._ids = np.zeros(0, dtype=object)

    def add(self, scores: np.ndarray, index: np.ndarray, ids: Sequence[str]) -> None:
        """Offer more candidates: their scores, positions and claim ids."""
        all_scores = np.concatenate([self._scores, _ranking(scores)])
        all_index = np.concatenate([self._index, index])
        all_ids = np.concatenate([self._ids, np.asarray(ids, dtype=object)])
        order = np.lexsort((all_index, -all_scores))[: self.k]
        self._scores, self._index, self._ids = all_scores[order], all_index[order], all_ids[order]

    def best(self) -> dict[int, str]:
        """Position to claim id, best first."""
        return {int(i): str(c) for i, c in zip(self._index, self._ids, strict=True)}


def _ranking(scores: np.ndarray) -> np.ndarray:
    """Scores rounded for ordering decisions.

    Embeddings from the cache were computed in other batches than a fresh run's, which moves
    float32 results by ~1e-7; near-ties must then break by position (a stable sort), not noise.
    """
    rounded: np.ndarray = np.round(scores.astype(np.float64), 4)
    return rounded


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


def _mix_context(
    raw: np.ndarray,
    doc_ids: Sequence[str],
    paragraphs: Sequence[int],
    weight: float,
    paragraph_share: float,
) -> np.ndarray:
    """Blend each claim's scores with its paragraph's and document's mean scores."""
    if weight == 0 or len(raw) == 0:
        return raw
    docs = _group_ids(doc_ids)
    paras = _group_ids(list(zip(doc_ids, paragraphs, strict=True)))
    doc_mean = _group_mean(raw, docs)
    para_mean = _group_mean(raw, paras)
    context = paragraph_share * para_mean + (1 - paragraph_share) * doc_mean
    mixed: np.ndarray = (1 - weight) * raw + weight * context
    return mixed.astype(np.float32)


def _group_ids(keys: Sequence[Any]) -> np.ndarray:
    """Dense group number per item (numbered by first appearance)."""
    ids: dict[Any, int] = {}
    return np.fromiter((ids.setdefault(k, len(ids)) for k in keys), dtype=np.int64, count=len(keys))


def _group_mean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row replaced by the mean of its group's rows (float32, as the embeddings)."""
    means: np.ndarray = _group_means(values, groups, int(groups.max()) + 1)[groups]
    return means


@dataclass(frozen=True, slots=True)
class PreviousThemes:
    """The last run's discovered and broad themes, read back from its published tables.

    Each claim's previous primary theme is kept as sorted fixed-width ids, not a dict: a few
    dozen bytes a claim instead of a few hundred.
    """

    ids: list[str]
    centroids: np.ndarray
    broad_ids: list[str]
    broad_centroids: np.ndarray
    rows: dict[str, dict[str, Any]]
    claim_keys: np.ndarray  # previous claim ids as bytes, sorted
    claim_themes: np.ndarray  # index into ``ids`` of each key's primary theme

    @classmethod
    def from_rows(
        cls, themes: Sequence[dict[str, Any]], claim_themes: pa.Table
    ) -> PreviousThemes | None:
        """Build from `themes` rows and the `claim_themes` table (at least its key columns)."""
        active = [r for r in themes if r["status"] == "active" and r["centroid"] is not None]
        fine = [r for r in active if r["kind"] == "discovered"]
        broad = [r for r in active if r["kind"] == "broad"]
        if not fine and not broad:
            return None

        def stack(rows: list[dict[str, Any]]) -> np.ndarray:
            if not rows:
                return np.zeros((0, 0), dtype=np.float32)
            return np.asarray([r["centroid"] for r in rows], dtype=np.float32)

        ids = [r["theme_id"] for r in fine]
        primary = claim_themes.filter(
            pc.and_(
                pc.equal(claim_themes.column("rank"), 1),
                pc.is_in(claim_themes.column("theme_id"), pa.array(ids, pa.string())),
            )
        )
        keys = _id_bytes(primary.column("claim_id"))
        codes = pc.index_in(primary.column("theme_id"), pa.array(ids, pa.string()))
        themes_of = np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int32)
        order = np.argsort(keys, kind="stable")
        return cls(
            ids,
            stack(fine),
            [r["theme_id"] for r in broad],
            stack(broad),
            {r["theme_id"]: dict(r) for r in themes if r["kind"] in ("discovered", "broad")},
            keys[order],
            themes_of[order],
        )

    def labels_of(self, claim_ids: Sequence[str]) -> list[str | None]:
        """Each claim's discovered theme last night, or None."""
        if not len(self.claim_keys) or not claim_ids:
            return [None] * len(claim_ids)
        wanted = np.asarray(claim_ids, dtype=bytes)
        at = np.minimum(np.searchsorted(self.claim_keys, wanted), len(self.claim_keys) - 1)
        found = self.claim_keys[at] == wanted
        return [
            self.ids[self.claim_themes[j]] if f else None for j, f in zip(at, found, strict=True)
        ]


def _id_bytes(ids: pa.ChunkedArray | pa.Array, block: int = 65_536) -> np.ndarray:
    """Ids as a fixed-width bytes array, converted a block at a time (no list of all of them)."""
    parts = [
        np.asarray(ids.slice(a, block).to_pylist(), dtype=bytes) for a in range(0, len(ids), block)
    ]
    if not parts:
        return np.zeros(0, dtype="S1")
    width = max(p.dtype.itemsize for p in parts)
    return np.concatenate([p.astype(f"S{width}") for p in parts])


def _document_context(embeddings: np.ndarray, doc_ids: Sequence[str], weight: float) -> np.ndarray:
    """Claim vectors pulled towards their document's mean: the space discovery clusters in.

    A news sentence alone often says little about its topic ("He said it was a good result");
    its article does.
    """
    if weight == 0 or len(embeddings) == 0:
        return embeddings
    mixed = _group_mean(embeddings, _group_ids(doc_ids))
    # In place: these arrays are (claims x dim); every temporary costs a pass over memory.
    mixed *= weight
    mixed += (1 - weight) * embeddings
    norms = np.sqrt(np.einsum("ij,ij->i", mixed, mixed))
    mixed /= np.maximum(norms, 1e-12)[:, None]
    return mixed


def _kmeans(x: np.ndarray, k: int, cfg: ThemeConfig, n_init: int | None = None) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(x) > 5000:
        km: Any = MiniBatchKMeans(
            n_clusters=k, random_state=cfg.random_state, n_init=n_init or 3, batch_size=4096
        )
    else:
        km = KMeans(n_clusters=k, random_state=cfg.random_state, n_init=n_init or 4)
    labels: np.ndarray = km.fit_predict(x)
    return labels


def _search_k(x: np.ndarray, ks: list[int], cfg: ThemeConfig) -> np.ndarray | None:
    """Cluster with the k of the best cosine silhouette; return the labels.

    Above ``search_sample`` points, k is chosen on a seeded sample with one k-means start per
    candidate, and only the chosen k is fitted on every point with full restarts: a dozen full
    fits would cost more than the rest of the theme step.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.metrics.pairwise import cosine_distances

    sampled = len(x) > cfg.search_sample
    if sampled:
        rng = np.random.default_rng(cfg.random_state)
        sample = x[np.sort(rng.choice(len(x), cfg.search_sample, replace=False))]
    else:
        sample = x
    # The points silhouette_score(sample_size=..., random_state=...) would draw, and their
    # distances computed once for every k instead of once per k: the same scores, bit for bit,
    # in 40% of the time.
    scored = np.random.RandomState(cfg.random_state).permutation(len(sample))
    scored = scored[: min(len(sample), cfg.silhouette_sample)]
    distances = cosine_distances(sample[scored])
    best: tuple[float, int, np.ndarray] | None = None
    for k in ks:
        labels = _kmeans(sample, k, cfg, n_init=1 if sampled else None)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(silhouette_score(distances, labels[scored], metric="precomputed"))
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels)
    if best is None:
        return None
    return _kmeans(x, best[1], cfg) if sampled else best[2]


def _k_grid(n: int, cfg: ThemeConfig) -> list[int]:
    n_hi = min(cfg.max_discovered, n // cfg.min_cluster_size)
    n_lo = min(n_hi, max(2, -(-n // cfg.max_claims_per_theme)))
    grid = sorted(
        {n_lo, n_hi, *(k for k in (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60))}
    )
    return [k for k in grid if n_lo <= k <= n_hi]


def _count_distinct(x: np.ndarray) -> int:
    """Number of distinct rows, treating rows equal to 5 decimals as one.

    Compares two fixed random projections instead of whole rows: sorting (n x dim) rows costs
    more than the nightly refit itself, and only "how many distinct points" is needed.
    """
    if not len(x):
        return 0
    directions = np.random.default_rng(0).standard_normal((x.shape[1], 2)).astype(np.float32)
    return len(np.unique(np.round(x @ directions, 5), axis=0))


def _fine_themes(
    x: np.ndarray,
    claim_ids: list[str],
    doc_ids: list[str],
    prev_labels: list[str | None],
    cfg: ThemeConfig,
    previous: PreviousThemes | None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Discovered themes: (theme_id, member indices into ``x``, unit centroid), largest first."""
    n = len(x)
    n_distinct = _count_distinct(x)
    if n_distinct < 2 or n < 2 * cfg.min_cluster_size:
        return []
    labels: np.ndarray | None
    if previous is not None and len(previous.ids) >= 1 and len(previous.ids) < n_distinct:
        # Warm start: assign to last night's centroids, then move each centroid once to the mean
        # of its claims (one Lloyd step per night). Themes follow the data gradually instead of
        # being re-drawn by a fresh k-means, which would move boundary claims between ids.
        k = len(previous.ids)
        prev_sims = x @ previous.centroids.T
        labels = prev_sims.argmax(axis=1)
        # Novelty is judged against last night's themes, before any centroid moves, so a new
        # topic cannot be absorbed by a theme that has lost its own claims. Only claims without
        # a theme last night can be novel: an old claim far from every centroid was still
        # placed in its theme by k-means, and moving it would churn ids for no new information.
        unplaced = np.array([p is None for p in prev_labels], dtype=bool)
        novel = np.flatnonzero((prev_sims.max(axis=1) < cfg.novelty_threshold) & unplaced)
        labels[novel] = -1
        centroids = np.stack(
            [
                _unit(x[labels == c].mean(axis=0)) if (labels == c).any() else previous.centroids[c]
                for c in range(k)
            ]
        )
        sims = x @ centroids.T
        best = sims.max(axis=1)
        column = {tid: c for c, tid in enumerate(previous.ids)}
        # Claims with a theme last night are never novel, so every one of them is placed here.
        _keep_previous(labels, sims, best, prev_labels, column, cfg.stickiness)
        if len(novel) >= 2 * cfg.min_cluster_size:
            sub = _search_k(x[novel], _k_grid(len(novel), cfg), cfg)
            if sub is not None:
                labels[novel] = k + sub
                # One new article is not a new theme: a novel cluster must recur across
                # documents, else its claims stay unassigned until more articles join them.
                for c in np.unique(sub):
                    members = novel[sub == c]
                    if len({doc_ids[i] for i in members}) < cfg.novel_min_documents:
                        labels[members] = -1
    else:
        labels = _search_k(x, _k_grid(min(n, n_distinct), cfg), cfg)
        if labels is None:
            return []
    kept = [
        c
        for c in np.unique(labels)
        if c >= 0 and (labels == c).sum() >= cfg.min_cluster_size  # -1: novel, left ungrouped
    ]
    if not kept:
        return []
    # Claims of a group too small to be a theme join the nearest kept theme unless they are
    # novel next to it (the test the nightly warm start applies); else they stay unassigned.
    # Without this a second night on the same data would place them where the first did not.
    centroids = np.stack([_unit(x[labels == c].mean(axis=0)) for c in kept])
    orphans = np.flatnonzero((labels >= 0) & ~np.isin(labels, kept))
    if len(orphans):
        sims = x[orphans] @ centroids.T
        near = sims.max(axis=1) >= cfg.novelty_threshold
        labels[orphans] = np.where(near, np.asarray(kept)[sims.argmax(axis=1)], -1)
    members_of = [np.flatnonzero(labels == c) for c in kept]
    clusters = [(m, _unit(x[m].mean(axis=0))) for m in members_of]
    clusters.sort(key=lambda mc: (-len(mc[0]), int(mc[0][0])))
    ids = _match_ids(
        [c for _, c in clusters],
        [[claim_ids[i] for i in m] for m, _ in clusters],
        previous.ids if previous else [],
        previous.centroids if previous else None,
        "discovered_",
        cfg.match_threshold,
    )
    return [(tid, m, c) for tid, (m, c) in zip(ids, clusters, strict=True)]


def _keep_previous(
    labels: np.ndarray,
    sims: np.ndarray,
    top: np.ndarray,
    previous: Sequence[str | None],
    column: Mapping[str, int],
    stickiness: float,
) -> None:
    """Hysteresis: a claim keeps last night's theme unless another is closer by ``stickiness``.

    ``labels`` (theme columns of ``sims``) are changed in place; ``top`` is each row's best sim.
    """
    for i, prev in enumerate(previous):
        c = column.get(prev) if prev is not None else None
        if c is not None and sims[i, c] >= top[i] - stickiness:
            labels[i] = c


def _match_ids(
    centroids: list[np.ndarray],
    members: list[list[str]],
    prev_ids: list[str],
    prev_centroids: np.ndarray | None,
    prefix: str,
    threshold: float,
) -> list[str]:
    """Keep a previous id for each cluster that matches a previous theme (Hungarian on cosine).

    Unmatched clusters get a new id derived from their members, so an id is never reused for
    a different theme.
    """
    ids = [prefix + stable_id("theme", *sorted(m), length=10) for m in members]
    if prev_centroids is None or not prev_ids or not centroids:
        return ids
    from scipy.optimize import linear_sum_assignment

    sims = np.stack(centroids) @ prev_centroids.T
    rows, cols = linear_sum_assignment(-sims)
    taken = set()
    for r, c in zip(rows, cols, strict=True):
        if sims[r, c] >= threshold:
            ids[r] = prev_ids[c]
            taken.add(prev_ids[c])
    for r, tid in enumerate(ids):  # a fresh id colliding with a retired one: derive another
        while tid in prev_ids and tid not in taken:
            tid = prefix + stable_id("theme", tid, length=10)
        ids[r] = tid
    return ids


def _broad_themes(
    themes: list[ThemeInfo],
    doc_vectors: np.ndarray,
    doc_index: np.ndarray,
    named_means: Mapping[str, np.ndarray],
    cfg: ThemeConfig,
    previous: PreviousThemes | None,
) -> list[ThemeInfo]:
    """Broad themes: clusters of whole documents, into which the fine themes roll up.

    A broad theme is what an article is about (politics, sport…); fine themes are what its
    sentences say. Documents (the unit mean of their claim embeddings, ``doc_vectors``) are
    clustered with k from 2 to ``max_broad`` by silhouette; each fine or named theme joins the
    broad theme that holds most of its claims' documents. On later runs each document joins the
    nearest of last night's broad centroids instead (then each centroid moves to its documents'
    mean), so broad ids stay put. Sets ``parent_id`` on the fine and named themes and returns
    the broad ones.
    """
    fine = [t for t in themes if t.kind == "discovered"]
    n_docs = len(doc_vectors)
    if len(fine) < 4 or n_docs < 3:
        return []
    if previous is not None and len(previous.broad_ids) >= 2:
        doc_cluster: np.ndarray | None = (doc_vectors @ previous.broad_centroids.T).argmax(axis=1)
    else:
        doc_cluster = _search_k(
            doc_vectors, list(range(2, min(cfg.max_broad, n_docs - 1) + 1)), cfg
        )
    if doc_cluster is None:
        return []
    claim_cluster = doc_cluster[doc_index]

    def home(members: np.ndarray) -> int:
        # The cluster holding most of these claims' documents (ties: the lower cluster number).
        return int(np.bincount(claim_cluster[members]).argmax())

    fine_home = [home(t.member_idx) for t in fine]
    clusters = sorted(set(fine_home))
    centroids = [_unit(doc_vectors[doc_cluster == c].mean(axis=0)) for c in clusters]
    ids = _match_ids(
        centroids,
        [[t.theme_id for t, h in zip(fine, fine_home, strict=True) if h == c] for c in clusters],
        previous.broad_ids if previous else [],
        previous.broad_centroids if previous else None,
        "broad_",
        cfg.match_threshold,
    )
    id_of = dict(zip(clusters, ids, strict=True))
    for t, h in zip(fine, fine_home, strict=True):
        t.parent_id = id_of[h]
    for t in themes:
        if t.kind == "named" and len(t.member_idx):
            # A named theme whose documents sit in a cluster with no fine theme joins the
            # broad theme nearest to its claims instead.
            nearest = ids[int(np.argmax(np.stack(centroids) @ named_means[t.theme_id]))]
            t.parent_id = id_of.get(home(t.member_idx)) or nearest
    broad = []
    for tid, centroid in zip(ids, centroids, strict=True):
        children = [t.member_idx for t in themes if t.parent_id == tid]
        members = np.sort(np.concatenate(children)) if children else np.zeros(0, dtype=np.int64)
        broad.append(ThemeInfo(tid, tid, "broad", members, centroid))
    return broad


def _group_means(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean row per group, one row per group."""
    from scipy.sparse import csr_matrix

    counts = np.bincount(groups, minlength=n_groups).astype(np.float32)
    member = csr_matrix(
        (1 / counts[groups], (groups, np.arange(len(groups)))), shape=(n_groups, len(groups))
    )
    means: np.ndarray = np.asarray(member @ np.asarray(values, dtype=np.float32))
    return means


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    out: np.ndarray = (x / np.maximum(norms, 1e-12)[:, None]).astype(np.float32)
    return out


def _retired(themes: list[ThemeInfo], previous: PreviousThemes | None) -> list[dict[str, Any]]:
    """Previous discovered/broad themes that did not come back: kept as rows, marked retired."""
    if previous is None:
        return []
    alive = {t.theme_id for t in themes}
    return [
        {**row, "status": "retired", "n_claims": 0, "representative_claim_ids": []}
        for tid, row in sorted(previous.rows.items())
        if tid not in alive
    ]


def _spread(members: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` members, evenly spaced in order (deterministic)."""
    if len(members) <= limit:
        return members
    picked: np.ndarray = members[np.linspace(0, len(members) - 1, limit).round().astype(int)]
    return picked


def ctfidf_keywords(class_texts: Sequence[str], top_n: int = 8) -> list[list[str]]:
    """Class-based TF-IDF keywords: one document per class, terms ranked per class.

    Weight of term t in class c: ``tf(t, c) / |c| * log(1 + A / f(t))`` where ``|c|`` is the
    class's word count, ``A`` the mean word count per class and ``f(t)`` the term's frequency
    over all classes (as in BERTopic's c-TF-IDF).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    if not any(t.strip() for t in class_texts):
        return [[] for _ in class_texts]
    vectorizer = CountVectorizer(
        stop_words="english", token_pattern=r"(?u)\b[^\W\d_][\w’'-]+\b", lowercase=True
    )
    try:
        counts = vectorizer.fit_transform(class_texts).toarray().astype(np.float64)
    except ValueError:  # only stop words
        return [[] for _ in class_texts]
    terms = vectorizer.get_feature_names_out()
    words_per_class = counts.sum(axis=1, keepdims=True)
    tf = np.divide(counts, words_per_class, out=np.zeros_like(counts), where=words_per_class > 0)
    avg = counts.sum() / max(1, (words_per_class > 0).sum())
    idf = np.log(1 + avg / np.maximum(counts.sum(axis=0), 1))
    weights = tf * idf
    result = []
    for row in weights:
        order = np.lexsort((terms, -row))  # ties broken alphabetically, for determinism
        result.append([str(terms[j]) for j in order[:top_n] if row[j] > 0])
    return result


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

    Called a batch of claims at a time, so the table is written without being held.
    """
    stop = start + len(claim_ids)
    labels, scores = model.labels_[start:stop], model.scores_[start:stop]
    out: dict[str, list[Any]] = {"claim_id": [], "theme_id": [], "score": [], "rank": []}
    for i, extra in enumerate(model.secondary(start, stop)):
        for rank, (theme_id, score) in enumerate(
            [(str(labels[i]), float(scores[i])), *extra], start=1
        ):
            out["claim_id"].append(claim_ids[i])
            out["theme_id"].append(theme_id)
            out["score"].append(score)
            out["rank"].append(rank)
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
    claims: dict[tuple[str, dt.date], int] = {}
    docs: dict[tuple[str, dt.date], set[int]] = {}
    per_day: dict[dt.date, int] = {}
    for doc, label in zip(model.doc_index_.tolist(), model.labels_, strict=True):
        day = date_of[doc]
        if day is None:
            continue
        per_day[day] = per_day.get(day, 0) + 1
        for theme in (label, parents.get(label)):
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
