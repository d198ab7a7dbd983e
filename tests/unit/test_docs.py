"""Docs stay true: the generated column reference matches the schemas in code."""

from pipeline.schemas import render_markdown
from tests.conftest import ROOT


def test_column_reference_is_current():
    # Regenerate with: python -m pipeline.schemas > docs/tables_columns.md
    assert (ROOT / "docs" / "tables_columns.md").read_text(encoding="utf-8") == render_markdown()
