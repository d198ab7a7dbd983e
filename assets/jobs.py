"""The one job: every asset and every check, as `make run`, the schedule and the sensor run it."""

import dagster as dg

docthemes_job = dg.define_asset_job(
    "docthemes_job",
    selection=dg.AssetSelection.all(),
    description="Materialize every table, run the blocking checks, publish, record the run.",
)
