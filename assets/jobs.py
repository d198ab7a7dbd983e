"""The one job: every asset and every check, as `make run`, the schedule and the sensor run it."""

import os

import dagster as dg

# Run monitoring (config/dagster.yaml) fails a run past this: a hung run must not hold the run
# lock and the only run slot until someone notices.
MAX_RUNTIME_S = int(os.environ.get("DOCTHEMES_MAX_RUNTIME_S") or 6 * 3600)

docthemes_job = dg.define_asset_job(
    "docthemes_job",
    selection=dg.AssetSelection.all(),
    description="Materialize every table, run the blocking checks, publish, record the run.",
    tags={"dagster/max_runtime": str(MAX_RUNTIME_S)},
)
