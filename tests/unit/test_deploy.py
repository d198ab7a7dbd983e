"""Deployment profiles without a cluster: locations, the compute resource's configuration."""

import dagster as dg
import pytest

from assets.compute import ComputeResource, compute_from_env
from assets.resources import PipelineSettings, RunLockResource
from pipeline.locations import LocationError, local_path


def test_paths_and_file_urls_are_local_paths(tmp_path):
    assert local_path("data/raw") == "data/raw"
    assert local_path(f"file://{tmp_path}/raw") == f"{tmp_path}/raw"
    settings = PipelineSettings(
        raw_dir=f"file://{tmp_path}/raw", processed_dir=f"file://{tmp_path}/out"
    )
    assert (settings.raw_dir, settings.processed_dir) == (f"{tmp_path}/raw", f"{tmp_path}/out")
    assert settings.store.base_dir == tmp_path / "out"
    assert (
        RunLockResource(processed_dir=f"file://{tmp_path}/out").processed_dir == f"{tmp_path}/out"
    )


@pytest.mark.parametrize("url", ["memory://raw", "gs://bucket/out", "az://container/raw"])
def test_stores_without_conditional_writes_are_refused_with_the_reason(url):
    with pytest.raises(LocationError, match="not supported.*conditional writes"):
        local_path(url)
    with pytest.raises(ValueError, match="docs/deploy.md"):
        PipelineSettings(raw_dir=url)


def test_s3_locations_are_kept_as_urls_and_worked_on_through_a_local_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCTHEMES_WORK_DIR", str(tmp_path / "work"))
    settings = PipelineSettings(raw_dir="s3://news/raw/", processed_dir="s3://news/processed")
    assert (settings.raw_dir, settings.processed_dir) == ("s3://news/raw", "s3://news/processed")
    assert settings.store.base_dir.parent == tmp_path / "work"
    assert settings.store.location == "s3://news/processed"
    with pytest.raises(LocationError, match="takes a local folder"):
        local_path("s3://news/onnx")
    with pytest.raises(ValueError, match="overlap"):
        PipelineSettings(raw_dir="s3://news/raw", processed_dir="s3://news/raw/out")


def test_the_default_profile_runs_tasks_in_this_process(monkeypatch):
    monkeypatch.delenv("DOCTHEMES_PROFILE", raising=False)
    compute = compute_from_env()
    assert compute.profile == "local" and not compute.workers().remote


def test_the_cluster_profile_needs_a_scheduler(monkeypatch):
    monkeypatch.setenv("DOCTHEMES_PROFILE", "cluster")
    monkeypatch.delenv("DOCTHEMES_DASK_SCHEDULER", raising=False)
    with pytest.raises(ValueError, match="DOCTHEMES_DASK_SCHEDULER"):
        compute_from_env()
    monkeypatch.setenv("DOCTHEMES_PROFILE", "clustr")
    with pytest.raises(ValueError, match="local or cluster"):
        compute_from_env()


def test_an_unreachable_scheduler_fails_with_its_address():
    compute = ComputeResource(profile="cluster", scheduler="tcp://127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(dg.Failure, match="cannot reach the Dask scheduler tcp://127.0.0.1:9"):
        compute.workers()
