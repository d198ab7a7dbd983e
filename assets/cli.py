"""``docthemes`` command line: run the pipeline the way the nightly job does."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``docthemes`` console script."""
    parser = argparse.ArgumentParser(prog="docthemes", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize every asset, run the checks, publish")
    run.add_argument("--log-level", default="INFO", help="Dagster console log level")
    sub.add_parser(
        "rollback",
        help="publish the snapshot before the current one again (DOCTHEMES_PROCESSED_DIR)",
    )
    args = parser.parse_args(argv)
    if args.command == "rollback":
        return rollback()
    code = run_all(args.log_level)
    if argv is None:  # a process of its own (console script, python -m)
        _exit_without_teardown(code)
    return code


def _exit_without_teardown(code: int) -> None:
    # Tearing down torch, scikit-learn and Dagster's modules takes ~0.8 s and does nothing for
    # us: the tables are published and fsynced, the instance closed. A nightly run with a few
    # new articles lasts ~10 s, so the teardown alone would be 8% of it.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def run_all(log_level: str = "INFO") -> int:
    """Execute ``docthemes_job`` in this process, recorded in the DAGSTER_HOME instance."""
    _prestart_model()
    # Imported here, not at the top: the embedding model's helper process starts from this
    # module (multiprocessing imports the main module) and must not pay for Dagster.
    import dagster as dg

    from assets.definitions import defs

    instance = (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
    with instance:
        result = defs.resolve_job_def("docthemes_job").execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
        sys.stdout.write(summarize(result) + "\n")
    from pipeline.embed import ModelProcess

    ModelProcess.close_unadopted()
    return 0 if result.success else 1


def _prestart_model() -> None:
    # Start loading the configured torch model before Dagster is even imported, so the ~4 s
    # import overlaps the whole start-up and ingestion; the embedder resource adopts it when
    # it asks for the same model with its default device and threads (else it starts its own).
    from assets.environment import embedder_env
    from pipeline.embed import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_DEVICE,
        ModelError,
        ModelProcess,
        resolve_model,
    )

    env = embedder_env()
    if env["backend"] != "torch":
        return
    try:
        spec = resolve_model(env["model"] or "", env["expected_sha256"])
    except ModelError:
        return  # the embedding step reports it
    ModelProcess.prestart(spec, DEFAULT_DEVICE, None, DEFAULT_BATCH_SIZE)


def rollback() -> int:
    """Switch the output dir back to its previous snapshot, holding the run lock."""
    from assets.resources import processed_dir_from_env
    from pipeline.snapshots import RunLockedError, TableStore

    store = TableStore(processed_dir_from_env())
    try:
        with store.lock(timeout_s=0):
            store.recover()
            left, now = store.rollback()
    except (RunLockedError, ValueError) as err:
        sys.stderr.write(f"docthemes rollback: {err}\n")
        return 2
    sys.stdout.write(
        f"docthemes rollback: {store.base_dir} now publishes snapshot {now} (was {left}; kept "
        "in place, marked rolled back; the next run publishes a new snapshot)\n"
    )
    return 0


def summarize(result: dg.ExecuteInProcessResult) -> str:
    """A short report: the work done, each table's rows and any failed check."""
    meta: dict[str, dict[str, object]] = {}
    rows = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        name = mat.asset_key.to_user_string()
        meta[name] = {k: v.value for k, v in mat.metadata.items()}
        rows.append(f"  {name:<18} {meta[name].get('dagster/row_count', '?'):>8} rows")
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    for check in failed:
        key = f"{check.asset_key.to_user_string()}.{check.check_name}"
        rows.append(f"  check FAILED {key}: {check.description}")
    docs, emb = meta.get("documents", {}), meta.get("claim_embeddings", {})
    work = (
        f"  read {docs.get('files_read', 0)} new or changed files "
        f"({docs.get('files_reused', 0)} unchanged), split {docs.get('documents_split', 0)} "
        f"documents, embedded {emb.get('cache_misses', 0)} texts "
        f"({emb.get('cache_hits', 0)} from the cache); "
        f"{len(checks) - len(failed)}/{len(checks)} checks passed"
    )
    if result.success and not docs.get("files_read") and not emb.get("cache_misses"):
        work += "\n  nothing new since the last run: the tables are unchanged"
    outcome = "succeeded" if result.success else "FAILED: the published tables are untouched"
    return f"docthemes run {outcome} (run id {result.run_id})\n{work}\n" + "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
