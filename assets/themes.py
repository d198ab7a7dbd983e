"""Theme assets: themes, each claim's themes and each document's theme mix."""

from collections.abc import Iterator

import dagster as dg
import pyarrow as pa

from assets.resources import EmbedderResource, PipelineSettings
from pipeline.embed import align_embeddings
from pipeline.schemas import SCHEMAS, TABLE_DESCRIPTIONS, to_table
from pipeline.themes import ThemeModel, ThemeVectors, assign_themes

THEME_TABLES = ("themes", "claim_themes", "document_themes")


@dg.multi_asset(
    outs={
        name: dg.AssetOut(description=TABLE_DESCRIPTIONS[name], group_name="themes")
        for name in THEME_TABLES
    },
)
def theme_tables(
    context: dg.AssetExecutionContext,
    claims: pa.Table,
    claim_embeddings: pa.Table,
    settings: PipelineSettings,
    embedder: EmbedderResource,
) -> Iterator[dg.Output[pa.Table]]:
    """Assign claims to named themes and discover themes among the rest."""
    catalog, config = settings.catalog(), settings.theme_config()
    claim_ids = claims.column("claim_id").to_pylist()
    doc_ids = claims.column("doc_id").to_pylist()
    model = ThemeModel(ThemeVectors.from_catalog(catalog, embedder.embed), config).fit(
        align_embeddings(claim_embeddings, claim_ids),
        claims.column("text").to_pylist(),
        doc_ids,
        claims.column("paragraph").to_pylist(),
        claim_ids,
    )
    rows = assign_themes(model, catalog, claim_ids, doc_ids)
    kinds = [t.kind for t in model.themes_]
    counts = {"named": kinds.count("named"), "discovered": kinds.count("discovered")}
    for name in THEME_TABLES:
        yield dg.Output(
            to_table(rows[name], SCHEMAS[name]),
            output_name=name,
            metadata=counts if name == "themes" else None,
        )
