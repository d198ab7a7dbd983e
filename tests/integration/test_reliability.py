"""Reliability: nothing half-published, kill -9 recovery, locking, config errors, no pickle."""

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from assets.resources import EmbedderResource, PipelineSettings
from pipeline.embed import EmbeddingCache, embed_with_cache
from pipeline.snapshots import TableStore
from tests.conftest import ROOT
from tests.helpers import (
    TABLES,
    assert_nothing_lost,
    assert_tables_equal,
    cli_process,
    materialize_all,
    read_all,
)


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.parquet"))}


def test_failed_run_publishes_nothing(seed_dir, tmp_path, embedder):
    # A bad night must leave yesterday's tables intact and readable.
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    before = snapshot(out)
    (seed_dir / "new.txt").write_text("Russia and India held joint naval drills.\n")
    broken = EmbedderResource(model=str(tmp_path / "no-such-model"))
    result = materialize_all(seed_dir, out, broken)
    assert not result.success
    assert snapshot(out) == before  # corpus tables were staged, never published
    assert (out / ".staging").is_dir()
    assert materialize_all(seed_dir, out, embedder).success
    assert not any((out / ".staging").iterdir())  # the dead run's staging is cleaned up
    assert "new.txt" in set(read_all(out)["documents"].source_path)
    assert_nothing_lost(seed_dir, out)


def test_failing_check_blocks_publication(seed_dir, tmp_path, embedder, monkeypatch):
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    before = snapshot(out)
    (seed_dir / "new.txt").write_text("Russia and India held joint naval drills.\n")
    monkeypatch.setattr("pipeline.validate.check_offsets", lambda *a: ["claims do not match"])
    result = materialize_all(seed_dir, out, embedder)
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert {c.check_name for c in failed} >= {"claims_trace_to_documents"}
    assert snapshot(out) == before
    monkeypatch.undo()  # the check passes again: the next run publishes everything
    assert materialize_all(seed_dir, out, embedder).success
    assert_nothing_lost(seed_dir, out)


def test_vanished_corpus_is_not_published(seed_dir, tmp_path, embedder):
    # An emptied (or unmounted) raw dir after a good run must not replace the good tables with
    # empty ones: the shrink guard blocks publication and names the setting that allows it.
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    before = snapshot(out)
    for f in seed_dir.iterdir():
        f.unlink()
    result = materialize_all(seed_dir, out, embedder)
    assert not result.success
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert [c.check_name for c in failed] == ["corpus_not_shrunk_by_accident"]
    assert "yields no documents while the last published run had 2" in failed[0].description
    assert "max_corpus_shrink" in failed[0].description
    assert snapshot(out) == before
    # On purpose: the setting lets an emptied corpus through.
    assert materialize_all(seed_dir, out, embedder, max_corpus_shrink=1.0).success
    assert read_all(out)["documents"].empty
    assert_nothing_lost(seed_dir, out)


def test_materializing_part_of_the_graph_takes_the_run_lock(seed_dir, tmp_path, embedder):
    # Only the theme assets, as from the UI: they rewrite tables too, so they wait for the lock.
    from assets.definitions import ALL_ASSETS
    from tests.helpers import resources

    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    with TableStore(out).lock(0):
        result = dg.materialize(
            ALL_ASSETS,
            selection=dg.AssetSelection.groups("themes"),
            resources=resources(seed_dir, out, embedder),
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    assert "lock" in str(failure.event_specific_data.error).lower()


def test_second_run_waits_then_fails_with_a_clear_message(seed_dir, tmp_path, embedder):
    out = tmp_path / "out"
    with TableStore(out).lock():
        result = materialize_all(seed_dir, out, embedder)
    assert not result.success
    failure = result.get_run_failure_event() or result.get_step_failure_events()[0]
    assert "another docthemes run is writing to" in str(failure.event_specific_data)


def test_concurrent_runs_are_serialised(seed_dir, tmp_path):
    # Two runs at once: the second waits for the lock, then finds nothing new to do.
    out, home = tmp_path / "out", tmp_path / "home"
    first = cli_process(seed_dir, out, home)
    # Start the second once the first is running (a fresh DAGSTER_HOME's SQLite schema cannot
    # be created by two processes at once; a real instance exists long before).
    _wait_for(lambda: (out / ".docthemes.lock").exists(), first)
    second = cli_process(seed_dir, out, home)
    for proc in (first, second):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    assert len(pd.read_parquet(out / "runs.parquet")) == 2
    assert set(read_all(out)["claim_embeddings"].claim_id) == set(read_all(out)["claims"].claim_id)


def _synthetic_corpus(raw: Path, n_docs: int = 30) -> None:
    """Unique sentences built from the seeds, so embedding takes a few seconds."""
    rng = random.Random(0)
    sentences = [
        s.strip() + "."
        for f in sorted((ROOT / "data" / "raw").glob("*.txt"))
        for s in f.read_text(encoding="utf-8").split(". ")
        if len(s.split()) > 6
    ]
    for i in range(n_docs):
        picked = rng.sample(sentences, 25)
        body = " ".join(f"In dispatch {i}-{j}, {s[0].lower()}{s[1:]}" for j, s in enumerate(picked))
        (raw / f"synthetic_{i:03d}.txt").write_text(f"Dispatch {i}\n\n{body}\n", encoding="utf-8")


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"run ended before the kill point: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_at_any_point_then_rerun_equals_clean_run(seed_dir, tmp_path):
    out, home = tmp_path / "out", tmp_path / "home"
    first = cli_process(seed_dir, out, home)
    assert first.wait(timeout=300) == 0
    yesterday = snapshot(out)
    _synthetic_corpus(seed_dir)
    staged = lambda name: any((out / ".staging").glob(f"*/{name}.parquet"))  # noqa: E731
    kill_points = {
        "during ingest": lambda: (out / ".staging").exists() or (out / ".docthemes.lock").exists(),
        "during embedding": lambda: staged("claims"),
        "during write": lambda: staged("themes"),
    }
    for where, reached in kill_points.items():
        proc = cli_process(seed_dir, out, home)
        _wait_for(reached, proc)
        if where == "during embedding":
            time.sleep(1.0)  # the model is loaded and encoding
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert snapshot(out) == yesterday, f"published tables changed after kill {where}"
        for name in TABLES:
            pd.read_parquet(out / f"{name}.parquet")  # still readable
    assert cli_process(seed_dir, out, home).wait(timeout=300) == 0
    # The uninterrupted equivalent: the same two nights (seeds, then everything), no kill.
    # Themes keep ids from night to night, so the history is part of the input.
    clean_out, home2, aside = tmp_path / "clean", tmp_path / "home2", tmp_path / "aside"
    aside.mkdir()
    synthetic = sorted(seed_dir.glob("synthetic_*.txt"))
    for f in synthetic:
        f.rename(aside / f.name)  # rename keeps the mtime
    assert cli_process(seed_dir, clean_out, home2).wait(timeout=300) == 0
    for f in synthetic:
        (aside / f.name).rename(f)
    assert cli_process(seed_dir, clean_out, home2).wait(timeout=300) == 0
    recovered, clean = read_all(out), read_all(clean_out)
    for name in TABLES:
        assert_tables_equal(recovered[name], clean[name], name)
    assert_nothing_lost(seed_dir, out)


def test_embedding_cache_resumes_from_checkpoints(tmp_path):
    # A run killed mid-embedding keeps finished chunks; the next embeds only the rest.
    calls = []

    def fake_embed(texts):
        calls.append(len(texts))
        return np.tile(np.eye(1, 4, dtype=np.float32), (len(texts), 1))

    cache = EmbeddingCache(tmp_path, "m")
    texts = [f"text {i}" for i in range(10)] + ["text 0"]
    first = embed_with_cache(texts[:6], fake_embed, cache, chunk_size=4)
    assert (first.hits, first.misses, calls) == (0, 6, [4, 2])
    second = embed_with_cache(texts, fake_embed, cache, chunk_size=4)
    assert (second.hits, second.misses, calls[2:]) == (6, 4, [4])
    assert second.vectors.shape == (11, 4)
    cache.clear()
    assert cache.n_shards == 0 and cache.load()[1].shape[0] == 0


def test_config_errors_are_clear():
    with pytest.raises(ValidationError) as err:
        PipelineSettings(themes={"assign_threshold": -0.1})
    assert "assign_threshold\n  Input should be greater than or equal to 0" in str(err.value)
    with pytest.raises(ValidationError) as err:
        PipelineSettings(themes={"colour": "red"})
    assert "colour\n  Extra inputs are not permitted" in str(err.value)
    with pytest.raises(ValidationError, match="theme_catalog '/no/such.yaml' is not a file"):
        PipelineSettings(theme_catalog="/no/such.yaml")
    with pytest.raises(ValidationError) as err:
        PipelineSettings(max_file_bytes=-1)
    assert "max_file_bytes\n  Input should be greater than 0" in str(err.value)


def test_overlapping_raw_and_output_dirs_are_refused(tmp_path):
    # An output dir inside the raw dir read its own Parquet files back as 14 unsupported_type
    # rejects every night, and each publish woke the sensor.
    raw = tmp_path / "raw"
    for out in (raw / "processed", raw, tmp_path):
        with pytest.raises(ValidationError, match="overlap: put the output dir outside"):
            PipelineSettings(raw_dir=str(raw), processed_dir=str(out))
    PipelineSettings(raw_dir=str(raw), processed_dir=str(tmp_path / "out"))


def test_missing_raw_dir_fails_the_first_step(tmp_path, embedder):
    result = materialize_all(tmp_path / "nope", tmp_path / "out", embedder)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "corpus"
    retry = dg.DagsterEventType.STEP_UP_FOR_RETRY
    assert not [e for e in result.all_events if e.event_type == retry]  # nothing to mend by waiting
    assert "does not exist or is not a directory" in str(failure.event_specific_data.error)
    assert not (tmp_path / "out" / "documents.parquet").exists()


def test_no_pickle_anywhere(seed_dir, tmp_path, embedder):
    # The default IO manager pickles to DAGSTER_HOME/storage; every asset must bypass it.
    out = tmp_path / "out"
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        assert materialize_all(seed_dir, out, embedder, instance=instance).success
    # Dagster keeps only captured stdout/stderr under storage/; no asset output lands there.
    stored = [p for p in (tmp_path / "home" / "storage").rglob("*") if p.is_file()]
    assert all("compute_logs" in p.parts for p in stored), stored
    for path in [*out.rglob("*"), *(tmp_path / "home").rglob("*")]:
        if path.is_file():
            head = path.read_bytes()[:2]
            assert not (head[:1] == b"\x80" and head[1:2] in (b"\x03", b"\x04", b"\x05")), path


def test_a_file_name_that_is_not_utf8_is_read_with_an_escaped_path(seed_dir, tmp_path, embedder):
    # 'caf\xe9.txt' (Latin-1 bytes, as Windows zip files leave them) used to fail every night
    # in the corpus step; it is a document whose source_path escapes the undecodable byte.
    name = os.fsencode(seed_dir) + b"/caf\xe9.txt"
    with open(name, "wb") as fh:
        fh.write(b"Russia and India held joint naval drills in the Arabian Sea this week.\n")
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    docs = read_all(out)["documents"]
    assert "caf\\xe9.txt" in set(docs.source_path)
    again = materialize_all(seed_dir, out, embedder)
    assert again.success
    meta = next(
        e.materialization.metadata
        for e in again.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == "documents"
    )
    assert meta["files_read"].value == 0  # recognised as unchanged under its escaped name
    assert_nothing_lost(seed_dir, out)
