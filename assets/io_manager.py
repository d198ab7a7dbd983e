"""One Parquet IO manager for every asset: explicit schemas, staged atomic writes, no pickle."""

import os
import uuid
from pathlib import Path

import dagster as dg
import pyarrow as pa
from pydantic import Field

from pipeline.locations import Location
from pipeline.objectstore.tables import open_store
from pipeline.snapshots import TableStore
from pipeline.storage import MissingTableError, TableFile, write_table

# The asset whose materialization publishes a run's staged tables (see assets/runs.py).
PUBLISHER = dg.AssetKey("runs")
_PREVIEW_ROWS = 5
_PREVIEW_CHARS = 80


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores each asset as ``<base_dir>/<asset name>.parquet``.

    In a run that includes the `runs` asset (every full or scheduled run), tables are written to
    ``<base_dir>/.staging/<run_id>/`` and published together by `runs` once every blocking check
    has passed; a run that fails publishes nothing. A run of a hand-picked subset without `runs`
    publishes each table as it is written, each as a snapshot of its own (pipeline.snapshots).

    Outputs must be ``pyarrow.Table`` objects already cast to their contract schema, or a
    :class:`~pipeline.storage.TableFile` a step streamed to disk (moved into place by a
    rename); anything else is refused rather than pickled. An input annotated ``TableFile`` is
    handed over as a file to stream, not read. A missing upstream table raises instead of
    returning empty.
    """

    base_dir: Location = Field(description="Output dir or s3:// URL (DOCTHEMES_PROCESSED_DIR).")

    @property
    def store(self) -> TableStore:
        """The published and staged tables of ``base_dir`` (an s3:// one's local copy)."""
        return open_store(self.base_dir)

    def handle_output(self, context: dg.OutputContext, obj: pa.Table | TableFile) -> None:
        """Write the table (staged or published, see the class docs) and attach metadata."""
        if not isinstance(obj, pa.Table | TableFile):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "assets must return a pyarrow.Table or a TableFile (no pickling)"
            )
        name = context.asset_key.path[-1]
        run_id = _staging_run_id(context)
        # Outside a full run the table is published alone: its own stage, one snapshot.
        stage = run_id or f"single-{uuid.uuid4().hex}"
        path = self.store.staged(name, stage)
        if isinstance(obj, TableFile):
            self.store.place(obj.path, path)
            meta = file_metadata(TableFile(path))
        else:
            write_table(obj, path)
            meta = table_metadata(obj, path)
        if run_id is None:
            self.store.publish(stage)
            meta["path"] = dg.MetadataValue.path(os.fspath(self.store.published(name)))
        context.add_output_metadata({**meta, "published": dg.MetadataValue.bool(run_id is None)})

    def load_input(self, context: dg.InputContext) -> pa.Table | TableFile:
        """Read the table this run staged, else the published one; raises if neither exists.

        An input annotated :class:`~pipeline.storage.TableFile` gets the file itself.
        """
        run_id = context.step_context.run_id if _in_run(context) else None
        name = context.asset_key.path[-1]
        if _wants_file(context):
            path = self.store.current(name, run_id)
            if not path.exists():
                raise MissingTableError(
                    f"table {name!r} not found at {path}: materialize its asset first"
                )
            return TableFile(path)
        return self.store.read(name, run_id)


def _wants_file(context: dg.InputContext) -> bool:
    try:
        return context.dagster_type.typing_type is TableFile
    except Exception:  # no type known (a hand-built context): the default, a whole table
        return False


def _in_run(context: dg.InputContext | dg.OutputContext) -> bool:
    try:
        context.step_context  # noqa: B018 - raises outside a run (build_*_context in tests)
    except Exception:
        return False
    return True


def _staging_run_id(context: dg.OutputContext) -> str | None:
    if not _in_run(context):
        return None
    run = context.step_context.dagster_run
    selection = run.asset_selection
    # None or empty: the whole job, which includes `runs`.
    return run.run_id if not selection or PUBLISHER in selection else None


def table_metadata(table: pa.Table, path: Path | None = None) -> dict[str, dg.MetadataValue]:
    """Row count, column schema and a small Markdown preview of a table."""
    meta: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(table.num_rows),
        "dagster/column_schema": dg.MetadataValue.table_schema(
            dg.TableSchema(
                columns=[
                    dg.TableColumn(
                        name=f.name,
                        type=str(f.type),
                        description=(f.metadata or {}).get(b"description", b"").decode() or None,
                    )
                    for f in table.schema
                ]
            )
        ),
        "preview": dg.MetadataValue.md(_preview(table)),
    }
    if path is not None:
        meta["path"] = dg.MetadataValue.path(os.fspath(path))
        meta["size_bytes"] = dg.MetadataValue.int(path.stat().st_size)
    return meta


def file_metadata(file: TableFile) -> dict[str, dg.MetadataValue]:
    """:func:`table_metadata` of a table on disk, reading its footer and first rows only."""
    head = next(file.batches(batch_size=_PREVIEW_ROWS), None)
    sample = pa.Table.from_batches([head]) if head is not None else file.schema.empty_table()
    meta = table_metadata(sample, file.path)
    meta["dagster/row_count"] = dg.MetadataValue.int(file.num_rows)
    return meta


def _preview(table: pa.Table) -> str:
    head = table.slice(0, _PREVIEW_ROWS).to_pylist()
    cols = [f.name for f in table.schema]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head:
        lines.append("| " + " | ".join(_cell(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, list) and value and isinstance(value[0], float):
        text = f"[{len(value)} floats]"
    else:
        text = str(value)
    text = text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"
