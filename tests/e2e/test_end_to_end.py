"""Real materialization of every asset on the seeds, with the real model, read back."""

import csv

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipeline.schemas import SCHEMAS
from tests.conftest import DATA, ROOT
from tests.helpers import TABLES, cli_process, materialize_all, read_all
from tests.torture import build_torture_folder


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory, embedder):
    raw = tmp_path_factory.mktemp("raw")
    for f in sorted((ROOT / "data" / "raw").glob("*.txt")):
        (raw / f.name).write_bytes(f.read_bytes())
    out = tmp_path_factory.mktemp("processed")
    result = materialize_all(raw, out, embedder)
    assert result.success
    return result, out, read_all(out)


def test_every_table_matches_its_contract_schema(seed_run):
    _, out, _ = seed_run
    for name in TABLES:
        schema = pq.read_schema(out / f"{name}.parquet")
        expected = SCHEMAS.get(name)
        if expected is not None:
            assert schema.remove_metadata().equals(expected.remove_metadata()), name
    emb = pq.read_schema(out / "claim_embeddings.parquet").field("embedding").type
    assert emb.list_size == 384 and str(emb.value_type) == "float"


def test_documents_and_claims(seed_run):
    _, _, t = seed_run
    docs, claims = t["documents"], t["claims"]
    assert sorted(docs.source_path) == ["000_1310cc5b051dc124.txt", "004_eb89798d04983a40.txt"]
    assert docs.doc_id.is_unique and claims.claim_id.is_unique
    text = dict(zip(docs.doc_id, docs.text, strict=True))
    for row in claims.itertuples():
        assert text[row.doc_id][row.char_start : row.char_end] == row.text
    counts = claims.groupby("doc_id").size()
    assert dict(zip(docs.doc_id, docs.n_claims, strict=True)) == counts.to_dict()
    # Headings and attribution lines are not claims; the attribution is on the document.
    assert not claims.text.str.contains("Strained Ties with Traditional Allies").any()
    assert not claims.text.str.startswith("Source:").any()
    assert docs.source_attribution.dropna().tolist() == [
        "Source: Official Russian Ministry of Foreign Affairs website."
    ]
    assert claims.text.str.endswith("an overreach of U.S. authority in global affairs.").sum() == 1


def test_embeddings_are_normalised_and_complete(seed_run):
    _, _, t = seed_run
    emb = t["claim_embeddings"]
    assert set(emb.claim_id) == set(t["claims"].claim_id)
    norms = np.linalg.norm(np.stack(emb.embedding.to_numpy()), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert set(emb.model) == {"sentence-transformers/all-MiniLM-L6-v2"}


def test_theme_tables(seed_run):
    _, _, t = seed_run
    themes, ct, dt = t["themes"], t["claim_themes"], t["document_themes"]
    assert {"energy_axis", "military_collaboration", "multipolarity", "isolation"} <= set(
        themes.theme_id
    )
    assert set(themes.kind) <= {"named", "discovered", "unassigned"}
    primary = ct[ct["rank"] == 1]
    assert primary.claim_id.is_unique and set(primary.claim_id) == set(t["claims"].claim_id)
    assert set(ct.theme_id) <= set(themes.theme_id)
    n_by_theme = primary.groupby("theme_id").size().to_dict()
    for row in themes.itertuples():
        if row.kind != "broad":  # broad themes count their children's claims
            assert row.n_claims == n_by_theme.get(row.theme_id, 0)
    np.testing.assert_allclose(dt.groupby("doc_id").share.sum(), 1.0, rtol=1e-6)
    trends = t["theme_trends"]
    assert trends[~trends.theme_id.str.startswith("broad_")].n_claims.sum() == len(t["claims"])
    assert set(themes.status) == {"active"}


def test_seed_gold_themes(seed_run):
    # tests/data/seed_gold_themes.csv: 29 sentences of the seed articles labelled with their
    # theme. A smoke test, not a measure of quality (benchmarks/themes_news.py is): the catalog
    # does not copy these sentences. The floor: 27 of 29.
    _, _, t = seed_run
    segments = t["segments"].merge(t["documents"][["doc_id", "source_path"]], on="doc_id")
    primary = t["claim_themes"].query("rank == 1").merge(t["claims"], on="claim_id")
    gold = list(csv.DictReader((DATA / "seed_gold_themes.csv").open(encoding="utf-8")))
    hits = 0
    for g in gold:
        seg = segments[(segments.source_path == g["file"]) & (segments.text == g["sentence"])]
        assert len(seg) == 1, f"gold sentence not segmented as one sentence: {g['sentence']}"
        # A sentence split into several claims takes its claims' majority theme.
        claims = primary[primary.sentence_id == seg.segment_id.iloc[0]]
        votes = claims.groupby("theme_id").score.agg(["count", "max"])
        hits += votes.sort_values(["count", "max"], ascending=False).index[0] == g["theme"]
    assert len(gold) == 29
    assert hits / len(gold) >= 0.93, f"{hits}/{len(gold)}"


def test_asset_metadata(seed_run):
    result, _, _ = seed_run
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        if event.asset_key == dg.AssetKey("theme_report"):  # a page, not a table: its plots
            assert {"path", "plot_theme_sizes", "plot_claim_map"} <= set(meta)
            continue
        assert {"dagster/row_count", "dagster/column_schema", "preview"} <= set(meta)
    docs = result.asset_materializations_for_node("corpus")[0].metadata
    assert docs["files_documents"].value == 2


def test_analysts_can_read_with_duckdb_and_polars(seed_run):
    _, out, t = seed_run
    con = duckdb.connect()
    ((n,),) = con.execute(
        f"select count(*) from '{out}/claims.parquet' c join '{out}/claim_themes.parquet' t "
        "using (claim_id) where t.rank = 1"
    ).fetchall()
    assert n == len(t["claims"])
    assert pl.read_parquet(out / "themes.parquet").height == len(t["themes"])


def test_rerun_is_identical(seed_run, embedder, tmp_path):
    # Same input and configuration, same tables (sorted rows, stable ids, fixed seeds).
    _, out, first = seed_run
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in sorted((ROOT / "data" / "raw").glob("*.txt")):
        (raw / f.name).write_bytes(f.read_bytes())
    assert materialize_all(raw, tmp_path / "out", embedder).success
    second = read_all(tmp_path / "out")
    for name in TABLES:
        a, b = first[name], second[name]
        if name == "documents":  # the copies live at other absolute paths
            a, b = (
                a.drop(columns=["ingested_from", "mtime"]),
                b.drop(columns=["ingested_from", "mtime"]),
            )
        assert a.astype(str).equals(b.astype(str)), name


def test_torture_folder_materializes(tmp_path, seed_dir, embedder):
    # A hostile folder never fails the run; every file is accounted for in the tables.
    outside = tmp_path / "outside"
    outside.mkdir()
    expect = build_torture_folder(seed_dir, outside)
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder, max_file_bytes=5_000_000).success
    t = read_all(out)
    listed = [
        *t["documents"].source_path,
        *t["rejected_files"].source_path,
        *t["duplicates"].source_path,
    ]
    assert len(listed) == len(set(listed))
    assert set(expect) | {"000_1310cc5b051dc124.txt", "004_eb89798d04983a40.txt"} == set(listed)
    reasons = dict(zip(t["rejected_files"].source_path, t["rejected_files"].reason, strict=True))
    for path, outcome in expect.items():
        if outcome not in ("document", "duplicate") and path != "bad/unreadable.txt":
            assert reasons[path] == outcome, path
    assert t["claims"].text.str.len().max() <= 1000  # the 300 kB paragraph is bounded


def test_cli_run_uses_environment(tmp_path):
    # `make run` calls this console script; it must honour the DOCTHEMES_* variables.
    raw, out, home = tmp_path / "raw", tmp_path / "out", tmp_path / "home"
    raw.mkdir()
    home.mkdir()
    (raw / "a.txt").write_text("Russia redirected its oil and gas exports to China.\n")
    proc = cli_process(raw, out, home)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert "docthemes run succeeded" in stdout
    assert "claims                    1 rows" in stdout
    assert read_all(out)["claim_themes"].theme_id.tolist() == ["energy_axis"]
    # No process or semaphore is left behind for the resource tracker to report.
    assert "leaked semaphore" not in stderr


def test_analyst_labels_file_steers_the_next_run(seed_dir, tmp_path, embedder):
    # A labels file (by exact claim text) decides that claim; its digest is in the manifest; a
    # row naming an unknown theme fails the theme step with the file and line, and the
    # published tables stay as they were.
    import hashlib
    import json

    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    claims = read_all(out)["claims"]
    text = claims.text.iloc[0]
    labels = tmp_path / "labels.csv"
    labels.write_text(f'text,theme_id\n"{text}",energy_axis\n', encoding="utf-8")
    assert materialize_all(seed_dir, out, embedder, theme_labels=str(labels)).success
    t = read_all(out)
    row = t["claim_themes"].query("rank == 1").set_index("claim_id").loc[claims.claim_id.iloc[0]]
    assert (row.theme_id, row.evidence_kind) == ("energy_axis", "analyst_label")
    runs = pq.read_table(out / "runs.parquet").to_pylist()
    config = json.loads(runs[-1]["config_json"])
    assert config["theme_labels_sha256"] == hashlib.sha256(labels.read_bytes()).hexdigest()

    before = {p.name: p.read_bytes() for p in sorted(out.glob("*.parquet"))}
    labels.write_text("text,theme_id\nSome statement.,sport\n", encoding="utf-8")
    result = materialize_all(seed_dir, out, embedder, theme_labels=str(labels))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "line 2: unknown theme 'sport'" in str(failure.event_specific_data.error)
    assert {p.name: p.read_bytes() for p in sorted(out.glob("*.parquet"))} == before


def test_cli_run_shows_progress_lines_and_terminal_bars(tmp_path):
    # Off a terminal (cron, CI) each stage writes plain lines; on one, live bars as well.
    import os
    import pty
    import threading

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("Russia redirected its oil and gas exports to China.\n")
    proc = cli_process(raw, tmp_path / "out", tmp_path / "home", log_level="INFO")
    _, plain = proc.communicate(timeout=300)
    assert proc.returncode == 0, plain[-3000:]
    for line in (
        "corpus: 1 of 1 files scanned",
        "corpus: 1 of 1 documents split",
        "embedding: 1 of 1 texts embedded",
        "themes: 1 of 1 claims fitted",
    ):
        assert line in plain, line
    assert "━" not in plain  # no bars in a log

    (raw / "b.txt").write_text("China and Russia held joint naval drills.\n")
    master, slave = pty.openpty()
    proc = cli_process(raw, tmp_path / "out", tmp_path / "home", stderr=slave)
    os.close(slave)
    seen = bytearray()

    def drain() -> None:  # a full pty buffer would block the run
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    proc.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(master)
    terminal = seen.decode("utf-8", "replace")
    assert proc.returncode == 0, terminal[-3000:]
    for bar in ("corpus: files scanned", "embedding: texts embedded", "themes: claims fitted"):
        assert bar in terminal, bar
    assert "━" in terminal
