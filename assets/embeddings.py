"""Embedding asset: one L2-normalised vector per claim."""

import dagster as dg
import pyarrow as pa

from assets.resources import EmbedderResource
from pipeline.embed import embeddings_table


@dg.asset(
    group_name="embeddings",
    description="One L2-normalised embedding per claim (claim_id, embedding, model).",
)
def claim_embeddings(
    context: dg.AssetExecutionContext, claims: pa.Table, embedder: EmbedderResource
) -> pa.Table:
    """Embed every claim's text with the configured model."""
    vectors = embedder.embed(claims.column("text").to_pylist())
    context.add_output_metadata({"model": embedder.model_name, "dimension": vectors.shape[1]})
    return embeddings_table(claims.column("claim_id"), vectors, embedder.model_name)
