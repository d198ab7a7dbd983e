"""Nightly operation: a schedule at 02:00 UTC and a sensor that notices new or changed files."""

import os

import dagster as dg

from assets.jobs import docthemes_job
from assets.resources import PipelineSettings
from pipeline.ingest import Fingerprint, fingerprint_directory
from pipeline.locations import is_remote
from pipeline.objectstore.mirror import fingerprint_objects

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
    """Compare a stat-only fingerprint of the raw dir with the cursor (the last fingerprint).

    An s3:// raw dir is fingerprinted from one listing (keys, sizes, ETags), nothing read.
    """
    fp: Fingerprint
    if is_remote(settings.raw_dir):
        try:
            fp = fingerprint_objects(settings.raw_dir)
        except FileNotFoundError as err:
            return dg.SensorResult(skip_reason=f"raw dir {settings.raw_dir!r}: {err}")
    elif not os.path.isdir(settings.raw_dir):
        return dg.SensorResult(skip_reason=f"raw dir {settings.raw_dir!r} does not exist")
    else:
        fp = fingerprint_directory(settings.raw_dir)
    changes, last = _read_cursor(context.cursor)
    if fp.digest == last:
        return dg.SensorResult(skip_reason=f"no new or changed files among {fp.n_files}")
    # The key counts changes, not folder states: a folder that returns to an earlier state (a
    # file added, then removed) is a change too, and Dagster skips a run key it has seen.
    request = dg.RunRequest(
        run_key=f"raw-{changes + 1}-{fp.digest[:16]}",
        tags={"docthemes/trigger": "raw_dir_sensor", "docthemes/raw_files": str(fp.n_files)},
    )
    return dg.SensorResult(run_requests=[request], cursor=f"{changes + 1}:{fp.digest}")


def _read_cursor(cursor: str | None) -> tuple[int, str | None]:
    """(changes seen, last fingerprint) from ``"<changes>:<digest>"`` (or a bare digest)."""
    if not cursor:
        return 0, None
    count, _, digest = cursor.rpartition(":")
    return (int(count) if count.isdigit() else 0), digest
