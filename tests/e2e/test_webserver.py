"""A real `dagster-webserver` on loopback, asked over GraphQL for the asset graph and metadata."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.servers import free_port

QUERY = """
{
  assetNodes {
    assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
    assetMaterializations(limit: 1) { metadataEntries { label __typename } }
  }
}
"""


def _post(url: str, query: str) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_the_webserver_serves_every_asset_check_and_report_plot(seed_dir, tmp_path: Path):
    # One `docthemes run` into the instance first, so its materializations (the report's plots
    # among their metadata) are there to be served.
    from assets.definitions import defs
    from tests.helpers import cli_process

    graph = defs.resolve_asset_graph()
    expected_assets = {k.to_user_string() for k in graph.get_all_asset_keys()}
    expected_checks = {k.name for k in graph.asset_check_keys}
    home, out = tmp_path / "home", tmp_path / "out"
    assert cli_process(seed_dir, out, home).wait(timeout=300) == 0
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DOCTHEMES_PROCESSED_DIR": str(out)}
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port)]
        + ["-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()[-2000:] if server.stderr else ""
            try:
                nodes = _post(url, QUERY)["data"]["assetNodes"]
                if nodes:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the webserver did not answer"
            time.sleep(0.5)
        assets = {"/".join(n["assetKey"]["path"]) for n in nodes}
        checks = {
            c["name"]: c["blocking"]
            for n in nodes
            for c in n["assetChecksOrError"].get("checks", [])
        }
        assert assets == expected_assets
        assert set(checks) == expected_checks and all(checks.values())
        report = next(n for n in nodes if n["assetKey"]["path"] == ["theme_report"])
        plots = {
            e["label"]: e["__typename"]
            for m in report["assetMaterializations"]
            for e in m["metadataEntries"]
            if e["label"].startswith("plot_")
        }
        assert set(plots) == {
            "plot_theme_sizes",
            "plot_theme_hierarchy",
            "plot_document_heatmap",
            "plot_claim_map",
            "plot_theme_trends",
        }
        assert set(plots.values()) == {"MarkdownMetadataEntry"}
    finally:
        server.terminate()
        server.wait(timeout=30)
