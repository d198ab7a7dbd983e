"""``docthemes`` command line: run the pipeline the way the nightly job does."""

import argparse
import logging
import os
import sys

import dagster as dg

log = logging.getLogger("docthemes")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``docthemes`` console script."""
    parser = argparse.ArgumentParser(prog="docthemes", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize every asset and run the asset checks")
    run.add_argument("--log-level", default="INFO", help="Dagster console log level")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_all(args.log_level)
    return 2  # unreachable: argparse enforces the sub-command


def run_all(log_level: str = "INFO") -> int:
    """Execute ``docthemes_job`` in this process, recorded in the DAGSTER_HOME instance."""
    from assets.definitions import defs

    instance = (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
    job = defs.resolve_job_def("docthemes_job")
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    lines = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        assert mat is not None
        rows = mat.metadata.get("dagster/row_count")
        count = rows.value if rows is not None else "?"
        lines.append(f"  {mat.asset_key.to_user_string():<18} {count:>8} rows")
    for check in result.get_asset_check_evaluations():
        status = "passed" if check.passed else f"FAILED ({check.severity.value})"
        lines.append(f"  check {check.asset_key.to_user_string()}.{check.check_name}: {status}")
    outcome = "succeeded" if result.success else "FAILED"
    sys.stdout.write(
        f"docthemes run {outcome} (run id {result.run_id})\n" + "\n".join(lines) + "\n"
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
