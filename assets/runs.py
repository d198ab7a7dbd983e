"""The `runs` asset: publishes the run's staged tables and records what produced them."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from assets.compute import ComputeResource
from assets.io_manager import table_metadata
from assets.resources import EmbedderResource, PipelineSettings, RunLockResource
from pipeline.corpus import LISTED_AT
from pipeline.ids import sha256_hex
from pipeline.manifest import input_digest, manifest_row
from pipeline.schemas import RUNS, SCHEMAS, to_table
from pipeline.storage import write_table

DATA_TABLES = [*SCHEMAS, "claim_embeddings"]


@dg.asset(
    deps=DATA_TABLES,
    group_name="publication",
    description="One row per successful run; materializing it publishes the run's tables.",
)
def runs(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    embedder: EmbedderResource,
    compute: ComputeResource,
    run_lock: RunLockResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Publish every staged table (all blocking checks passed), then append the manifest row."""
    store, run_id = settings.store, context.run.run_id
    # Key columns only: the texts are most of the table and the manifest needs none of them.
    documents = store.read("documents", run_id, columns=["source_path", "content_sha256"])
    listed_at = (pq.read_schema(store.current("documents", run_id)).metadata or {}).get(LISTED_AT)
    counts = {n: pq.ParquetFile(store.current(n, run_id)).metadata.num_rows for n in DATA_TABLES}
    config = {
        "settings": settings.model_dump(),
        "catalog_sha256": sha256_hex(settings.catalog().model_dump_json()),
        "theme_labels_sha256": settings.theme_labels_sha256(),
        "embedder": {
            "model": embedder.model_name,
            "backend": embedder.running_backend,
            "batch_size": embedder.batch_size,
        },
        # How, not what: both profiles give the same tables (tests/e2e/test_cluster.py).
        "compute": {"profile": compute.profile},
    }
    staged = store.staged_names(run_id)
    rejected = store.read("rejected_files", run_id, columns=["source_path", "reason"])
    duplicates = store.read("duplicates", run_id, columns=["source_path", "doc_id"])
    row = manifest_row(
        run_id=run_id,
        started_at=dt.datetime.fromisoformat(listed_at.decode())
        if listed_at
        else dt.datetime.now(dt.UTC),
        config=config,
        model=embedder.model_name,
        weights_sha256=embedder.weights_sha256,
        input_files=documents.num_rows + rejected.num_rows + duplicates.num_rows,
        inputs_sha256=input_digest(documents, rejected, duplicates),
        counts=counts,
        published=staged,
    )
    history = store.previous("runs")
    table = to_table([row], RUNS)
    if history is not None:
        table = pa.concat_tables([history.cast(RUNS), table])
    # Staged with the data tables: the manifest row is published in the same set as them, so
    # tables never appear without the row that says what made them.
    write_table(table, store.staged("runs", run_id))
    published = [n for n in store.publish(run_id, settings.keep_snapshots) if n != "runs"]
    path = store.published("runs")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(table, path),
            "published_tables": ", ".join(published),
            "published_to": store.location,
            "snapshot": snapshot.name if (snapshot := store.current_snapshot()) else "",
            "inputs_sha256": row["inputs_sha256"],
            **{f"rows_{k}": v for k, v in counts.items()},
        }
    )
