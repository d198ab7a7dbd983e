"""Hostile operations: what a pipeline run every night for years meets, one test per case.

The cases of the issue "Nightly runs that survive real operations" and where each is tested:

1. raw dir emptied after a good run: ``test_reliability::test_vanished_corpus_is_not_published``
2. a file name that is not UTF-8: ``test_reliability::test_a_file_name_that_is_not_utf8_…``
3. quadratic regexes: ``test_segment`` (hostile inputs), ``benchmarks/hostile_text.py``
4. folders 1,200 levels deep: ``test_ingest`` (iterative walks)
5. output dir inside the raw dir: ``test_reliability::test_overlapping_raw_and_output_dirs_…``
6. bidi controls, UTF-16 without BOM: ``test_ingest``
7. publication as one set, kill -9 between its steps, failure after publishing: here
8. part of the graph materialized: ``test_reliability::test_materializing_part_of_the_graph_…``
9. sensor run keys, run monitoring: ``test_nightly``
10. re-execution from failure: here

Every case here and in ``test_reliability`` that publishes also checks that nothing is lost
(``tests.helpers.assert_nothing_lost``): every raw file is in exactly one of ``documents``,
``rejected_files`` and ``duplicates``.
"""

import os
import signal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipeline.faults import FAULT_ENV
from pipeline.snapshots import TableStore
from tests.helpers import TABLES, assert_nothing_lost, cli_process, read_all


def published_set(out: Path) -> set[Path]:
    """The snapshot folders the published tables resolve into (one, if never mixed)."""
    return {(out / f"{name}.parquet").resolve().parent for name in TABLES}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["snapshot-renamed", "switched"])
def test_kill_9_inside_the_publication_leaves_one_whole_set(seed_dir, tmp_path, point):
    # kill -9 between the snapshot's completion and the switch, or between the switch and the
    # table links: readers see one whole set (last night's, or tonight's), never a mix, and the
    # next run finishes the publication.
    out, home = tmp_path / "out", tmp_path / "home"
    assert cli_process(seed_dir, out, home).wait(timeout=300) == 0
    before = read_all(out)
    (seed_dir / "new.txt").write_text("Russia and India held joint naval drills in the bay.\n")
    proc = cli_process(seed_dir, out, home, {FAULT_ENV: point})
    assert proc.wait(timeout=300) == -signal.SIGKILL, proc.stderr.read()[-2000:]
    assert len(published_set(out)) == 1
    after = read_all(out)
    tonight = point == "switched"
    assert ("new.txt" in set(after["documents"].source_path)) == tonight
    if not tonight:
        for name in TABLES:
            pd.testing.assert_frame_equal(after[name], before[name])
    assert cli_process(seed_dir, out, home).wait(timeout=300) == 0
    assert len(published_set(out)) == 1
    assert "new.txt" in set(read_all(out)["documents"].source_path)
    assert_nothing_lost(seed_dir, out)
    # Three manifest rows: the killed run's came with its tables, then tonight's rerun.
    assert len(pd.read_parquet(out / "runs.parquet")) == 3


def test_rollback_from_the_command_line(seed_dir, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "out"
    env = {"PATH": os.environ["PATH"], "DOCTHEMES_PROCESSED_DIR": str(out)}

    def rollback() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "assets.cli", "rollback"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    store = TableStore(out)
    from tests.unit.test_storage import _publish

    _publish(store, {"documents": 1}, "run1")
    first = rollback()
    assert first.returncode == 2 and "no earlier snapshot" in first.stderr
    _publish(store, {"documents": 2}, "run2")
    second = rollback()
    assert second.returncode == 0, second.stderr
    assert "run1" in second.stdout
    assert pd.read_parquet(out / "documents.parquet").shape[0] == 1
    with store.lock():
        locked = rollback()
    assert locked.returncode == 2 and "another docthemes run" in locked.stderr


def docthemes_job() -> dg.JobDefinition:
    """The nightly job, with resources from DOCTHEMES_* read now (for dg.reconstructable)."""
    from assets.definitions import ALL_ASSETS, build_resources
    from assets.jobs import docthemes_job as job

    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[job],
        resources=build_resources(),
        executor=dg.in_process_executor,
    ).resolve_job_def("docthemes_job")


@pytest.mark.model
@pytest.mark.slow
def test_re_execution_from_failure_resumes_or_fails_clearly(seed_dir, tmp_path, monkeypatch):
    # "Re-execute from failure" gets a new run id: it resumes from the tables its parent
    # staged (the steps it skips are not read from another night), and publishes the same
    # tables a run without the failure would. If the parent's staging is gone, it fails with a
    # message that says so, and publishes nothing.
    out = tmp_path / "out"
    monkeypatch.setenv("DOCTHEMES_RAW_DIR", str(seed_dir))
    monkeypatch.setenv("DOCTHEMES_PROCESSED_DIR", str(out))
    job = dg.reconstructable(docthemes_job)

    def failing_fit(*args, **kwargs):
        raise RuntimeError("the theme step failed tonight")

    with dg.instance_for_test() as instance:
        with monkeypatch.context() as m:
            m.setattr("pipeline.themes.ThemeModel.fit", failing_fit)
            failed = dg.execute_job(job, instance)
        assert not failed.success and not (out / "documents.parquet").exists()
        retry = dg.execute_job(
            job,
            instance,
            reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, instance),
        )
        assert retry.success
        ran = {e.step_key for e in retry.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert "corpus" not in ran and "theme_tables" in ran  # resumed, not redone
        runs = pd.read_parquet(out / "runs.parquet")
        assert list(runs.run_id) == [retry.run_id]
        assert_nothing_lost(seed_dir, out)
        published = read_all(out)

        # The parent's staging gone (another run cleaned it): a clear failure, nothing changes.
        (seed_dir / "new.txt").write_text("Russia and India held joint naval drills.\n")
        with monkeypatch.context() as m:
            m.setattr("pipeline.themes.ThemeModel.fit", failing_fit)
            failed = dg.execute_job(job, instance)
        TableStore(out).discard_staging()
        again = dg.execute_job(
            job,
            instance,
            reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, instance),
        )
        assert not again.success
        errors = [
            str(e.event_specific_data.error)
            for e in again.all_events
            if e.is_failure and getattr(e.event_specific_data, "error", None)
        ]
        assert any("cannot re-execute run" in m for m in errors), errors
        for name in TABLES:
            pd.testing.assert_frame_equal(read_all(out)[name], published[name])
