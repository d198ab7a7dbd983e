"""Nightly operation: a schedule at 02:00 UTC and a sensor that notices new or changed files."""

import os

import dagster as dg

from assets.jobs import docthemes_job
from assets.resources import PipelineSettings
from pipeline.ingest import fingerprint_directory

nightly_schedule = dg.ScheduleDefinition(
    name="nightly",
    job=docthemes_job,
    cron_schedule=os.environ.get("DOCTHEMES_NIGHTLY_CRON") or "0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Process whatever is new in the raw dir every night (DOCTHEMES_NIGHTLY_CRON).",
)


@dg.sensor(
    job=docthemes_job,
    minimum_interval_seconds=int(os.environ.get("DOCTHEMES_SENSOR_INTERVAL_S") or 60),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a run when a file in the raw dir is added, changed or removed.",
)
def raw_dir_sensor(
    context: dg.SensorEvaluationContext, settings: PipelineSettings
) -> dg.SensorResult:
    """Compare a stat-only fingerprint of the raw dir with the cursor (the last fingerprint)."""
    if not os.path.isdir(settings.raw_dir):
        return dg.SensorResult(skip_reason=f"raw dir {settings.raw_dir!r} does not exist")
    fp = fingerprint_directory(settings.raw_dir, settings.excluded_dirs())
    if fp.digest == context.cursor:
        return dg.SensorResult(skip_reason=f"no new or changed files among {fp.n_files}")
    request = dg.RunRequest(
        # Same folder state, same key: Dagster never launches two runs for one change.
        run_key=f"raw-{fp.digest[:16]}",
        tags={"docthemes/trigger": "raw_dir_sensor", "docthemes/raw_files": str(fp.n_files)},
    )
    return dg.SensorResult(run_requests=[request], cursor=fp.digest)
