"""The docthemes code location: assets, checks, resources, jobs, schedule and sensor."""

import dagster as dg

from assets.automation import nightly_schedule, raw_dir_sensor
from assets.compute import compute_from_env
from assets.corpus import corpus
from assets.embeddings import claim_embeddings
from assets.io_manager import ParquetIOManager
from assets.jobs import docthemes_job
from assets.matching import claim_matching
from assets.report import theme_report
from assets.resources import (
    embedder_from_env,
    processed_dir_from_env,
    run_lock_from_env,
    settings_from_env,
)
from assets.runs import runs
from assets.themes import theme_tables

ALL_ASSETS = [corpus, claim_embeddings, theme_tables, claim_matching, runs, theme_report]


def build_resources(processed_dir: str | None = None) -> dict[str, object]:
    """Resources from DOCTHEMES_* environment variables (see docs/configuration.md)."""
    out = processed_dir or processed_dir_from_env()
    settings = settings_from_env().model_copy(update={"processed_dir": out})
    return {
        "io_manager": ParquetIOManager(base_dir=out),
        "settings": settings,
        "embedder": embedder_from_env(out),
        "run_lock": run_lock_from_env(out),
        "compute": compute_from_env(),
    }


defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[docthemes_job],
    schedules=[nightly_schedule],
    sensors=[raw_dir_sensor],
    resources=build_resources(),
    # One process for the whole run: the multiprocess default re-imports torch and reloads the
    # model in every step's subprocess, and the run lock is held by this one process.
    executor=dg.in_process_executor,
)
