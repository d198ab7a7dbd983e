"""The docthemes code location: assets, resources and the executor."""

from __future__ import annotations

import os

import dagster as dg

from assets.corpus import corpus
from assets.embeddings import claim_embeddings
from assets.io_manager import ParquetIOManager
from assets.resources import embedder_from_env, settings_from_env
from assets.themes import theme_tables

ALL_ASSETS = [corpus, claim_embeddings, theme_tables]

all_assets_job = dg.define_asset_job(
    "docthemes_job", selection=dg.AssetSelection.all(), description="Materialize every table."
)


def build_definitions(processed_dir: str | None = None) -> dg.Definitions:
    """Definitions reading DOCTHEMES_* environment variables (see docs/configuration.md)."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[all_assets_job],
        resources={
            "io_manager": ParquetIOManager(
                base_dir=processed_dir
                or os.environ.get("DOCTHEMES_PROCESSED_DIR")
                or "data/processed"
            ),
            "settings": settings_from_env(),
            "embedder": embedder_from_env(),
        },
        # One process for the whole run: the multiprocess default re-imports torch and reloads
        # the model in every step's subprocess, which costs more than the steps themselves.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
