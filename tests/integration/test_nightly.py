"""Nightly operation: incremental runs, the embedding cache, the sensor and the schedule."""

import os
import shutil
import time

import dagster as dg
import pandas as pd

from assets.automation import nightly_schedule, raw_dir_sensor
from assets.resources import PipelineSettings
from tests.helpers import TABLES, assert_tables_equal, materialize_all, metadata, read_all

NEW_ARTICLE = (
    "Gas Deal Signed\n\n"
    "Russia and China signed a thirty-year gas supply contract on Monday. "
    "The pipeline will carry gas from Siberia to northern China.\n"
)


def test_second_run_processes_only_new_files(seed_dir, tmp_path, embedder):
    # A night with one new article must not pay for the old ones.
    out = tmp_path / "out"
    first = materialize_all(seed_dir, out, embedder)
    assert first.success
    before = read_all(out)
    first_emb = metadata(first, "claim_embeddings")
    assert (
        first_emb["cache_hits"] == 0
        and first_emb["cache_misses"] == before["claims"].text.nunique()
    )

    (seed_dir / "new.txt").write_text(NEW_ARTICLE)
    second = materialize_all(seed_dir, out, embedder)
    assert second.success
    after = read_all(out)
    docs = metadata(second, "documents")
    assert (docs["files_read"], docs["files_reused"], docs["documents_split"]) == (1, 2, 1)
    new_claims = after["claims"][~after["claims"].claim_id.isin(before["claims"].claim_id)]
    emb = metadata(second, "claim_embeddings")
    assert emb["cache_misses"] == new_claims.text.nunique() == 2
    assert emb["cache_hits"] == before["claims"].text.nunique()
    # Old ids and rows are unchanged.
    old = after["claims"][after["claims"].doc_id.isin(before["documents"].doc_id)]
    pd.testing.assert_frame_equal(
        old.reset_index(drop=True), before["claims"].reset_index(drop=True)
    )

    third = materialize_all(seed_dir, out, embedder)
    assert metadata(third, "documents")["files_read"] == 0
    assert metadata(third, "claim_embeddings")["cache_misses"] == 0
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 3 and runs.run_id.is_unique


def test_changed_file_replaces_its_old_rows(seed_dir, tmp_path, embedder):
    # Same path, new content: a new doc_id, and the old version's rows do not linger.
    out = tmp_path / "out"
    (seed_dir / "story.txt").write_text("Russia sold gas to China last year.\n")
    assert materialize_all(seed_dir, out, embedder).success
    old_id = read_all(out)["documents"].set_index("source_path").doc_id["story.txt"]
    time.sleep(0.01)
    (seed_dir / "story.txt").write_text("India bought Russian weapons for its army.\n")
    assert materialize_all(seed_dir, out, embedder).success
    t = read_all(out)
    new_id = t["documents"].set_index("source_path").doc_id["story.txt"]
    assert new_id != old_id
    for name in ("documents", "claims", "segments", "document_themes"):
        assert old_id not in set(t[name].doc_id), name
    assert set(t["claim_embeddings"].claim_id) == set(t["claims"].claim_id)


def test_deleted_file_leaves_the_tables(seed_dir, tmp_path, embedder):
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    os.remove(seed_dir / "000_1310cc5b051dc124.txt")
    assert materialize_all(seed_dir, out, embedder).success
    assert read_all(out)["documents"].source_path.tolist() == ["004_eb89798d04983a40.txt"]


def test_config_change_triggers_full_rebuild(seed_dir, tmp_path, embedder):
    # Reusing rows produced under other settings would publish stale claims.
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    again = materialize_all(seed_dir, out, embedder, max_sentence_chars=400)
    assert metadata(again, "documents")["files_read"] == 2


def test_sensor_requests_runs_only_for_changes(seed_dir):
    settings = PipelineSettings(raw_dir=str(seed_dir))
    with dg.instance_for_test() as instance:
        first = raw_dir_sensor(
            dg.build_sensor_context(instance=instance, resources={"settings": settings})
        )
        assert len(first.run_requests) == 1 and first.cursor and len(first.cursor) == 66
        same = raw_dir_sensor(
            dg.build_sensor_context(
                instance=instance, cursor=first.cursor, resources={"settings": settings}
            )
        )
        assert (
            not same.run_requests
            and "no new or changed files among 2" in same.skip_reason.skip_message
        )
        (seed_dir / "new.txt").write_text(NEW_ARTICLE)
        new = raw_dir_sensor(
            dg.build_sensor_context(
                instance=instance, cursor=first.cursor, resources={"settings": settings}
            )
        )
        (request,) = new.run_requests
        assert request.run_key != first.run_requests[0].run_key and new.cursor != first.cursor
        assert request.tags["docthemes/raw_files"] == "3"


def test_sensor_skips_missing_raw_dir(tmp_path):
    settings = PipelineSettings(raw_dir=str(tmp_path / "missing"))
    result = raw_dir_sensor(dg.build_sensor_context(resources={"settings": settings}))
    assert "does not exist" in result.skip_reason.skip_message


def test_nightly_schedule():
    assert nightly_schedule.cron_schedule == "0 2 * * *"
    assert nightly_schedule.execution_timezone == "UTC"
    context = dg.build_schedule_context(scheduled_execution_time=None)
    assert len(list(nightly_schedule.evaluate_tick(context).run_requests)) == 1


def test_full_refresh_ignores_previous_state(seed_dir, tmp_path, embedder):
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    fresh = materialize_all(seed_dir, out, embedder, full_refresh=True)
    assert metadata(fresh, "documents")["files_read"] == 2
    assert metadata(fresh, "claim_embeddings")["cache_hits"] == 0
    shutil.rmtree(out / "_cache")


def test_runs_manifest_records_provenance(seed_dir, tmp_path, embedder):
    # Reproducing a table needs its code, packages, model, config and inputs.
    out = tmp_path / "out"
    assert materialize_all(seed_dir, out, embedder).success
    (seed_dir / "new.txt").write_text(NEW_ARTICLE)
    assert materialize_all(seed_dir, out, embedder).success
    runs = pd.read_parquet(out / "runs.parquet")
    last = runs.iloc[-1]
    assert last.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert (
        last.model_weights_sha256
        == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    )
    assert dict(last.package_versions)["dagster"] == "1.13.27"
    assert last.code_version.startswith("pipeline-")
    assert dict(last.row_counts)["documents"] == 3 and last.input_files == 3
    assert runs.inputs_sha256.nunique() == 2  # new input, new digest
    assert runs.config_sha256.nunique() == 1
    assert sorted(last.published_tables) == sorted(
        ["documents", "rejected_files", "duplicates", "segments", "claims", "claim_embeddings"]
        + ["themes", "claim_themes", "document_themes", "theme_trends"]
        + ["claim_matches", "claim_clusters", "claim_spread"]
    )
    assert (runs.finished_at >= runs.started_at).all()


def test_cli_reports_when_nothing_is_new(seed_dir, tmp_path, embedder):
    from assets.cli import summarize

    out = tmp_path / "out"
    assert metadata(materialize_all(seed_dir, out, embedder), "themes")["refitted"] is True
    first = read_all(out)
    again = materialize_all(seed_dir, out, embedder)
    assert metadata(again, "themes")["refitted"] is False  # same claims, dates and settings
    report = summarize(again)
    assert "read 0 new or changed files (2 unchanged)" in report
    assert "nothing new since the last run" in report and "23/23 checks passed" in report
    assert f"published to {out} (snapshot 0000000" in report
    # ...and it is true, themes included: the same inputs give last night's theme tables.
    second = read_all(out)
    for name in TABLES:
        assert_tables_equal(first[name], second[name], name, atol=0)


def test_sensor_runs_when_the_folder_returns_to_an_earlier_state(seed_dir):
    # A file added, then removed: the folder is as it was, but the tables are not.
    settings = PipelineSettings(raw_dir=str(seed_dir))
    keys, cursor = [], None
    with dg.instance_for_test() as instance:
        for step in ("start", "add", "remove"):
            if step == "add":
                (seed_dir / "new.txt").write_text(NEW_ARTICLE)
            if step == "remove":
                (seed_dir / "new.txt").unlink()
            result = raw_dir_sensor(
                dg.build_sensor_context(
                    instance=instance, cursor=cursor, resources={"settings": settings}
                )
            )
            (request,) = result.run_requests
            keys.append(request.run_key)
            cursor = result.cursor
    assert len(set(keys)) == 3
    assert keys[0].split("-")[2] == keys[2].split("-")[2]  # same folder state, new key


def test_a_hung_run_is_bounded():
    import yaml

    from assets.jobs import MAX_RUNTIME_S, docthemes_job
    from tests.conftest import ROOT

    assert docthemes_job.tags["dagster/max_runtime"] == str(MAX_RUNTIME_S)
    instance = yaml.safe_load((ROOT / "config" / "dagster.yaml").read_text())
    assert instance["run_monitoring"]["enabled"] is True
