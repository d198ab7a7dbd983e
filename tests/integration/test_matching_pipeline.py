"""Claim matching through a real materialization: tables, rules, two nights, the CLI."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from assets.cli import app
from tests.helpers import materialize_all, metadata

ARTICLES = {
    "reuters/gas.txt": (
        "Reuters",
        "2024-05-20",
        "Russia and China signed a deal on Monday to build the Power of Siberia 2 gas pipeline. "
        "The pipeline will carry 50 billion cubic metres of gas a year to China. "
        "Officials in Moscow called the agreement historic.",
    ),
    "tass/gas.txt": (
        "TASS",
        "2024-05-21",
        "Moscow and Beijing signed an agreement to build the Power of Siberia 2 gas pipeline. "
        "The pipeline is to carry 50 billion cubic metres of gas to China every year. "
        "Kremlin officials praised the accord.",
    ),
    "ap/gas.txt": (
        "AP",
        "2024-05-21",
        "Russia and China failed to sign a deal to build the Power of Siberia 2 gas pipeline. "
        "The pipeline would carry 38 billion cubic metres of gas a year to China. "
        "Talks will resume in the autumn.",
    ),
}
LATE = (
    "Xinhua",
    "2024-05-23",
    "China and Russia signed a deal to build the Power of Siberia 2 gas pipeline this week. "
    "Chinese officials welcomed the project.",
)


def write(raw, path, source, date, text):
    (raw / path).parent.mkdir(parents=True, exist_ok=True)
    (raw / path).write_text(text, encoding="utf-8")
    meta = {"source": source, "published_date": date}
    (raw / path).with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")


def tables(out):
    names = ("documents", "claims", "claim_matches", "claim_clusters", "claim_spread")
    return {n: pd.read_parquet(out / f"{n}.parquet") for n in names}


def cluster_of(t, source, start):
    """The cluster of the claim of ``source``'s article that starts with ``start``."""
    docs = t["documents"].set_index("doc_id")
    claims = t["claims"].assign(source=lambda c: c["doc_id"].map(docs["source"]))
    [claim_id] = claims[(claims["source"] == source) & claims["text"].str.startswith(start)][
        "claim_id"
    ]
    found = t["claim_clusters"].query("claim_id == @claim_id")["cluster_id"]
    return claim_id, (found.iloc[0] if len(found) else None)


@pytest.fixture(scope="module")
def nights(tmp_path_factory, embedder):
    raw, out = tmp_path_factory.mktemp("raw"), tmp_path_factory.mktemp("out")
    for path, (source, date, text) in ARTICLES.items():
        write(raw, path, source, date, text)
    first = materialize_all(raw, out, embedder)
    assert first.success
    night1 = tables(out)
    write(raw, "xinhua/gas.txt", *LATE)
    second = materialize_all(raw, out, embedder)
    assert second.success
    return {"out": out, 1: night1, 2: tables(out), "stats1": metadata(first, "claim_clusters"),
            "stats2": metadata(second, "claim_clusters")}  # fmt: skip


def test_the_same_claim_across_outlets_is_one_cluster(nights):
    t = nights[1]
    assert set(t["documents"]["source"]) == {"Reuters", "TASS", "AP"}
    _, signed = cluster_of(t, "Reuters", "Russia and China signed")
    assert signed is not None and signed == cluster_of(t, "TASS", "Moscow and Beijing signed")[1]
    _, volume = cluster_of(t, "Reuters", "The pipeline will carry 50")
    assert volume is not None and volume == cluster_of(t, "TASS", "The pipeline is to carry")[1]
    row = t["claim_clusters"].query("cluster_id == @signed").iloc[0]
    assert row["n_documents"] == 2 and row["n_sources"] == 2
    assert str(row["first_seen"]) == "2024-05-20" and row["first_source"] == "Reuters"


def test_a_contradicting_detail_keeps_a_claim_out(nights):
    t = nights[1]
    _, signed = cluster_of(t, "Reuters", "Russia and China signed")
    _, volume = cluster_of(t, "Reuters", "The pipeline will carry 50")
    assert cluster_of(t, "AP", "Russia and China failed to sign")[1] != signed  # negation
    assert cluster_of(t, "AP", "The pipeline would carry 38")[1] != volume  # numbers
    assert nights["stats1"]["refused_negation"] >= 1 and nights["stats1"]["refused_quantity"] >= 1


def test_matches_pair_different_documents_only(nights):
    for night in (1, 2):
        m = nights[night]["claim_matches"]
        assert len(m) and (m["doc_id"] != m["other_doc_id"]).all()
        assert (m["claim_id"] < m["other_claim_id"]).all()
        assert m["score"].between(0, 3).all()


def test_the_second_night_matches_new_claims_and_keeps_cluster_ids(nights):
    one, two = nights[1], nights[2]
    assert nights["stats2"]["rebuilt"] is False
    assert nights["stats2"]["new_claims"] == len(two["claims"]) - len(one["claims"])
    old = one["claim_clusters"][["claim_id", "cluster_id"]]
    kept = old.merge(two["claim_clusters"], on="claim_id", suffixes=("", "_2"))
    assert len(kept) == len(old) and (kept["cluster_id"] == kept["cluster_id_2"]).all()
    _, signed = cluster_of(one, "Reuters", "Russia and China signed")
    assert cluster_of(two, "Xinhua", "China and Russia signed")[1] == signed
    row = two["claim_clusters"].query("cluster_id == @signed").iloc[0]
    assert row["n_sources"] == 3 and str(row["first_seen"]) == "2024-05-20"
    spread = two["claim_spread"].query("cluster_id == @signed").sort_values("date")
    assert [str(d) for d in spread["date"]] == ["2024-05-20", "2024-05-21", "2024-05-23"]
    assert spread["cumulative_sources"].tolist() == [1, 2, 3]


def test_matches_command_lists_the_claim_elsewhere(nights):
    out = str(nights["out"])
    claim_id, _ = cluster_of(nights[2], "Reuters", "Russia and China signed")
    runner = CliRunner()
    result = runner.invoke(app, ["matches", claim_id, "--out", out, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert [(m["source"], m["date"]) for m in info["matches"]] == [
        ("TASS", "2024-05-21"),
        ("Xinhua", "2024-05-23"),
    ]
    by_text = runner.invoke(app, ["matches", "Russia and China signed the gas deal", "--out", out])
    assert by_text.exit_code == 0, by_text.output
    assert "nearest claim" in by_text.output and "TASS" in by_text.output
    unknown = runner.invoke(app, ["matches", "x", "--out", str(nights["out"].parent / "none")])
    assert unknown.exit_code == 1 and "no published tables" in unknown.output


def test_the_report_shows_the_spread(nights):
    from pipeline.report import build_report

    page, _ = build_report(nights["out"])
    section = page[page.index("<section id='spread'>") :]
    assert "Claims repeated across outlets" in section
    assert "Power of Siberia 2" in section.split("</section>")[0]
    assert "2024-05-20: 1 → 2024-05-21: 2 → 2024-05-23: 3" in section
