"""Theme assets: themes, each claim's themes, each document's theme mix, and trends per day."""

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assets.checks import THEME_CHECKS, check_specs, schema_results, theme_results
from assets.embeddings import CACHE_DIR
from assets.resources import EmbedderResource, PipelineSettings, RunLockResource
from pipeline.embed import EmbeddingCache, embed_with_cache
from pipeline.progress import Progress
from pipeline.schemas import SCHEMAS, TABLE_DESCRIPTIONS, to_table
from pipeline.storage import ParquetSink, TableFile
from pipeline.themes import (
    INPUTS_KEY,
    PreviousThemes,
    ThemeModel,
    ThemeVectors,
    claim_theme_table,
    document_theme_table,
    file_claims,
    theme_inputs_key,
    theme_rows,
    trend_table,
)
from pipeline.themes.feedback import load_feedback

THEME_TABLES = ("themes", "claim_themes", "document_themes", "theme_trends")


@dg.multi_asset(
    outs={
        name: dg.AssetOut(description=TABLE_DESCRIPTIONS[name], group_name="themes")
        for name in THEME_TABLES
    },
    check_specs=check_specs(THEME_TABLES, THEME_CHECKS),
)
def theme_tables(
    context: dg.AssetExecutionContext,
    documents: TableFile,
    claims: TableFile,
    claim_embeddings: TableFile,
    settings: PipelineSettings,
    embedder: EmbedderResource,
    run_lock: RunLockResource,
) -> Iterator[dg.Output[pa.Table | TableFile] | dg.AssetCheckResult]:
    """Assign claims to named themes, discover the rest, keep last night's theme ids.

    Streams: claims and embeddings are read in chunks of whole documents (pipeline.themes
    .file_claims) and `claim_themes` is written a batch at a time.

    A night whose claims, document dates and settings are all unchanged republishes last
    night's theme tables as they are: same input, same answer (a refit would drift by a few
    boundary claims each night, one Lloyd step at a time).
    """
    catalog, config = settings.catalog(), settings.theme_config()
    feedback = (
        load_feedback(settings.theme_labels, catalog.themes, *_claim_lookups(claims))
        if settings.theme_labels
        else None
    )
    # Dates only: the documents' texts are most of that table and no theme needs them.
    dated = documents.read(["doc_id", "published_date", "mtime"])
    doc_dates = {d["doc_id"]: d["published_date"] or d["mtime"].date() for d in dated.to_pylist()}
    claim_ids = (b.column(0).to_pylist() for b in claims.batches(["claim_id"]))
    key = theme_inputs_key(
        claim_ids,
        doc_dates,
        catalog,
        config,
        embedder.cache_key,
        feedback.sha256 if feedback else "",
    )
    tables = None if settings.full_refresh else _unchanged_tables(settings, key)
    counts: dict[str, Any] = {"refitted": tables is None}
    if feedback is not None:
        counts |= {"theme_labels_rows": feedback.rows, "theme_labels_sha256": feedback.sha256}
    if tables is None:
        cache = EmbeddingCache(settings.store.base_dir / CACHE_DIR, embedder.cache_key)

        def embed(texts: list[str]) -> np.ndarray:
            return embed_with_cache(texts, embedder.embed, cache).vectors

        examples = feedback.examples if feedback else ()
        vectors = ThemeVectors.from_catalog(catalog, embed, examples)
        previous = None if settings.full_refresh else _previous_themes(settings)
        labels = feedback.claim_labels if feedback else None
        fitting, n_claims = Progress("themes", "claims fitted", context.log.info), claims.num_rows
        fitting(0, n_claims)  # a fit reports no counts of its own: start and end
        model = ThemeModel(vectors, config, labels, keyword_embed=embed).fit(
            file_claims(claims, claim_embeddings), previous
        )
        fitting.finish(n_claims)
        kinds = [t.kind for t in model.themes_]
        counts |= {k: kinds.count(k) for k in ("named", "discovered", "broad")}
        counts["retired"] = len(model.retired_)
        counts["kept_previous_ids"] = len(
            {t.theme_id for t in model.themes_} & set(previous.rows if previous else ())
        )
        counts["discovery_sampled"] = model.sampled_
        themes = to_table(theme_rows(model, catalog, doc_dates), SCHEMAS["themes"])
        tables = {
            "themes": themes.replace_schema_metadata(
                {**(themes.schema.metadata or {}), INPUTS_KEY: key.encode()}
            ),
            "claim_themes": _write_claim_themes(settings, model, claims),
            "document_themes": document_theme_table(model),
            "theme_trends": trend_table(model, doc_dates),
        }
    # Checked before the IO manager moves the files: a failed check still fails the step.
    checks = [*schema_results(tables), *theme_results(tables, claims, dated, catalog)]
    for name, table in tables.items():
        yield dg.Output(table, output_name=name, metadata=counts if name == "themes" else None)
    yield from checks


def _claim_lookups(
    claims: TableFile,
) -> tuple[Callable[[set[str]], dict[str, str]], Callable[[set[str]], dict[str, list[str]]]]:
    """Look-ups of claims by id and by exact text, a batch at a time (for the labels file)."""

    def scan(column: str, wanted: set[str]) -> Iterator[tuple[str, str]]:
        if not wanted:
            return
        values = pa.array(sorted(wanted), pa.string())
        for batch in claims.batches(["claim_id", "text"]):
            hit = batch.filter(pc.is_in(batch.column(column), value_set=values))
            yield from zip(
                hit.column("claim_id").to_pylist(), hit.column("text").to_pylist(), strict=True
            )

    def texts(ids: set[str]) -> dict[str, str]:
        return dict(scan("claim_id", ids))

    def ids_of(wanted: set[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for claim_id, text in scan("text", wanted):
            out.setdefault(text, []).append(claim_id)
        return out

    return texts, ids_of


def _write_claim_themes(
    settings: PipelineSettings, model: ThemeModel, claims: TableFile
) -> TableFile:
    out = TableFile(settings.store.scratch("claim_themes"))
    with ParquetSink(out.path, SCHEMAS["claim_themes"]) as sink:
        start = 0
        for batch in claims.batches(["claim_id"]):
            sink.write(claim_theme_table(model, batch.column(0).to_pylist(), start))
            start += batch.num_rows
    return out


def _unchanged_tables(
    settings: PipelineSettings, key: str
) -> dict[str, pa.Table | TableFile] | None:
    """Last night's theme tables, copied for republishing, if made from exactly these inputs."""
    published = {name: settings.store.published(name) for name in THEME_TABLES}
    if not all(path.exists() for path in published.values()):
        return None
    if (TableFile(published["themes"]).schema.metadata or {}).get(INPUTS_KEY) != key.encode():
        return None
    if not all(
        TableFile(path).schema.equals(SCHEMAS[name], check_metadata=False)
        for name, path in published.items()
    ):
        return None
    tables: dict[str, pa.Table | TableFile] = {}
    for name, path in published.items():
        copy = TableFile(settings.store.scratch(name))
        shutil.copyfile(path, copy.path)
        tables[name] = copy
    return tables


def _previous_themes(settings: PipelineSettings) -> PreviousThemes | None:
    themes = settings.store.previous("themes")
    claim_themes = settings.store.previous("claim_themes", ["claim_id", "theme_id", "rank"])
    if themes is None or claim_themes is None or "status" not in themes.column_names:
        return None
    return PreviousThemes.from_rows(themes.to_pylist(), claim_themes)
