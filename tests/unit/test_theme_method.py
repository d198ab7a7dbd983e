"""Named-theme method: background margin, evidence, analyst feedback, nesting, keywords."""

import numpy as np
import pytest

from pipeline.themes import (
    UNASSIGNED,
    ThemeConfig,
    ThemeModel,
    ThemeVectors,
    array_claims,
    assign_themes,
    ctfidf_keywords,
    load_catalog,
)
from pipeline.themes.catalog import Example, ThemeCatalog
from pipeline.themes.feedback import ClaimLabels, FeedbackError, load_feedback, read_labels
from pipeline.themes.keywords import NEWS_STOP_WORDS, mmr, theme_keywords
from pipeline.themes.scoring import named_scores


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# A toy space: axis 0 = energy, 1 = military, 2 = ordinary news (background), 3 = noise.
ENERGY, MILITARY, NEWS, NOISE = np.eye(4, dtype=np.float32)
CATALOG = ThemeCatalog.model_validate(
    {
        "themes": {
            "energy": {"label": "Energy", "description": "d", "seed_phrases": ["gas deal"]},
            "military": {"label": "Military", "description": "d", "seed_phrases": ["drills"]},
        },
        "background": ["the match was won"],
    }
)
TOY = {
    "Energy": ENERGY,
    "gas deal": ENERGY,
    "Military": MILITARY,
    "drills": MILITARY,
    "the match was won": NEWS,
    "d": _unit([1, 1, 0, 0]),
    "pipeline talks": _unit([0.9, 0, 0, 0.44]),
    "friendly match": _unit([0, 0.45, 0.9, 0]),
    "joint patrol": _unit([0, 0.3, 0.25, 0.92]),
}


def _toy_embed(texts):
    return np.stack([TOY[t] for t in texts])


def _model(claims, config=None, labels=None, examples=()):
    vectors = ThemeVectors.from_catalog(CATALOG, _toy_embed, examples)
    x = np.stack([TOY[t] for t in claims])
    ids = [f"c{i}" for i in range(len(claims))]
    source = array_claims(x, claims, [f"d{i}" for i in range(len(claims))], [0] * len(x), ids)
    cfg = config or ThemeConfig(context_weight=0.0, min_cluster_size=2)
    return ThemeModel(vectors, cfg, labels).fit(source), ids


def test_a_theme_must_clear_the_background_not_only_a_threshold():
    # "friendly match" is closer to military than to energy, but closer still to ordinary news:
    # with a low absolute floor only the background margin keeps it out of a theme.
    model, _ = _model(["pipeline talks", "friendly match"])
    assert list(model.labels_) == ["energy", UNASSIGNED]
    loose = ThemeConfig(context_weight=0.0, background_margin=-1.0, min_cluster_size=2)
    model, _ = _model(["pipeline talks", "friendly match"], loose)
    assert list(model.labels_) == ["energy", "military"]


def test_a_document_mostly_about_a_theme_tips_its_close_calls_that_way():
    # "joint patrol" leans military by a hair over energy. Alone, or in an article on military
    # drills, it is military; in an article mostly about energy the document prior makes it
    # energy. The prior only chooses between themes that fit: off-theme text stays unassigned.
    cfg = ThemeConfig(context_weight=0.0, min_cluster_size=2, document_prior=0.1)
    close = _unit([0.5, 0.52, 0.0, 0.69])
    vectors = ThemeVectors.from_catalog(CATALOG, _toy_embed)

    def decided(rows: list[np.ndarray], docs: list[str]) -> list[str]:
        scored = named_scores(np.stack(rows), docs, [0] * len(rows), vectors, cfg)
        best, _, assigned, margin = scored.decide(cfg)
        assert np.isfinite(margin).all()
        return [vectors.keys[b] if a else UNASSIGNED for b, a in zip(best, assigned, strict=True)]

    assert decided([close], ["d"]) == ["military"]
    energy_doc = [TOY["gas deal"], TOY["pipeline talks"], TOY["gas deal"], close]
    assert decided(energy_doc, ["d"] * 4)[-1] == "energy"
    assert decided(energy_doc, ["a", "b", "c", "d"])[-1] == "military"  # other articles
    off = [TOY["gas deal"], TOY["gas deal"], TOY["friendly match"]]
    assert decided(off, ["d"] * 3)[-1] == UNASSIGNED
    # Without the prior the article does not matter.
    plain = cfg.model_copy(update={"document_prior": 0.0})
    scored = named_scores(np.stack(energy_doc), ["d"] * 4, [0] * 4, vectors, plain)
    assert vectors.keys[int(scored.decide(plain)[0][-1])] == "military"


def test_claim_themes_carry_evidence_and_margin():
    model, ids = _model(["pipeline talks", "friendly match"])
    table = assign_themes(model, CATALOG, ids)["claim_themes"].to_pylist()
    energy = next(r for r in table if r["claim_id"] == "c0" and r["rank"] == 1)
    assert energy["evidence"] in ("gas deal", "Energy") and energy["evidence_kind"] in (
        "seed",
        "label",
    )
    # Margin over the runner-up: the other named theme or the background, whichever is higher.
    runner_up = max(model.named_scores_[0, 1], model.background_[0, 0])
    assert energy["margin"] == pytest.approx(energy["score"] - runner_up, abs=1e-5)
    unassigned = next(r for r in table if r["claim_id"] == "c1")
    assert unassigned["theme_id"] == UNASSIGNED
    assert unassigned["evidence"] is None and unassigned["margin"] is None


def test_analyst_labels_decide_their_claims_and_examples_move_similar_ones():
    # A label forces its claim; a not: label vetoes a theme; an example of 'unassigned' joins
    # the background and pulls a similar claim out of a theme.
    labels = ClaimLabels({"c1": "military"}, {"c0": frozenset({"energy"})})
    model, ids = _model(["pipeline talks", "friendly match"], labels=labels)
    assert list(model.labels_) == [UNASSIGNED, "military"]
    assert model.evidence(1, "military") == ("labelled by an analyst", "analyst_label")
    nearest = ThemeConfig(context_weight=0.0, min_cluster_size=2, seed_top_k=1)
    examples = [Example("pipeline talks", UNASSIGNED)]
    model, _ = _model(["pipeline talks"], nearest, examples=examples)
    assert list(model.labels_) == [UNASSIGNED]
    model, _ = _model(["joint patrol"], nearest)
    assert list(model.labels_) == [UNASSIGNED]
    examples = [Example("joint patrol", "military")]
    model, _ = _model(["joint patrol"], nearest, examples=examples)
    assert list(model.labels_) == ["military"]
    assert model.evidence(0, "military") == ("joint patrol", "feedback")


def test_examples_for_unknown_themes_are_refused():
    with pytest.raises(ValueError, match="unknown theme 'sport'"):
        ThemeVectors.from_catalog(CATALOG, _toy_embed, [Example("friendly match", "sport")])


def _labels(tmp_path, body):
    path = tmp_path / "labels.csv"
    path.write_text(body, encoding="utf-8")
    return path


def _lookups(claims):
    def texts(ids):
        return {c: claims[c] for c in ids if c in claims}

    def ids_of(wanted):
        out = {}
        for c, t in claims.items():
            if t in wanted:
                out.setdefault(t, []).append(c)
        return out

    return texts, ids_of


def test_labels_file_resolves_ids_and_texts(tmp_path):
    claims = {"c1": "Gas flows resumed.", "c2": "The team won.", "c3": "The team won."}
    path = _labels(
        tmp_path,
        "claim_id,text,theme_id\n"
        "c1,,energy\n"
        ",The team won.,unassigned\n"
        ",Troops massed at the border.,not:military\n",
    )
    feedback = load_feedback(path, ["energy", "military"], *_lookups(claims))
    assert feedback.rows == 3 and len(feedback.sha256) == 64
    assert dict(feedback.claim_labels.positive) == {
        "c1": "energy",
        "c2": UNASSIGNED,
        "c3": UNASSIGNED,
    }
    assert Example("Troops massed at the border.", "military", False) in feedback.examples
    assert Example("Gas flows resumed.", "energy") in feedback.examples


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("claim_id,theme_id\nc1,sport\n", "line 2: unknown theme 'sport'"),
        ("claim_id,theme_id\nc1,energy\nc9,energy\n", "line 3: unknown claim_id 'c9'"),
        ("claim_id,text,theme_id\nc1,Some text,energy\n", "line 2: give exactly one"),
        ("text,theme_id\nSome text,not:unassigned\n", "line 2: 'not:unassigned'"),
        ("text,theme_id\nSome text,\n", "line 2: theme_id is empty"),
        ("id,label\nc1,energy\n", "the header must have theme_id"),
    ],
)
def test_labels_file_errors_name_the_row(tmp_path, body, message):
    with pytest.raises(FeedbackError, match=message):
        load_feedback(_labels(tmp_path, body), ["energy"], *_lookups({"c1": "x"}))


def test_labels_digest_is_of_the_bytes(tmp_path):
    _, a = read_labels(_labels(tmp_path, "text,theme_id\nA,energy\n"))
    _, b = read_labels(_labels(tmp_path, "text,theme_id\nB,energy\n"))
    assert a != b


def test_a_discovered_theme_plainly_about_a_named_theme_becomes_its_child():
    # Claims short of the margin 'energy' needs one by one, but clearly about it (a lead over the
    # background above nest_margin) as a group, cluster apart
    # from unrelated claims; that cluster is nested under 'energy', the other is not.
    rng = np.random.default_rng(0)
    near = _unit(ENERGY * 0.45 + NOISE * 0.9 + rng.normal(0, 0.02, (12, 4)))
    far = _unit(NOISE * 0.2 + NEWS * 0.1 + _unit([0, 0, 0.3, 1]) + rng.normal(0, 0.02, (12, 4)))
    x = np.concatenate([near, far]).astype(np.float32)
    vectors = ThemeVectors.from_catalog(CATALOG, _toy_embed)
    ids = [f"c{i}" for i in range(len(x))]
    cfg = ThemeConfig(
        context_weight=0.0, min_cluster_size=3, background_margin=0.5, nest_margin=0.3
    )
    model = ThemeModel(vectors, cfg).fit(
        array_claims(x, ["w"] * len(x), [f"d{i}" for i in range(len(x))], [0] * len(x), ids)
    )
    discovered = [t for t in model.themes_ if t.kind == "discovered"]
    # Keyed by whether the theme holds the energy-like claims (the first twelve).
    parents = {(bool(set(t.member_idx) & set(range(12))), t.parent_id) for t in discovered}
    assert {near for near, _ in parents} == {True, False}
    for near, parent in parents:
        # The unrelated cluster is not nested in a named theme (its parent is a broad theme).
        assert (parent == "energy") if near else (parent is None or parent.startswith("broad_"))


def test_keywords_have_no_news_stop_words_and_keep_phrases_whole():
    texts = [
        "North Korea said it would test missiles. Mr Kim told reporters North Korea is ready. "
        "North Korea also said the test would go ahead.",
        "The Belt and Road plan grows. China says the Belt and Road plan is open. "
        "Officials said the Belt and Road plan would expand.",
    ]
    keywords = ctfidf_keywords(texts, top_n=6)
    assert "north korea" in keywords[0] and "belt and road" in keywords[1]
    for terms in keywords:
        assert not {w for t in terms for w in t.split()} & NEWS_STOP_WORDS


def test_mmr_prefers_relevant_and_diverse_terms():
    centroid = _unit([1, 1, 0, 0])
    candidates = _unit([[1, 0.9, 0, 0], [1, 0.92, 0, 0.01], [0.6, 1, 0, 0], [0, 0, 1, 0]])
    assert mmr(centroid, candidates, 2, diversity=0.0) == [1, 0]
    assert mmr(centroid, candidates, 2, diversity=0.7)[1] == 3  # not a near-copy of the first


def test_theme_keywords_drop_words_inside_chosen_phrases():
    texts = [["North Korea fired missiles.", "North Korea tested missiles.", "Korea said no."]]
    words = ["north korea", "missiles", "korea", "north", "fired"]
    vectors = {w: _unit(np.eye(5)[i] + 0.5) for i, w in enumerate(words)}

    def embed(batch):
        return np.stack([vectors.get(t, _unit(np.arange(5.0) + len(t))) for t in batch])

    out = theme_keywords(texts, [_unit(np.ones(5))], ThemeConfig(n_keywords=3), embed)
    assert "north korea" in out[0] and "korea" not in out[0] and "north" not in out[0]


def test_packaged_catalog_is_not_copied_from_the_seed_articles():
    # The catalog describes themes in general terms: no seed phrase may share most of its
    # words with a sentence of the seed articles (that would measure memory, not the method).
    from pipeline.segment import split_sentences
    from tests.conftest import SEEDS

    def words(s):
        return {w.strip(".,;:'’\"").lower() for w in s.split()} - {""}

    texts = [f.read_text(encoding="utf-8") for f in sorted(SEEDS.glob("*.txt"))]
    sentences = [words(t[a:b]) for t in texts for a, b in split_sentences(t)]
    catalog = load_catalog()
    for theme in catalog.themes.values():
        for phrase in theme.seed_phrases:
            w = words(phrase)
            overlap = max(len(w & s) / len(w | s) for s in sentences if s)
            assert overlap < 0.5, phrase


def test_shipped_catalog_recognises_real_news_sentences(embedder):
    # 15 real news sentences (tests/data/news_dev_sample.csv, three per label), each scored on
    # its own, without its article's context: the shipped catalog and defaults must get most of
    # them, named and "none" alike (benchmarks/themes_news.py measures the whole set).
    import csv

    from pipeline.themes.scoring import named_scores
    from tests.conftest import DATA

    rows = list(csv.DictReader((DATA / "news_dev_sample.csv").open(encoding="utf-8")))
    vectors = ThemeVectors.from_catalog(load_catalog(), embedder.embed)
    x = embedder.embed([r["sentence"] for r in rows])
    cfg = ThemeConfig()
    scored = named_scores(x, [str(i) for i in range(len(rows))], [0] * len(rows), vectors, cfg)
    best, _, assigned, _ = scored.decide(cfg)
    predicted = [vectors.keys[b] if a else "none" for b, a in zip(best, assigned, strict=True)]
    hits = sum(p == r["theme"] for p, r in zip(predicted, rows, strict=True))
    assert hits >= 12, list(zip(predicted, [r["theme"] for r in rows], strict=True))
