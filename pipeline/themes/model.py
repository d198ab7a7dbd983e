"""ThemeModel: named themes first, discovery for the rest, then hierarchy and descriptions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.themes.base import (
    UNASSIGNED,
    ThemeInfo,
    TopK,
    document_context,
    group_ids,
    group_means,
    ranking,
    unit,
    unit_rows,
)
from pipeline.themes.catalog import ThemeVectors
from pipeline.themes.config import ThemeConfig
from pipeline.themes.discovery import RestSample, fine_themes, keep_previous
from pipeline.themes.feedback import ClaimLabels
from pipeline.themes.hierarchy import (
    broad_themes,
    document_clusters,
    nest_in_named,
    retired_rows,
)
from pipeline.themes.keywords import spread, theme_keywords
from pipeline.themes.previous import PreviousThemes
from pipeline.themes.scoring import named_scores, passes
from pipeline.themes.source import ClaimSource, Replay


class ThemeModel:
    """Assign claims to named themes and discover the others (scikit-learn style).

    Args:
        vectors: The embedded catalog (with the analysts' examples, if any).
        config: Thresholds and weights.
        claim_labels: Analysts' labels of claims of this corpus: they decide those claims.
        keyword_embed: ``embed(texts) -> unit vectors`` for reranking keywords (MMR); None
            keeps the c-TF-IDF order.

    Attributes (after ``fit``):
        labels_: Primary theme id per claim.
        scores_: Primary score per claim.
        margins_: Primary score minus the runner-up's per claim (NaN when unassigned).
        labelled_: Whether an analyst's label decided the claim.
        named_scores_: ``(n, n_named)`` context-mixed scores per named theme.
        background_: ``(n, n_named)`` context-mixed background score against each theme.
        nearest_seed_: ``(n, n_named)`` index of each theme's seed nearest to the claim.
        themes_: :class:`ThemeInfo` per theme, named first (catalog order), then discovered,
            broad and ``unassigned``.
        retired_: Rows of last run's discovered and broad themes that did not come back.
        doc_ids_: Each document, in order of first appearance.
        doc_index_: Per claim, its document's position in ``doc_ids_``.
        sampled_: Whether discovery was fitted on a sample of ``fit_sample`` claims.
        representative_ids_: Claim id of each theme's representatives, by position.
    """

    def __init__(
        self,
        vectors: ThemeVectors,
        config: ThemeConfig | None = None,
        claim_labels: ClaimLabels | None = None,
        keyword_embed: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        """Store parameters only; all work happens in :meth:`fit`."""
        self.vectors = vectors
        self.config = config
        self.claim_labels = claim_labels
        self.keyword_embed = keyword_embed

    def fit(self, claims: ClaimSource, previous: PreviousThemes | None = None) -> ThemeModel:
        """Assign every claim a primary theme.

        Reads ``claims`` two or three times, a chunk at a time.

        Args:
            claims: The claims with their embeddings (:func:`file_claims`, :func:`array_claims`).
            previous: The last run's themes; their ids are kept for the same themes.
        """
        cfg = self.config or ThemeConfig()
        claims = Replay(claims, cfg.replay_claims)
        scan = self._scan(claims, cfg, previous)
        keys = np.asarray(self.vectors.keys, dtype=object)
        n = len(scan.best)
        labels = keys[scan.best] if n else np.zeros(0, dtype=object)
        labels[~scan.named] = UNASSIGNED
        scores = scan.best_score.copy()
        margins = np.where(scan.named, scan.margin, np.nan).astype(np.float32)

        themes: list[ThemeInfo] = []
        for k, key in enumerate(self.vectors.keys):
            themes.append(ThemeInfo(key, key, "named", np.flatnonzero(labels == key)))
            themes[-1].centroid = self.vectors.centroid(k)
        sample = scan.sample
        doc_of = scan.doc_index[sample.index]  # each sampled claim's document
        doc_cluster = document_clusters(scan.doc_vectors, doc_of, sample.previous, cfg, previous)
        clusters = doc_cluster if doc_cluster is not None else np.zeros(len(scan.doc_ids), int)
        fine = [
            (tid, members, centroid, int(clusters[doc_of[members[0]]]))
            for tid, members, centroid in fine_themes(
                sample.vectors,
                sample.claim_ids,
                sample.doc_ids,
                sample.previous,
                cfg,
                previous,
                clusters[doc_of] if doc_cluster is not None else None,
            )
        ]
        if fine:
            sims = sample.vectors @ np.stack([c for _, _, c, _ in fine]).T
            for c, (theme_id, members, _, _) in enumerate(fine):
                rows = sample.index[members]
                labels[rows] = theme_id
                scores[rows] = sims[members, c]
                margins[rows] = _centroid_margin(sims[members], c)
        self.sampled_ = sample.sampled
        sample.drop_vectors()  # up to fit_sample of them; the other passes read chunks
        if self.sampled_ and fine:
            self._assign_unsampled(
                claims, cfg, previous, fine, clusters[scan.doc_index], scan, labels, scores, margins
            )
        for theme_id, _, centroid, _ in fine:
            members = np.flatnonzero(labels == theme_id)
            themes.append(ThemeInfo(theme_id, theme_id, "discovered", members, centroid))
        named_means = {
            key: unit(scan.named_sums[k])
            for k, key in enumerate(self.vectors.keys)
            if len(themes[k].member_idx)
        }
        nest_in_named(themes, scan.named_scores, scan.background, cfg)
        if doc_cluster is not None:
            themes += broad_themes(
                themes,
                doc_cluster,
                scan.doc_vectors,
                scan.doc_index,
                scan.doc_ids,
                {tid: c for tid, _, _, c in fine},
                named_means,
                cfg,
                previous,
            )
        self.retired_ = retired_rows(themes, previous)
        themes.append(
            ThemeInfo(UNASSIGNED, "Unassigned", UNASSIGNED, np.flatnonzero(labels == UNASSIGNED))
        )
        self.labels_ = labels
        self.scores_ = scores
        self.margins_ = margins
        self.labelled_ = scan.labelled
        self.named_scores_ = scan.named_scores
        self.background_ = scan.background
        self.nearest_seed_ = scan.nearest
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
        empty: dict[str, np.ndarray] = {
            "theme": np.zeros((0, n_named), np.float32),
            "background": np.zeros((0, n_named), np.float32),
            "nearest": np.zeros((0, n_named), np.int32),
            "best": np.zeros(0, np.int64),
            "score": np.zeros(0, np.float32),
            "named": np.zeros(0, bool),
            "margin": np.zeros(0, np.float32),
            "labelled": np.zeros(0, bool),
        }
        parts: dict[str, list[np.ndarray]] = {k: [] for k in empty}
        doc_index, doc_vectors = [], []
        doc_ids: list[str] = []
        named_sums = np.zeros((n_named, dim), dtype=np.float64)
        sample = RestSample(cfg.fit_sample, cfg.random_state, dim)
        for chunk in claims():
            scored = named_scores(
                chunk.embeddings, chunk.doc_ids, chunk.paragraphs, self.vectors, cfg
            )
            veto, forced = self._labels_of(chunk.claim_ids)
            best, score, named, margin = scored.decide(cfg, veto)
            for i, theme in forced.items():
                named[i] = theme >= 0
                if theme >= 0:
                    best[i], score[i] = theme, scored.theme[i, theme]
            labelled = np.zeros(len(chunk), dtype=bool)
            labelled[list(forced)] = True
            for key, value in (
                ("theme", scored.theme),
                ("background", scored.background),
                ("nearest", scored.nearest),
                ("best", best),
                ("score", score),
                ("named", named),
                ("margin", margin),
                ("labelled", labelled),
            ):
                parts[key].append(value)
            groups = group_ids(chunk.doc_ids)
            n_docs = int(groups.max()) + 1
            doc_index.append(groups + len(doc_ids))
            doc_ids += [chunk.doc_ids[i] for i in np.unique(groups, return_index=True)[1]]
            doc_vectors.append(unit_rows(group_means(chunk.embeddings, groups, n_docs)))
            for k in np.unique(best[named]):
                named_sums[k] += chunk.embeddings[named & (best == k)].sum(axis=0)
            rest = np.flatnonzero(~named)
            if len(rest):
                space = document_context(
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
        joined: dict[str, np.ndarray] = {
            k: np.concatenate(v) if v else empty[k] for k, v in parts.items()
        }
        return _Scan(
            named_scores=joined["theme"],
            background=joined["background"],
            nearest=joined["nearest"],
            best=joined["best"],
            best_score=joined["score"].astype(np.float32),
            named=joined["named"],
            margin=joined["margin"],
            labelled=joined["labelled"],
            doc_index=np.concatenate(doc_index) if doc_index else np.zeros(0, dtype=np.int64),
            doc_ids=doc_ids,
            doc_vectors=(
                np.concatenate(doc_vectors) if doc_vectors else np.zeros((0, dim), np.float32)
            ),
            named_sums=named_sums.astype(np.float32),
            sample=sample,
        )

    def _labels_of(self, claim_ids: Sequence[str]) -> tuple[np.ndarray | None, dict[int, int]]:
        """Analysts' labels of these claims: a veto mask on themes, and forced themes.

        A forced theme is a column of ``vectors.keys``, or -1 for ``unassigned``.
        """
        labels = self.claim_labels
        if not labels:
            return None, {}
        column = {k: j for j, k in enumerate(self.vectors.keys)}
        veto = np.zeros((len(claim_ids), len(column)), dtype=bool)
        forced: dict[int, int] = {}
        for i, claim_id in enumerate(claim_ids):
            for theme in labels.negative.get(claim_id, ()):
                veto[i, column[theme]] = True
            theme_id = labels.positive.get(claim_id)
            if theme_id is not None:
                forced[i] = column.get(theme_id, -1)
        return (veto if veto.any() else None), forced

    def _assign_unsampled(
        self,
        claims: ClaimSource,
        cfg: ThemeConfig,
        previous: PreviousThemes | None,
        fine: list[tuple[str, np.ndarray, np.ndarray, int]],
        claim_cluster: np.ndarray,
        scan: _Scan,
        labels: np.ndarray,
        scores: np.ndarray,
        margins: np.ndarray,
    ) -> None:
        """Second pass, above ``fit_sample``: the claims discovery did not see join its themes.

        Each joins the nearest theme of its document's broad cluster (``claim_cluster``) unless
        it is novel next to every one (then it stays unassigned); a claim that had a theme last
        night keeps it unless another is clearly closer. The same rules the warm start applies
        to the claims it fits.
        """
        ids = [tid for tid, _, _, _ in fine]
        centroids = np.stack([c for _, _, c, _ in fine])
        theme_cluster = np.array([c for _, _, _, c in fine])
        column = {tid: c for c, tid in enumerate(ids)}
        for chunk in claims():
            a = chunk.start
            rows = np.flatnonzero(~scan.named[a : a + len(chunk)])
            rows = rows[~np.isin(a + rows, scan.sample.index)]
            if not len(rows):
                continue
            space = document_context(chunk.embeddings, chunk.doc_ids, cfg.discovery_context_weight)
            every = space[rows] @ centroids.T
            other = claim_cluster[a + rows][:, None] != theme_cluster[None, :]
            sims = np.where(other, -2.0, every)  # below any cosine: never chosen or kept
            best = sims.argmax(axis=1)
            top = sims.max(axis=1)
            pick = np.where(top >= cfg.novelty_threshold, best, -1)
            prev = previous.labels_of([chunk.claim_ids[i] for i in rows]) if previous else []
            keep_previous(pick, sims, top, prev, column, cfg.stickiness)
            placed = pick >= 0
            labels[a + rows[placed]] = np.asarray(ids, dtype=object)[pick[placed]]
            scores[a + rows[placed]] = sims[np.flatnonzero(placed), pick[placed]]
            for c in np.unique(pick[placed]):
                own = np.flatnonzero(pick == c)
                margins[a + rows[own]] = _centroid_margin(every[own], int(c))

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
        broad = np.array([position.get(_broad_of(t, themes, position) or "", -1) for t in themes])
        levels = (primary, broad[primary])  # a claim counts in its theme and in its broad theme
        picks = [spread(t.member_idx, cfg.keyword_sample) for t in themes]
        wanted = np.unique(np.concatenate(picks)) if picks else np.zeros(0, np.int64)
        texts: dict[int, str] = {}
        self.representative_ids_: dict[int, str] = {}
        best = [TopK(cfg.n_representatives) for _ in themes]
        totals = np.zeros(len(themes), dtype=np.float64)
        for chunk in claims():
            a, b = chunk.start, chunk.start + len(chunk)
            lo, hi = np.searchsorted(wanted, [a, b])
            texts |= {int(i): chunk.texts[int(i) - a] for i in wanted[lo:hi]}
            space = document_context(chunk.embeddings, chunk.doc_ids, cfg.discovery_context_weight)
            for level in levels:
                codes = level[a:b]
                for p in np.unique(codes[codes >= 0]):
                    theme = themes[p]
                    if theme.centroid is None:
                        continue
                    rows = np.flatnonzero(codes == p)
                    clustered = theme.kind in ("discovered", "broad")
                    sims = (space if clustered else chunk.embeddings)[rows] @ theme.centroid
                    best[p].add(
                        sims,
                        a + rows,
                        [chunk.claim_ids[i] for i in rows],
                        [chunk.texts[i] for i in rows],
                    )
                    if clustered:
                        totals[p] += float(sims.sum(dtype=np.float64))
                    else:
                        totals[p] += float(
                            (chunk.embeddings[rows] @ named_means[theme.theme_id]).sum(
                                dtype=np.float64
                            )
                        )
        keywords = theme_keywords(
            [[texts[int(i)] for i in pick] for pick in picks],
            [t.centroid for t in themes],
            cfg,
            self.keyword_embed,
        )
        self.representative_texts_: dict[str, str] = {}
        for p, (theme, kw) in enumerate(zip(themes, keywords, strict=True)):
            theme.keywords = kw
            if theme.kind in ("discovered", "broad"):
                theme.label = " / ".join(kw[:3]) if kw else theme.theme_id
            if theme.centroid is not None and len(theme.member_idx):
                picked = best[p].best()
                theme.representatives = list(picked)
                self.representative_ids_ |= picked
                theme.coherence = totals[p] / len(theme.member_idx)
                if best[p].texts:
                    self.representative_texts_[theme.theme_id] = best[p].texts[0]

    def predict(self, claims: ClaimSource) -> np.ndarray:
        """Primary theme ids of claims this model did not fit (see pipeline.themes.predict)."""
        from pipeline.themes.predict import predict_labels

        return predict_labels(self, claims)

    def secondary(self, start: int = 0, stop: int | None = None) -> list[list[tuple[str, float]]]:
        """Per claim (``start`` to ``stop``), named themes other than the primary that also fit.

        A secondary theme clears the background as a primary must, scores at least
        ``secondary_threshold`` and is within ``secondary_margin`` of the best named score.
        Best first, at most ``max_secondary``.
        """
        cfg = self.config or ThemeConfig()
        scores = self.named_scores_[start:stop]
        if not len(scores) or not scores.shape[1] or cfg.max_secondary == 0:
            return [[] for _ in range(len(scores))]
        keys = np.asarray(self.vectors.keys, dtype=object)
        top = scores.max(axis=1, keepdims=True)
        fits = (
            passes(scores, self.background_[start:stop], cfg)
            & (scores >= cfg.secondary_threshold)
            & (scores >= top - cfg.secondary_margin)
            & (keys[None, :] != np.asarray(self.labels_[start:stop], dtype=object)[:, None])
        )
        # Rounded scores and a stable sort: cached and fresh embeddings differ by ~1e-7.
        order = np.argsort(-ranking(scores), axis=1, kind="stable")
        out: list[list[tuple[str, float]]] = [[] for _ in range(len(scores))]
        for i in np.flatnonzero(fits.any(axis=1)):
            picks = [(str(keys[j]), float(scores[i, j])) for j in order[i] if fits[i, j]]
            out[i] = picks[: cfg.max_secondary]
        return out

    def evidence(self, i: int, theme_id: str) -> tuple[str | None, str | None]:
        """Why claim ``i`` is in ``theme_id``: the nearest seed or example, and its kind.

        Kinds: ``seed``, ``label`` (the theme's label), ``feedback`` (an analyst's example),
        ``analyst_label`` (an analyst labelled this claim), ``representative`` (a discovered or
        broad theme: its most representative claim). Unassigned claims have none.
        """
        if self.labelled_[i] and self.labels_[i] == theme_id:
            return "labelled by an analyst", "analyst_label"
        keys = self.vectors.keys
        if theme_id in keys:
            j = keys.index(theme_id)
            seed = int(self.nearest_seed_[i, j])
            if j >= len(self.vectors.seed_texts):  # vectors built without their texts
                return None, None
            return self.vectors.seed_texts[j][seed], self.vectors.seed_kinds[j][seed]
        text = self.representative_texts_.get(theme_id)
        return (text, "representative") if text is not None else (None, None)


@dataclass(slots=True)
class _Scan:
    """What the first pass over the claims keeps (see :meth:`ThemeModel._scan`)."""

    named_scores: np.ndarray  # (n, n_named) context-mixed theme scores
    background: np.ndarray  # (n, n_named) context-mixed background scores
    nearest: np.ndarray  # (n, n_named) nearest seed of each theme
    best: np.ndarray  # best named theme per claim
    best_score: np.ndarray
    named: np.ndarray  # the best named theme is assigned (scoring.passes, or an analyst)
    margin: np.ndarray  # best named score minus the runner-up (theme or background)
    labelled: np.ndarray  # an analyst's label decided the claim
    doc_index: np.ndarray  # per claim, position of its document in doc_ids
    doc_ids: list[str]
    doc_vectors: np.ndarray  # (n_docs, dim) unit mean of each document's claims
    named_sums: np.ndarray  # (n_named, dim) sum of each named theme's members
    sample: RestSample


def _centroid_margin(sims: np.ndarray, column: int) -> np.ndarray:
    """Each row's cosine to centroid ``column`` minus its best cosine to another centroid."""
    own = sims[:, column]
    if sims.shape[1] < 2:
        return np.full(len(sims), np.nan, dtype=np.float32)
    others = np.delete(sims, column, axis=1).max(axis=1)
    out: np.ndarray = (own - others).astype(np.float32)
    return out


def _broad_of(theme: ThemeInfo, themes: list[ThemeInfo], position: Mapping[str, int]) -> str | None:
    """The broad theme above ``theme`` (through a named parent, for a nested theme), if any."""
    parent = theme.parent_id
    while parent is not None and themes[position[parent]].kind != "broad":
        parent = themes[position[parent]].parent_id
    return parent
