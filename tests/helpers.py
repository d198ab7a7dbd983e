"""Shared helpers for tests that run real materializations."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from assets.compute import ComputeResource
from assets.definitions import ALL_ASSETS
from assets.io_manager import ParquetIOManager
from assets.resources import PipelineSettings, RunLockResource
from pipeline.schemas import SCHEMAS

TABLES = [*SCHEMAS, "claim_embeddings"]


def resources(raw: Path, out: Path, embedder, **settings) -> dict[str, object]:
    return {
        "io_manager": ParquetIOManager(base_dir=str(out)),
        "settings": PipelineSettings(raw_dir=str(raw), processed_dir=str(out), **settings),
        "embedder": embedder,
        "run_lock": RunLockResource(processed_dir=str(out), timeout_s=0),
        "compute": ComputeResource(),
    }


def materialize_all(
    raw: Path, out: Path, embedder, instance=None, **settings
) -> dg.ExecuteInProcessResult:
    """Materialize every asset and check in-process from ``raw`` into ``out``."""
    defs = dg.Definitions(
        assets=ALL_ASSETS,
        resources=resources(raw, out, embedder, **settings),
        executor=dg.in_process_executor,
    )
    job = defs.resolve_implicit_global_asset_job_def()
    if instance is not None:
        return job.execute_in_process(instance=instance, raise_on_error=False)
    with dg.instance_for_test() as temp:
        return job.execute_in_process(instance=temp, raise_on_error=False)


def read_all(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in TABLES}


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        if mat.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in mat.metadata.items()}
    raise KeyError(asset)


def assert_tables_equal(a: pd.DataFrame, b: pd.DataFrame, name: str, atol: float = 1e-5) -> None:
    """Equal rows; floats (and float vectors) within ``atol``, everything else exactly.

    Embeddings taken from the cache were computed in other batches than a clean run's, which
    moves float32 results in the last bits; ids, texts, labels and assignments must not move.
    """
    assert list(a.columns) == list(b.columns) and len(a) == len(b), name
    for col in a.columns:
        x, y = a[col], b[col]
        if x.dtype.kind == "f":
            np.testing.assert_allclose(
                x.to_numpy(), y.to_numpy(), atol=atol, err_msg=f"{name}.{col}"
            )
        elif len(x) and isinstance(x.iloc[0], np.ndarray) and x.iloc[0].dtype.kind == "f":
            np.testing.assert_allclose(np.stack(x), np.stack(y), atol=atol, err_msg=f"{name}.{col}")
        else:
            assert x.astype(str).equals(y.astype(str)), f"{name}.{col}"


def cli_process(
    raw: Path,
    out: Path,
    home: Path,
    extra_env: dict[str, str] | None = None,
    *,
    log_level: str = "WARNING",
    stderr: int = subprocess.PIPE,
) -> subprocess.Popen:
    """Start `docthemes run` (as `make run` does) in a fresh process with DOCTHEMES_* set.

    ``stderr`` may be a terminal's file descriptor (a pty), to see what a person at one sees.
    """
    from tests.conftest import ROOT

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DOCTHEMES_RAW_DIR": str(raw),
        "DOCTHEMES_PROCESSED_DIR": str(out),
        "DAGSTER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        # The test process's ONNX export (tests/conftest.py), made once rather than per run.
        "DOCTHEMES_ONNX_DIR": os.environ["DOCTHEMES_ONNX_DIR"],
        **(extra_env or {}),
    }
    home.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "assets.cli", "run", "--log-level", log_level],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def assert_nothing_lost(raw: Path, out: Path) -> None:
    """Every raw file is in exactly one of documents, rejected_files, duplicates."""
    from pipeline.ingest import utf8_safe

    tables = read_all(out)
    seen = [
        *tables["documents"].source_path,
        *tables["rejected_files"].source_path,
        *tables["duplicates"].source_path,
    ]
    files = sorted(utf8_safe(str(p.relative_to(raw))) for p in raw.rglob("*") if p.is_file())
    assert sorted(seen) == files
