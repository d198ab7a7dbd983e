"""The `docthemes` read commands on a materialized output (typer's test runner)."""

import json

import pytest
from typer.testing import CliRunner

from assets.cli import app
from tests.conftest import ROOT
from tests.helpers import materialize_all

runner = CliRunner()


@pytest.fixture(scope="module")
def out(tmp_path_factory, embedder):
    raw = tmp_path_factory.mktemp("raw")
    for f in sorted((ROOT / "data" / "raw").glob("*.txt")):
        (raw / f.name).write_bytes(f.read_bytes())
    (raw / "empty.txt").write_text("")  # one reject, so status has one to show
    processed = tmp_path_factory.mktemp("processed")
    assert materialize_all(raw, processed, embedder).success
    return str(processed)


def invoke(*args: str):
    return runner.invoke(app, list(args))


def as_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_command_has_help():
    commands = (
        "run",
        "status",
        "themes",
        "claims",
        "search",
        "doc",
        "matches",
        "report",
        "rollback",
    )
    for command in commands:
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output, command


def test_no_tables_yet_is_said_plainly(tmp_path):
    for args in (
        ["status"],
        ["themes"],
        ["claims", "--theme", "energy_axis"],
        ["doc", "x"],
        ["search", "gas"],
        ["matches", "x"],
        ["report"],
    ):
        result = invoke(*args, "--out", str(tmp_path))
        assert result.exit_code == 1, args
        assert "no published tables" in result.output and "docthemes run" in result.output


def test_status(out):
    info = as_json(invoke("status", "--out", out, "--json"))
    assert info["runs"] == 1 and info["row_counts"]["documents"] == 2
    assert info["rejected_by_reason"] == {"empty": 1}
    text = invoke("status", "--out", out)
    assert text.exit_code == 0 and "documents" in text.output and "empty" in text.output


def test_themes_by_kind(out):
    rows = as_json(invoke("themes", "--out", out, "--json", "--kind", "named"))
    assert {r["theme_id"] for r in rows} == {
        "energy_axis",
        "military_collaboration",
        "multipolarity",
        "isolation",
    }
    assert all(r["kind"] == "named" for r in rows)
    assert [r["n_claims"] for r in rows] == sorted((r["n_claims"] for r in rows), reverse=True)
    assert invoke("themes", "--out", out, "--kind", "nope").exit_code == 2


def test_claims_of_a_theme(out):
    rows = as_json(invoke("claims", "--theme", "energy_axis", "--out", out, "--json"))
    assert rows and all(r["doc_id"] and r["text"] for r in rows)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert (
        len(
            as_json(
                invoke("claims", "--theme", "energy_axis", "--limit", "1", "--out", out, "--json")
            )
        )
        == 1
    )
    future = invoke(
        "claims", "--theme", "energy_axis", "--since", "2999-01-01", "--out", out, "--json"
    )
    assert as_json(future) == []


def test_unknown_theme_and_bad_arguments_exit_2(out):
    unknown = invoke("claims", "--theme", "no_such_theme", "--out", out)
    assert unknown.exit_code == 2 and "unknown theme id 'no_such_theme'" in unknown.output
    assert invoke("claims", "--out", out).exit_code == 2  # --theme is required
    assert invoke("claims", "--theme", "energy_axis", "--since", "May", "--out", out).exit_code == 2
    assert invoke("doc", "no-such-doc", "--out", out).exit_code == 2
    assert invoke("search", "gas", "--theme", "no_such_theme", "--out", out).exit_code == 2


def test_search_finds_the_gas_claims_with_the_runs_model(out):
    rows = as_json(invoke("search", "gas pipeline deals", "--k", "3", "--out", out, "--json"))
    assert len(rows) == 3
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert any("gas" in r["text"].lower() or "pipeline" in r["text"].lower() for r in rows)
    only = as_json(
        invoke("search", "gas", "--theme", "military_collaboration", "--out", out, "--json")
    )
    assert all(r["theme_id"] == "military_collaboration" for r in only)


def test_doc_shows_text_and_claims_with_themes(out):
    doc_id = as_json(invoke("claims", "--theme", "energy_axis", "--out", out, "--json"))[0][
        "doc_id"
    ]
    info = as_json(invoke("doc", doc_id, "--out", out, "--json"))
    assert info["claims"] and all(
        info["text"][c["char_start"] : c["char_end"]] == c["text"] for c in info["claims"]
    )
    assert "energy_axis" in {c["theme_id"] for c in info["claims"]}
    assert invoke("doc", doc_id, "--out", out).exit_code == 0


def test_the_reading_snippets_of_docs_tables_run(out):
    # docs/tables.md's DuckDB and polars snippets, run as written against this output.
    import re

    text = (ROOT / "docs" / "tables.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    scope: dict = {}
    for block in blocks:
        exec(block.replace("data/processed/", f"{out}/"), scope)
    energy, sizes = scope["energy"], scope["sizes"]
    assert len(energy) and list(energy.columns)[:3] == ["source_path", "char_start", "char_end"]
    assert set(sizes["kind"]) >= {"named"} and sizes["claims"].sum() >= len(energy)


def test_report_command_rewrites_the_report(out):
    from pathlib import Path

    report = Path(out) / "report.html"
    report.unlink()
    result = invoke("report", "--out", out)
    assert result.exit_code == 0 and report.is_file() and "report.html" in result.output


def test_the_report_renders_in_a_real_browser(out, tmp_path):
    # Headless Chromium (installed by `make test`) opens the report from disk: every plot is an
    # SVG with drawn paths, nothing is fetched from the network, no console error; a screenshot
    # is kept in the test's temp dir.
    import shutil
    import subprocess
    from pathlib import Path

    report = Path(out) / "report.html"
    page = report.read_text(encoding="utf-8")
    import re

    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)  # nothing fetched
    assert "<script" not in page and "<link" not in page
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is missing: `make test` installs the Debian package"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr"]
    shot = tmp_path / "report.png"
    dom = subprocess.run(
        [*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    plots = ("theme_sizes", "theme_hierarchy", "document_heatmap", "claim_map", "theme_trends")
    for plot in plots:
        section = dom.stdout.split(f'id="{plot}"', 1)[1].split("</section>", 1)[0]
        assert "<svg" in section and section.count("<path") >= 3, plot
    assert "<mark id=" in dom.stdout  # representative claims highlighted in their documents
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    taken = subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
