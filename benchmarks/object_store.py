"""Local dirs vs S3 (moto's server on loopback) for raw and output: what the object store costs.

Both are `docthemes run` in fresh processes, back to back on the same articles: a cold run,
then a night with nothing new. The S3 runs mirror the raw prefix into a local copy, and upload
and publish the snapshot; the tables must be those of the local runs (``ingested_from`` and
the files' ``mtime`` aside: the object's URL and LastModified). moto is a Python server in this process,
on the same cores as the run, so its figures bound a real store's cost from above for the
CPU and say nothing of a real network's latency.

    .venv/bin/python -m benchmarks.object_store --docs 500
"""

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.cluster import export_once
from benchmarks.common import ROOT, bbc_files, cli_run, copy_articles, step_times


def main() -> None:
    """Run both locations on the same articles and print the comparison."""
    from pipeline.locations import filesystem
    from pipeline.objectstore.tables import open_store
    from tests.helpers import TABLES, assert_tables_equal
    from tests.servers import s3_server

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=500)
    args = parser.parse_args()
    raw_url, out_url = "s3://bbc/raw", "s3://bbc/processed"
    with tempfile.TemporaryDirectory() as tmp_dir, s3_server() as env:
        tmp = Path(tmp_dir)
        os.environ.update(env, DOCTHEMES_WORK_DIR=str(tmp / "work"))
        raw = tmp / "raw"
        copy_articles(bbc_files(args.docs), raw)
        fs, _ = filesystem(raw_url)
        fs.mkdir("bbc")
        files = sorted(p for p in raw.rglob("*") if p.is_file())
        fs.put([str(p) for p in files], [f"bbc/raw/{p.relative_to(raw)}" for p in files])
        os.environ["DOCTHEMES_ONNX_DIR"] = str(tmp / "onnx")
        export_once(tmp / "onnx")

        times: dict[str, dict[str, float]] = {}
        steps: dict[str, dict[str, float]] = {}
        for name, raw_dir, out_dir in (
            ("local", str(raw), str(tmp / "out-local")),
            ("s3", raw_url, out_url),
        ):
            for night in ("cold", "nothing new"):
                home = tmp / f"home-{name}-{night.replace(' ', '-')}"
                home.mkdir()
                (home / "dagster.yaml").write_text((ROOT / "config" / "dagster.yaml").read_text())
                seconds, _ = cli_run(raw_dir, out_dir, home)
                times.setdefault(name, {})[night] = seconds
                steps.setdefault(name, {}).update(
                    {f"{night}: {k}": v for k, v in step_times(home)[0].items()}
                )

        reader = open_store(out_url)
        with reader.lock(local_only=True):
            reader.sync()
        uploaded = sum(info["size"] for info in fs.find("bbc/processed", detail=True).values())
        for table in TABLES:
            if table == "runs":
                continue
            a = pd.read_parquet(tmp / "out-local" / f"{table}.parquet")
            b = pd.read_parquet(reader.published(table))
            # Where and when each file was written: the object's URL and LastModified.
            differ = [c for c in ("ingested_from", "mtime") if c in a.columns]
            a, b = a.drop(columns=differ), b.drop(columns=differ)
            assert_tables_equal(b, a, table)
    print(f"{args.docs} BBC articles; raw and output on local dirs vs on S3 (moto, loopback)")
    print("tables: identical (ids and texts exact, floats within 1e-5)")
    print(f"{'':34}{'local':>10}{'s3':>10}")
    for night in ("cold", "nothing new"):
        print(f"{'wall time, ' + night + ' (s)':34}{times['local'][night]:10.1f}"
              f"{times['s3'][night]:10.1f}")  # fmt: skip
    for step in sorted(set(steps["local"]) | set(steps["s3"])):
        a, b = steps["local"].get(step, 0.0), steps["s3"].get(step, 0.0)
        print(f"  {step:<32}{a:10.1f}{b:10.1f}")
    print(f"objects in the store after two nights: {uploaded / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
