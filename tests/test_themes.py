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
    model = ThemeModel(vectors, config).fit(
        embedder.embed(texts), texts, doc_ids, list(range(len(texts))), ids
    )
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
    rows = assign_themes(model, load_catalog(), ids, doc_ids)
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
    rows = assign_themes(model, load_catalog(), ids, doc_ids)["document_themes"]
    for doc in ("a", "b"):
        assert sum(r["share"] for r in rows if r["doc_id"] == doc) == pytest.approx(1.0)
