"""Shared helpers for tests that run real materializations."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.definitions import ALL_ASSETS
from assets.io_manager import ParquetIOManager
from assets.resources import PipelineSettings
from pipeline.schemas import SCHEMAS

TABLES = [*SCHEMAS, "claim_embeddings"]


def materialize_all(raw: Path, out: Path, embedder, **settings) -> dg.ExecuteInProcessResult:
    """Materialize every asset in-process from ``raw`` into ``out``."""
    with dg.instance_for_test() as instance:
        return dg.materialize(
            ALL_ASSETS,
            instance=instance,
            resources={
                "io_manager": ParquetIOManager(base_dir=str(out)),
                "settings": PipelineSettings(raw_dir=str(raw), **settings),
                "embedder": embedder,
            },
        )


def read_all(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in TABLES}
