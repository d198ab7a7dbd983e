"""The cluster profile for real: a PostgreSQL server and a Dask cluster, both on loopback.

`make test` installs Debian's postgresql when it is absent (Makefile: postgresql); the server,
the Dask scheduler and the workers are started here as the commands an operator runs
(`initdb`/`pg_ctl`, `dask scheduler`, `dask worker`) and stopped after.
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from pipeline.faults import FAULT_ENV, FAULT_ONCE_ENV
from tests.conftest import ROOT, SEEDS
from tests.helpers import TABLES, assert_nothing_lost, assert_tables_equal, cli_process, read_all

# One xdist worker runs the whole module, so the local run and the servers are made once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]

DASK = str(Path(sys.executable).with_name("dask"))
LOCAL_YAML = ROOT / "config" / "dagster.yaml"
CLUSTER_YAML = ROOT / "config" / "dagster-cluster.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a loopback port; yields its URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed: `make test` installs Debian's postgresql")
    bin_dir = Path(found[-1]).parent
    # initdb refuses to run as root: the server runs as the package's postgres user.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="docthemes-pg-"))
    if as_user:
        shutil.chown(base, "postgres")
    data, port = base / "data", free_port()

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "docthemes", "--no-sync")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w",
       "start")  # fmt: skip
    try:
        pg(
            str(bin_dir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "docthemes",
            "dagster",
        )
        yield f"postgresql+psycopg2://docthemes@127.0.0.1:{port}/dagster"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def dask_cluster(
    tmp: Path, workers: list[list[str]], env: dict[str, str] | None = None
) -> Iterator[str]:
    """`dask scheduler` and one `dask worker` command per entry of ``workers`` (its options)."""
    tmp.mkdir(parents=True, exist_ok=True)
    sched_file = tmp / "scheduler.json"
    procs_env = {**os.environ, **(env or {})}
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    started = [
        subprocess.Popen(
            [DASK, "scheduler", "--scheduler-file", str(sched_file), "--port", "0", *common],
            env=procs_env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "scheduler.log", "w"),  # noqa: SIM115
            start_new_session=True,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        n_workers = 0
        for i, options in enumerate(workers):
            worker_env = {**procs_env, **dict(o.split("=", 1) for o in options if "=" in o)}
            args = [o for o in options if "=" not in o]
            started.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        *common,
                        *args,
                        "--local-directory",
                        str(tmp / f"worker{i}"),
                    ],  # fmt: skip
                    env=worker_env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp / f"worker{i}.log", "w"),  # noqa: SIM115
                    start_new_session=True,
                )
            )
            n_workers += int(args[args.index("--nworkers") + 1]) if "--nworkers" in args else 1
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
        yield address
    finally:
        for proc in reversed(started):
            with_group = proc.poll() is None
            if with_group:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def scheduler_tasks(address: str) -> set[str]:
    """The task prefixes the scheduler has run (function names)."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        return set(
            client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        )


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    for f in sorted(SEEDS.glob("*.txt")):
        shutil.copy2(f, raw / f.name)
    return raw


@pytest.fixture(scope="module")
def local_run(seeds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds through the local profile (SQLite instance, everything in one process)."""
    tmp = tmp_path_factory.mktemp("local")
    home = tmp / "home"
    home.mkdir()
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    proc = cli_process(seeds, tmp / "out", home)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    return tmp / "out"


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
