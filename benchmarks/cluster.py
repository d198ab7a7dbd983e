"""Local vs cluster profile on BBC articles: wall time, step times, memory, same tables.

The cluster profile runs against a real PostgreSQL server (Dagster's instance) and a real Dask
cluster of ``--workers`` worker processes of one thread each, all on loopback (tests/servers.py
starts them as an operator would). Both runs are cold (new output dirs); the ONNX export is made
once beforehand so that neither pays for it. On one machine no speed-up is expected: the point
is what the cluster costs, and the measured per-worker rate behind the estimate in
docs/deploy.md.

    .venv/bin/python -m benchmarks.cluster --docs 500 --workers 2
"""

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks import common
from benchmarks.common import ROOT, bbc_files, cli_run, copy_articles, step_times, tree_rss_mb


def dask_pids(dask_dir: Path) -> dict[str, int]:
    """Pids of the `dask scheduler` and `dask worker` commands started in ``dask_dir``."""
    pids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = b" ".join(cmd).decode(errors="replace")
        if str(dask_dir) in line and " scheduler " in f" {line} ":
            pids["scheduler"] = int(entry)
        elif str(dask_dir) in line and " worker " in f" {line} ":
            pids["workers"] = int(entry)  # the nanny; its children are the worker processes
    return pids


def export_once(onnx_dir: Path) -> None:
    """Make (and verify) the ONNX export both runs will use."""
    from pipeline.embed import resolve_backend, resolve_model

    print(f"backend: {resolve_backend(resolve_model(), 'auto', onnx_dir)}")


def main() -> None:
    """Run both profiles on the same articles and print the comparison."""
    from tests.helpers import TABLES, assert_tables_equal, read_all
    from tests.servers import dask_cluster, postgres_server

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        raw = tmp / "raw"
        copy_articles(bbc_files(args.docs), raw)
        os.environ["DOCTHEMES_ONNX_DIR"] = str(tmp / "onnx")
        export_once(tmp / "onnx")
        home = tmp / "home-local"
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "config" / "dagster.yaml").read_text())
        t_local, _ = cli_run(raw, tmp / "out-local", home)
        rss_local = common.LAST_PEAK_RSS_MB[0]
        steps_local, _ = step_times(home)
        with (
            postgres_server() as url,
            dask_cluster(tmp / "dask", [["--nworkers", str(args.workers)]]) as address,
        ):
            home = tmp / "home-cluster"
            home.mkdir()
            (home / "dagster.yaml").write_text(
                (ROOT / "config" / "dagster-cluster.yaml").read_text()
            )
            os.environ.update(
                DOCTHEMES_PROFILE="cluster",
                DOCTHEMES_DASK_SCHEDULER=address,
                DOCTHEMES_POSTGRES_URL=url,
            )
            pids = dask_pids(tmp / "dask")
            peaks = dict.fromkeys(pids, 0.0)

            def sample(_: int) -> None:
                for name, pid in pids.items():
                    peaks[name] = max(peaks[name], tree_rss_mb(pid))

            t_cluster, _ = cli_run(raw, tmp / "out-cluster", home, sample, interval=0.5)
            rss_driver = common.LAST_PEAK_RSS_MB[0]
            steps_cluster, _ = step_times(home)
        local, cluster = read_all(tmp / "out-local"), read_all(tmp / "out-cluster")
        for name in TABLES:
            if name != "runs":
                assert_tables_equal(cluster[name], local[name], name)
        n_claims = len(pd.read_parquet(tmp / "out-local" / "claims.parquet", columns=["text"]))
    print(
        f"{args.docs} BBC articles, {n_claims} claims; cluster: {args.workers} workers x 1 thread"
    )
    print("tables: identical (ids and texts exact, floats within 1e-5)")
    print(f"{'':24}{'local':>10}{'cluster':>10}")
    print(f"{'wall time (s)':24}{t_local:10.1f}{t_cluster:10.1f}")
    for step in sorted(set(steps_local) | set(steps_cluster)):
        a, b = steps_local.get(step, 0.0), steps_cluster.get(step, 0.0)
        print(f"  step {step:<19}{a:10.1f}{b:10.1f}")
    print(f"{'peak RSS run (MB)':24}{rss_local:10.0f}{rss_driver:10.0f}")
    print(
        f"{'peak RSS workers (MB)':24}{'':10}{peaks['workers']:10.0f}  (nanny + worker processes)"
    )
    print(f"{'peak RSS scheduler (MB)':24}{'':10}{peaks['scheduler']:10.0f}")
    total = rss_driver + peaks["workers"] + peaks["scheduler"]
    print(f"{'peak RSS, all (MB)':24}{rss_local:10.0f}{total:10.0f}  (sum of the peaks)")
    embed = steps_cluster.get("claim_embeddings", 0.0)
    if embed:
        rate = n_claims / embed / args.workers
        print(
            f"embedding step on the cluster: {n_claims / embed:.1f} claims/s, {rate:.1f} per worker"
        )


if __name__ == "__main__":
    main()
