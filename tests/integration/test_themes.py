"""Themes: catalog validation, assignment, discovery, keywords, determinism."""

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.themes import (
    UNASSIGNED,
    ThemeCatalog,
    ThemeConfig,
    ThemeModel,
    ThemeVectors,
    array_claims,
    assign_themes,
    ctfidf_keywords,
    load_catalog,
)


def test_packaged_catalog_has_the_contract_themes():
    catalog = load_catalog()
    assert {"energy_axis", "military_collaboration", "multipolarity", "isolation"} <= set(
        catalog.themes
    )
    for theme in catalog.themes.values():
        assert theme.label and theme.description and theme.seed_phrases


def test_catalog_rejects_unknown_fields(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text(
        "themes:\n  x:\n    label: X\n    description: d\n    seed_phrases: [a]\n    colour: red\n"
    )
    with pytest.raises(ValidationError, match="colour"):
        load_catalog(bad)


def test_catalog_rejects_reserved_and_bad_keys():
    theme = {"label": "L", "description": "D", "seed_phrases": ["s"]}
    with pytest.raises(ValidationError, match="reserved"):
        ThemeCatalog.model_validate({"themes": {"unassigned": theme}})
    with pytest.raises(ValidationError, match="lower_snake_case"):
        ThemeCatalog.model_validate({"themes": {"Energy Axis": theme}})


def test_theme_config_rejects_negative_threshold():
    with pytest.raises(ValidationError, match="assign_threshold"):
        ThemeConfig(assign_threshold=-0.1)
    with pytest.raises(ValidationError, match="no_such_setting"):
        ThemeConfig.model_validate({"no_such_setting": 1})


def test_ctfidf_ranks_distinctive_terms():
    kw = ctfidf_keywords(
        ["oil gas oil pipeline exports", "troops drills troops exercises", ""], top_n=2
    )
    assert kw[0] == ["oil", "exports"] and kw[1] == ["troops", "drills"] and kw[2] == []


def _fit(embedder, texts, doc_ids=None, config=None):
    vectors = ThemeVectors.from_catalog(load_catalog(), embedder.embed)
    doc_ids = doc_ids or ["d"] * len(texts)
    ids = [f"c{i:03d}" for i in range(len(texts))]
    claims = array_claims(embedder.embed(texts), texts, doc_ids, list(range(len(texts))), ids)
    model = ThemeModel(vectors, config).fit(claims)
    return model, ids, doc_ids


OFF_TOPIC = [
    "The striker scored twice in the cup final.",
    "The goalkeeper saved a late penalty in the match.",
    "The football club sacked its manager after a poor season.",
    "Fans cheered as the team won the league title.",
    "The new smartphone has a faster processor and a better camera.",
    "The software update fixes a security flaw in the browser.",
    "The chip maker unveiled a processor for laptops.",
    "Engineers released a new version of the operating system.",
]


def test_named_and_discovered_themes(embedder):
    texts = [
        "Russia redirected its oil and gas exports to China.",
        "The two armies held joint military exercises near the border.",
        *OFF_TOPIC,
    ]
    model, ids, doc_ids = _fit(embedder, texts, doc_ids=[f"d{i}" for i in range(len(texts))])
    assert model.labels_[0] == "energy_axis"
    assert model.labels_[1] == "military_collaboration"
    discovered = [t for t in model.themes_ if t.kind == "discovered"]
    assert discovered, "off-topic claims should form discovered themes"
    assert all(lab.startswith("discovered_") or lab == UNASSIGNED for lab in model.labels_[2:])
    rows = {k: t.to_pylist() for k, t in assign_themes(model, load_catalog(), ids).items()}
    primaries = [r for r in rows["claim_themes"] if r["rank"] == 1]
    assert sorted(r["claim_id"] for r in primaries) == ids  # exactly one rank-1 row each
    theme_ids = {t["theme_id"] for t in rows["themes"]}
    assert {r["theme_id"] for r in rows["claim_themes"]} <= theme_ids
    for t in rows["themes"]:
        if t["kind"] == "discovered":
            assert t["keywords"] and t["label"] == " / ".join(t["keywords"][:3])
            assert 1 <= len(t["representative_claim_ids"]) <= 5 and t["coherence"] > 0


def test_small_groups_are_unassigned_not_noise_themes(embedder):
    model, *_ = _fit(embedder, OFF_TOPIC[:2], config=ThemeConfig(min_cluster_size=3))
    assert list(model.labels_) == [UNASSIGNED, UNASSIGNED]


def test_fit_is_deterministic(embedder):
    texts = ["Russia sells gas to China.", *OFF_TOPIC]
    a, *_ = _fit(embedder, texts)
    b, *_ = _fit(embedder, texts)
    assert list(a.labels_) == list(b.labels_)
    np.testing.assert_array_equal(a.scores_, b.scores_)


def test_document_shares_sum_to_one(embedder):
    texts = ["Russia sells gas to China.", "Joint drills were held.", *OFF_TOPIC]
    doc_ids = ["a", "a", *["b"] * len(OFF_TOPIC)]
    model, ids, _ = _fit(embedder, texts, doc_ids=doc_ids)
    rows = assign_themes(model, load_catalog(), ids)["document_themes"].to_pylist()
    for doc in ("a", "b"):
        assert sum(r["share"] for r in rows if r["doc_id"] == doc) == pytest.approx(1.0)


def _blobs(n_per: int, centers: list[int], seed: int = 0, dim: int = 16):
    """Unit vectors around orthogonal axes: one synthetic topic per axis."""
    rng = np.random.default_rng(seed)
    rows, topics = [], []
    for c in centers:
        base = np.eye(dim, dtype=np.float32)[c]
        pts = base + 0.15 * rng.standard_normal((n_per, dim)).astype(np.float32)
        rows.append(pts / np.linalg.norm(pts, axis=1, keepdims=True))
        topics += [c] * n_per
    return np.concatenate(rows), topics


def _fit_synthetic(x, prefix, previous=None, docs=None, config=None):
    # A named theme no synthetic claim can reach, so everything goes to discovery.
    far = np.zeros((1, x.shape[1]), dtype=np.float32)
    far[0, -1] = 1.0
    vectors = ThemeVectors(["named_x"], [far], far.copy())
    ids = [f"{prefix}{i:04d}" for i in range(len(x))]
    docs = docs or [f"d{i}" for i in range(len(x))]
    config = config or ThemeConfig(discovery_context_weight=0.0)
    claims = array_claims(x, ["word"] * len(x), docs, [0] * len(x), ids, chunk_rows=50)
    model = ThemeModel(vectors, config).fit(claims, previous)
    return model, ids


def _previous(model, ids):
    from pipeline.themes import PreviousThemes

    catalog = ThemeCatalog.model_validate(
        {"themes": {"named_x": {"label": "X", "description": "x", "seed_phrases": ["x"]}}}
    )
    rows = assign_themes(model, catalog, ids)
    return PreviousThemes.from_rows(rows["themes"].to_pylist(), rows["claim_themes"]), rows


def test_discovered_ids_survive_new_data():
    # Adding 10% more claims must leave (nearly) every assigned claim on the same theme id.
    x, _ = _blobs(60, [0, 1, 2, 3, 4, 5])
    first, ids = _fit_synthetic(x, "c")
    previous, _ = _previous(first, ids)
    extra, _ = _blobs(6, [0, 1, 2, 3, 4, 5], seed=1)
    second, ids2 = _fit_synthetic(np.concatenate([x, extra]), "c", previous)
    before = dict(zip(ids, first.labels_, strict=True))
    after = dict(zip(ids2, second.labels_, strict=True))
    assigned = [c for c, t in before.items() if t != UNASSIGNED]
    kept = sum(after[c] == before[c] for c in assigned) / len(assigned)
    assert kept >= 0.95 and second.retired_ == []
    # The broad level is warm-started too: fine themes keep their parent.
    parents = {t.theme_id: t.parent_id for t in first.themes_ if t.kind == "discovered"}
    assert any(parents.values())
    for t in second.themes_:
        if t.theme_id in parents:
            assert t.parent_id == parents[t.theme_id]


def test_vanished_theme_is_retired_and_new_theme_gets_new_id():
    x, topics = _blobs(60, [0, 1, 2, 3, 4, 5])
    first, ids = _fit_synthetic(x, "c")
    previous, _ = _previous(first, ids)
    gone = first.labels_[topics.index(5)]
    keep = [i for i, t in enumerate(topics) if t != 5]
    novel, _ = _blobs(60, [7], seed=2)
    x2 = np.concatenate([x[keep], novel])
    second, ids2 = _fit_synthetic(x2, "d", previous)
    new_themes = {t.theme_id for t in second.themes_ if t.kind == "discovered"}
    assert gone not in new_themes
    assert [r["theme_id"] for r in second.retired_ if r["kind"] == "discovered"] == [gone]
    assert all(r["status"] == "retired" and r["n_claims"] == 0 for r in second.retired_)
    novel_label = second.labels_[-1]
    assert novel_label.startswith("discovered_") and novel_label not in previous.rows


def test_one_new_article_is_not_a_new_theme_and_old_claims_do_not_churn():
    # Last night's claims keep their themes even if far from every centroid; a novel topic
    # found in one document only stays unassigned until other documents share it.
    x, _ = _blobs(60, [0, 1, 2, 3, 4, 5])
    first, ids = _fit_synthetic(x, "c")
    previous, _ = _previous(first, ids)
    novel, _ = _blobs(30, [7], seed=3)
    x2 = np.concatenate([x, novel])
    docs = [f"d{i}" for i in range(len(x))] + ["one_article"] * len(novel)
    second, ids2 = _fit_synthetic(x2, "c", previous, docs=docs)
    new_labels = list(second.labels_[len(x) :])
    assert set(new_labels) <= {UNASSIGNED, *previous.ids}
    assert new_labels.count(UNASSIGNED) >= 0.9 * len(novel)  # the rest are near an old theme
    assert list(second.labels_[: len(x)]) == list(first.labels_)
    assert {t.theme_id for t in second.themes_ if t.kind == "discovered"} == set(previous.ids)


def test_hierarchy_rolls_fine_themes_into_broad_ones():
    # Two kinds of article, each mixing three sentence topics of its own (as a politics article
    # mixes elections, tax and courts): fine themes per topic, broad themes per kind of article.
    dim = 16
    rng = np.random.default_rng(0)
    groups = {0: [1, 2, 3], 8: [9, 10, 11]}
    rows, docs = [], []
    for g, topics in groups.items():
        for d in range(40):
            for t in topics:
                base = np.eye(dim, dtype=np.float32)[g] * 2 + np.eye(dim, dtype=np.float32)[t]
                pt = base + 0.1 * rng.standard_normal(dim).astype(np.float32)
                rows.append(pt / np.linalg.norm(pt))
                docs.append(f"g{g}-d{d}")
    model, ids = _fit_synthetic(np.stack(rows), "h", docs=docs)
    fine = [t for t in model.themes_ if t.kind == "discovered"]
    broad = [t for t in model.themes_ if t.kind == "broad"]
    assert len(fine) >= 4 and len(broad) == 2
    assert all(t.parent_id in {b.theme_id for b in broad} for t in fine)
    assert sum(len(b.member_idx) for b in broad) == sum(len(t.member_idx) for t in fine)
    for b in broad:  # each broad theme is one kind of article
        assert len({docs[i].split("-")[0] for i in b.member_idx}) == 1


def test_a_sentence_topic_shared_by_two_kinds_of_article_is_split_between_their_broad_themes():
    # Both kinds of article carry one shared sentence topic (as "he told reporters" is in
    # politics and in sport); its claims form one fine theme per kind of article, so every fine
    # theme lies inside one broad theme and each claim's broad theme is its document's.
    dim = 16
    rng = np.random.default_rng(1)
    shared = 14
    rows, docs = [], []
    for g, topics in {0: [1, 2, shared], 8: [9, 10, shared]}.items():
        for d in range(40):
            for t in topics:
                base = np.eye(dim, dtype=np.float32)[g] + np.eye(dim, dtype=np.float32)[t] * 2
                pt = base + 0.1 * rng.standard_normal(dim).astype(np.float32)
                rows.append(pt / np.linalg.norm(pt))
                docs.append(f"g{g}-d{d}")
    model, _ = _fit_synthetic(np.stack(rows), "s", docs=docs)
    broad = {t.theme_id: t for t in model.themes_ if t.kind == "broad"}
    assert len(broad) == 2
    kind_of = {b: {docs[i].split("-")[0] for i in t.member_idx} for b, t in broad.items()}
    assert sorted(map(sorted, kind_of.values())) == [["g0"], ["g8"]]
    fine = [t for t in model.themes_ if t.kind == "discovered"]
    for t in fine:
        assert {docs[i].split("-")[0] for i in t.member_idx} == kind_of[str(t.parent_id)]
    topic_of = np.array([i % 3 == 2 for i in range(len(docs))])  # the shared topic's claims
    holders = [t for t in fine if topic_of[t.member_idx].all()]
    assert {str(t.parent_id) for t in holders} == set(broad)


def test_theme_trends_and_seen_dates(embedder):
    import datetime as dt

    texts = ["Russia sells gas to China.", "Gas exports to China grew.", *OFF_TOPIC]
    doc_ids = ["a", "b", *[f"o{i}" for i in range(len(OFF_TOPIC))]]
    model, ids, _ = _fit(embedder, texts, doc_ids=doc_ids)
    dates = {d: dt.date(2024, 1, 1 + (i % 2)) for i, d in enumerate(doc_ids)}
    rows = {k: t.to_pylist() for k, t in assign_themes(model, load_catalog(), ids, dates).items()}
    trends = rows["theme_trends"]
    for day in {dt.date(2024, 1, 1), dt.date(2024, 1, 2)}:
        fine = [r for r in trends if r["date"] == day and not r["theme_id"].startswith("broad_")]
        assert sum(r["n_claims"] for r in fine) == sum(1 for d in doc_ids if dates[d] == day)
        assert sum(r["share"] for r in fine) == pytest.approx(1.0)
    energy = next(r for r in rows["themes"] if r["theme_id"] == "energy_axis")
    assert (energy["first_seen"], energy["last_seen"]) == (dt.date(2024, 1, 1), dt.date(2024, 1, 2))


def test_secondary_themes_follow_threshold_background_margin_and_order():
    # Secondary themes: other named themes that clear the background as a primary must, score
    # >= secondary_threshold and lie within secondary_margin of the best; best first, at most
    # max_secondary, never the primary itself.
    keys = ["a", "b", "c", "d"]
    vecs = np.eye(4, dtype=np.float32)
    config = ThemeConfig(
        assign_threshold=0.2, secondary_threshold=0.5, secondary_margin=0.08, background_margin=0.1
    )
    model = ThemeModel(ThemeVectors(keys, [v[None] for v in vecs], vecs), config)
    model.named_scores_ = np.array(
        [
            [0.60, 0.58, 0.55, 0.40],  # b and c fit; d is below the threshold
            [0.90, 0.70, 0.20, 0.10],  # b is outside the margin
            [0.30, 0.20, 0.10, 0.00],  # unassigned, nothing fits
            [0.56, 0.57, 0.56, 0.56],  # ties keep catalog order; capped at two
            [0.60, 0.58, 0.58, 0.10],  # b and c are too close to their background
        ],
        dtype=np.float32,
    )
    model.background_ = np.full_like(model.named_scores_, 0.4)
    model.background_[4, 1:3] = 0.5
    model.labels_ = np.array(["a", "a", UNASSIGNED, "b", "a"], dtype=object)
    picks = [[k for k, _ in row] for row in model.secondary()]
    assert picks == [["b", "c"], [], [], ["a", "c"], []]


def _same_partition(a, b):
    """Whether two labellings group the claims the same way (ids may differ)."""
    pairs = set(zip(a, b, strict=True))
    return len(pairs) == len(set(a)) == len(set(b))


def test_chunking_does_not_change_the_fit():
    # Chunks of whole documents give each claim the same context as one chunk of everything:
    # labels, scores, representatives and parents must not depend on the chunk size, nor on
    # whether later passes read the chunks again or replay them from memory.
    x, _ = _blobs(40, [0, 1, 2, 3, 4, 5])
    docs = [f"d{i // 4:03d}" for i in range(len(x))]  # four claims a document
    base = ThemeConfig(discovery_context_weight=0.3)
    whole, ids = _fit_synthetic(x, "c", docs=docs, config=base)
    vectors = whole.vectors
    for chunk_rows, replay in ((7, 0), (33, 0), (33, 10_000)):
        claims = array_claims(x, ["word"] * len(x), docs, [0] * len(x), ids, chunk_rows=chunk_rows)
        config = base.model_copy(update={"replay_claims": replay})
        small = ThemeModel(vectors, config).fit(claims)
        assert list(small.labels_) == list(whole.labels_)
        np.testing.assert_allclose(small.scores_, whole.scores_, atol=1e-6)
        for a, b in zip(small.themes_, whole.themes_, strict=True):
            assert (a.theme_id, a.parent_id, a.keywords) == (b.theme_id, b.parent_id, b.keywords)
            assert a.representatives == b.representatives
            assert a.coherence == pytest.approx(b.coherence, abs=1e-5)


def test_discovery_on_a_sample_assigns_every_claim():
    # Above fit_sample claims, discovery is fitted on a sample and the rest join its themes:
    # the same topics come out, and each topic's claims share one theme.
    x, _ = _blobs(60, [0, 1, 2, 3, 4, 5])
    config = ThemeConfig(discovery_context_weight=0.0, fit_sample=120)
    full, _ = _fit_synthetic(x, "c")
    sampled, _ = _fit_synthetic(x, "c", config=config)
    assert sampled.sampled_ and not full.sampled_
    assert UNASSIGNED not in set(sampled.labels_)
    assert _same_partition(list(sampled.labels_), list(full.labels_))
    again, _ = _fit_synthetic(x, "c", config=config)
    assert list(again.labels_) == list(sampled.labels_)
    # The nightly warm start works the same way on top of a sampled fit.
    previous, _ = _previous(sampled, [f"c{i:04d}" for i in range(len(x))])
    extra, _ = _blobs(6, [0, 1, 2, 3, 4, 5], seed=1)
    second, _ = _fit_synthetic(np.concatenate([x, extra]), "c", previous, config=config)
    assert list(second.labels_[: len(x)]) == list(sampled.labels_)


def test_claims_of_a_document_must_be_consecutive():
    x, _ = _blobs(3, [0])
    claims = array_claims(x, ["w"] * 3, ["a", "b", "a"], [0] * 3, ["c0", "c1", "c2"])
    with pytest.raises(ValueError, match="document a are not consecutive"):
        list(claims())


def test_file_claims_reads_whole_documents_and_refuses_misaligned_embeddings(tmp_path):
    import pyarrow as pa

    from pipeline.storage import TableFile, write_table
    from pipeline.themes import file_claims

    n, dim = 25, 4
    ids = [f"c{i:02d}" for i in range(n)]
    docs = [f"d{i // 3}" for i in range(n)]
    claims = pa.table({"claim_id": ids, "doc_id": docs, "text": ["t"] * n, "paragraph": [0] * n})
    x = np.eye(dim, dtype=np.float32)[np.arange(n) % dim]
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dim)
    write_table(claims, tmp_path / "claims.parquet")
    write_table(pa.table({"claim_id": ids, "embedding": vectors}), tmp_path / "emb.parquet")
    source = file_claims(
        TableFile(tmp_path / "claims.parquet"), TableFile(tmp_path / "emb.parquet"), chunk_rows=4
    )
    chunks = list(source())
    assert len(chunks) > 2 and all(c.start % 3 == 0 for c in chunks)  # cut where a document ends
    assert [i for c in chunks for i in c.claim_ids] == ids
    np.testing.assert_array_equal(np.concatenate([c.embeddings for c in chunks]), x)
    shuffled = pa.table({"claim_id": ids[::-1], "embedding": vectors})
    write_table(shuffled.slice(0, n - 1), tmp_path / "short.parquet")
    short = file_claims(
        TableFile(tmp_path / "claims.parquet"), TableFile(tmp_path / "short.parquet")
    )
    with pytest.raises(ValueError, match="fewer rows"):
        list(short())
    write_table(shuffled, tmp_path / "shuffled.parquet")
    misaligned = file_claims(
        TableFile(tmp_path / "claims.parquet"), TableFile(tmp_path / "shuffled.parquet"), 4
    )
    with pytest.raises(KeyError, match="rematerialize"):
        list(misaligned())


def test_predict_places_unseen_claims_without_changing_the_model():
    x, topics = _blobs(40, [0, 1, 2, 3])
    model, ids = _fit_synthetic(x, "p")
    fitted = model.labels_.copy()
    same = model.predict(
        array_claims(x, ["w"] * len(x), [f"d{i}" for i in range(len(x))], [0] * len(x), ids)
    )
    assert np.mean(same == fitted) >= 0.9
    assert list(model.labels_) == list(fitted)  # predict changes nothing
    new, new_topics = _blobs(5, [0, 2], seed=7)
    far = np.zeros((1, x.shape[1]), dtype=np.float32)
    far[0, 9] = 1.0  # an axis no theme was fitted on
    unseen = np.concatenate([new, far])
    labels = model.predict(
        array_claims(
            unseen, ["w"] * 11, [f"n{i}" for i in range(11)], [0] * 11, [f"n{i}" for i in range(11)]
        )
    )
    by_topic = {t: {fitted[i] for i, tt in enumerate(topics) if tt == t} for t in (0, 2)}
    assert all(labels[i] in by_topic[t] for i, t in enumerate(new_topics))
    assert labels[-1] == UNASSIGNED
    with pytest.raises(ValueError, match="not fitted"):
        ThemeModel(model.vectors).predict(array_claims(far, ["w"], ["d"], [0], ["c"]))
