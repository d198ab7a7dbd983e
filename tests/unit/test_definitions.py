"""The code location loads, and the IO manager refuses to lose data."""

import dagster as dg
import pyarrow as pa
import pytest

from assets.definitions import defs
from assets.io_manager import ParquetIOManager, table_metadata
from pipeline.storage import MissingTableError


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert keys == {
        "documents",
        "rejected_files",
        "duplicates",
        "segments",
        "claims",
        "claim_embeddings",
        "themes",
        "claim_themes",
        "document_themes",
        "theme_trends",
        "claim_matches",
        "claim_clusters",
        "claim_spread",
        "runs",
        "theme_report",
    }
    assert defs.resolve_job_def("docthemes_job").executor_def.name == "in_process"
    # Every check is blocking: a failure must stop publication.
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert len(checks) >= 17
    assert {s.name for s in defs.schedules} == {"nightly"} and {s.name for s in defs.sensors} == {
        "raw_dir_sensor"
    }


def test_io_manager_refuses_non_tables(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path))
    context = dg.build_output_context(asset_key=dg.AssetKey("documents"))
    with pytest.raises(TypeError, match="no pickling"):
        manager.handle_output(context, [{"a": 1}])


def test_io_manager_raises_on_missing_input(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path))
    upstream = dg.build_output_context(asset_key=dg.AssetKey("claims"))
    context = dg.build_input_context(asset_key=dg.AssetKey("claims"), upstream_output=upstream)
    with pytest.raises(MissingTableError, match="materialize"):
        manager.load_input(context)


def test_table_metadata_has_count_schema_preview():
    meta = table_metadata(pa.table({"claim_id": ["a" * 200], "n": [1]}))
    assert meta["dagster/row_count"].value == 1
    assert [c.name for c in meta["dagster/column_schema"].value.columns] == ["claim_id", "n"]
    assert "…" in meta["preview"].value  # long cells are truncated


def test_the_launchpad_shows_every_setting_typed():
    # One typed configuration: every theme and matching setting is a field of its own in the
    # launchpad's schema (a dict of overrides would show none of them), with its default.
    from assets.resources import EmbedderResource, PipelineSettings
    from pipeline.matching import MatchConfig
    from pipeline.themes import ThemeConfig

    fields = PipelineSettings.to_config_schema().as_field().config_type.fields
    themes = fields["themes"].config_type.fields
    assert set(themes) == set(ThemeConfig.model_fields)
    assert themes["assign_threshold"].default_value == ThemeConfig().assign_threshold
    assert set(fields["matching"].config_type.fields) == set(MatchConfig.model_fields)
    embedder = EmbedderResource.to_config_schema().as_field().config_type.fields
    assert embedder["backend"].default_value == "auto"
    from assets.compute import ComputeResource

    compute = ComputeResource.to_config_schema().as_field().config_type.fields
    assert compute["profile"].default_value == "local" and "scheduler" in compute
