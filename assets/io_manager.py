"""One Parquet IO manager for every asset: explicit schemas, atomic writes, no pickle."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pyarrow as pa
from pydantic import Field

from pipeline.storage import read_table, table_path, write_table

_PREVIEW_ROWS = 5
_PREVIEW_CHARS = 80


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores each asset as ``<base_dir>/<asset name>.parquet``.

    Outputs must be ``pyarrow.Table`` objects already cast to their contract schema; anything else
    is refused rather than pickled. A missing upstream table raises instead of returning empty.
    """

    base_dir: str = Field(description="Output dir (DOCTHEMES_PROCESSED_DIR).")

    def path_for(self, key: dg.AssetKey) -> Path:
        """File path of an asset's table."""
        return table_path(self.base_dir, key.path[-1])

    def handle_output(self, context: dg.OutputContext, obj: pa.Table) -> None:
        """Publish the table atomically and attach row count, schema and preview."""
        if not isinstance(obj, pa.Table):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "assets must return a pyarrow.Table (no pickling)"
            )
        path = write_table(obj, self.path_for(context.asset_key))
        context.add_output_metadata(table_metadata(obj, path))

    def load_input(self, context: dg.InputContext) -> pa.Table:
        """Read the upstream table; raises if it was never materialized."""
        assert context.upstream_output is not None
        return read_table(self.path_for(context.asset_key))


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
