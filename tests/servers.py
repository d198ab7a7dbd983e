"""Real servers for the cluster tests and benchmark: PostgreSQL and a Dask cluster, on loopback.

Started as an operator starts them (`initdb`/`pg_ctl`, `dask scheduler`, `dask worker`), in
throwaway folders, and stopped after.
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
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on a loopback port; yields its SQLAlchemy URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make test` installs Debian's postgresql")
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


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server on a loopback port; yields the environment that points s3fs at it.

    The variables are the standard ones a deployment sets (AWS_ENDPOINT_URL, credentials), so
    the code under test and the `docthemes run` processes it starts find the store as in
    production.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its buckets per process, not per server: each server starts empty.
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", b""))
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "docthemes-test",
            "AWS_SECRET_ACCESS_KEY": "docthemes-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        server.stop()
