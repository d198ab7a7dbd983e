"""The cluster profile for real: a PostgreSQL server and a Dask cluster, both on loopback.

`make test` installs Debian's postgresql when it is absent (Makefile: postgresql); the server,
the Dask scheduler and the workers are started here as the commands an operator runs
(`initdb`/`pg_ctl`, `dask scheduler`, `dask worker`) and stopped after.
"""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipeline.faults import FAULT_ENV, FAULT_ONCE_ENV
from tests.conftest import ROOT
from tests.helpers import TABLES, assert_nothing_lost, assert_tables_equal, cli_process, read_all
from tests.servers import dask_cluster, postgres_server, scheduler_tasks

pytestmark = pytest.mark.slow

LOCAL_YAML = ROOT / "config" / "dagster.yaml"
CLUSTER_YAML = ROOT / "config" / "dagster-cluster.yaml"


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def cluster_run(
    raw: Path, out: Path, address: str, postgres: str | None = None
) -> subprocess.Popen:
    home = out.parent / f"{out.name}-home"
    home.mkdir()
    shutil.copy(CLUSTER_YAML if postgres else LOCAL_YAML, home / "dagster.yaml")
    env = {"DOCTHEMES_PROFILE": "cluster", "DOCTHEMES_DASK_SCHEDULER": address}
    if postgres:
        env["DOCTHEMES_POSTGRES_URL"] = postgres
    return cli_process(raw, out, home, env)


def assert_same_tables(out: Path, reference: Path) -> None:
    got, want = read_all(out), read_all(reference)
    for name in TABLES:
        if name != "runs":  # run ids and times differ by nature
            assert_tables_equal(got[name], want[name], name)


def test_the_cluster_profile_gives_the_local_profiles_tables(seeds, local_run, postgres, tmp_path):
    import dagster as dg

    with dask_cluster(tmp_path / "dask", [["--nworkers", "2"]]) as address:
        proc = cluster_run(seeds, tmp_path / "out", address, postgres)
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
        # The data-parallel work ran on the workers, each of which opened the encoder.
        assert {"read_documents", "split_documents", "encode_texts"} <= scheduler_tasks(address)
    assert_same_tables(tmp_path / "out", local_run)
    assert_nothing_lost(seeds, tmp_path / "out")
    # The run is recorded in PostgreSQL, not in a SQLite file under DAGSTER_HOME.
    home = tmp_path / "out-home"
    os.environ["DOCTHEMES_POSTGRES_URL"] = postgres
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            runs = instance.get_runs()
            assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
    finally:
        del os.environ["DOCTHEMES_POSTGRES_URL"]
    assert not list(home.rglob("*.db"))
    manifest = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    assert json.loads(manifest.config_json.iloc[-1])["compute"]["profile"] == "cluster"


def test_a_worker_killed_mid_run_is_replaced_and_the_tables_are_the_same(
    seeds, local_run, tmp_path
):
    # The first worker to get a chunk of texts is SIGKILLed on receiving it; Dask gives the
    # chunk to a live worker (the nanny restarts the dead one) and the run completes.
    killed = tmp_path / "killed"
    once = [f"{FAULT_ENV}=embedding-task", f"{FAULT_ONCE_ENV}={killed}"]
    with dask_cluster(tmp_path / "dask", [["--nworkers", "2", *once]]) as address:
        proc = cluster_run(seeds, tmp_path / "out", address)
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    assert killed.exists()  # a worker did die mid-run
    assert "killed by signal 9" in (tmp_path / "dask" / "worker0.log").read_text()
    assert_same_tables(tmp_path / "out", local_run)


def test_tasks_that_kill_every_worker_fail_the_run_and_publish_nothing(seeds, local_run, tmp_path):
    # Every worker dies on every chunk of texts: after Dask's reschedules and retries the run
    # fails with a message, and the published tables stay last night's snapshot.
    out = tmp_path / "out"
    shutil.copytree(local_run, out, symlinks=True)
    raw = tmp_path / "raw"
    shutil.copytree(seeds, raw)
    (raw / "new.txt").write_text("Russia and India held joint naval drills in the Bay of Bengal.\n")
    before = read_all(out)
    always = ["--nworkers", "2", f"{FAULT_ENV}=embedding-task"]
    fast_fail = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    with dask_cluster(tmp_path / "dask", [always], fast_fail) as address:
        proc = cluster_run(raw, out, address)
        assert proc.wait(timeout=300) == 1
        assert "killed every worker that ran it" in proc.stderr.read()
    after = read_all(out)
    for name in TABLES:
        pd.testing.assert_frame_equal(after[name], before[name])
