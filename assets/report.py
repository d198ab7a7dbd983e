"""The `theme_report` asset: the self-contained HTML report, written after each publication."""

import base64
import os

import dagster as dg

from assets.corpus import corpus
from assets.embeddings import claim_embeddings
from assets.resources import PipelineSettings, RunLockResource
from assets.themes import theme_tables
from pipeline.report import REPORT_FILE


def blocking_checks() -> list[str]:
    """Names of the blocking checks a run passes before it publishes (the report lists them)."""
    return sorted(s.name for a in (corpus, claim_embeddings, theme_tables) for s in a.check_specs)


@dg.asset(
    deps=["runs"],
    group_name="publication",
    description=(
        f"{REPORT_FILE} in the output dir (and under its s3:// URL): theme sizes, keywords, "
        "representative claims linked to their documents, a document x theme heatmap, a claim "
        "map and theme trends."
    ),
)
def theme_report(
    context: dg.AssetExecutionContext, settings: PipelineSettings, run_lock: RunLockResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Build the report from the published tables; its plots also go to the asset's metadata."""
    from pipeline.report import write_report

    store = settings.store
    path, pngs = write_report(store.base_dir, blocking_checks())
    metadata: dict[str, dg.MetadataValue] = {
        "path": dg.MetadataValue.path(os.fspath(path)),
        "size_bytes": dg.MetadataValue.int(path.stat().st_size),
    }
    if store.remote is not None:  # one PUT: a reader gets the old report or the new one
        metadata["url"] = dg.MetadataValue.url(store.remote.upload(path, REPORT_FILE))
    for name, png in pngs.items():
        data = base64.b64encode(png).decode("ascii")
        metadata[f"plot_{name}"] = dg.MetadataValue.md(f"![{name}](data:image/png;base64,{data})")
    context.log.info(f"report: {path} ({len(pngs)} plots)")
    return dg.MaterializeResult(metadata=metadata)
