"""Themes: named themes from a catalog, plus themes discovered in the claims that fit none.

One module per concern (see docs/themes.md):

- :mod:`~pipeline.themes.catalog`: the catalog file and its embedded vectors;
- :mod:`~pipeline.themes.config`: every setting, typed;
- :mod:`~pipeline.themes.source`: claims and embeddings read in chunks of whole documents;
- :mod:`~pipeline.themes.scoring`: named-theme scores, calibrated decisions and evidence;
- :mod:`~pipeline.themes.feedback`: the analysts' labels file;
- :mod:`~pipeline.themes.discovery`: clustering of the claims no named theme holds;
- :mod:`~pipeline.themes.hierarchy`: broad themes (clusters of documents) and retired ids;
- :mod:`~pipeline.themes.keywords`: keywords and labels;
- :mod:`~pipeline.themes.previous`: last night's themes, for stable ids;
- :mod:`~pipeline.themes.model`: :class:`ThemeModel`, which wires them (``fit``/``predict``);
- :mod:`~pipeline.themes.tables`: the four theme tables.

Everything is deterministic: inputs are used in the order given (callers sort them) and all
randomness goes through ``random_state``.
"""

from pipeline.themes.base import UNASSIGNED
from pipeline.themes.catalog import NamedTheme, ThemeCatalog, ThemeVectors, load_catalog
from pipeline.themes.config import ThemeConfig
from pipeline.themes.keywords import ctfidf_keywords
from pipeline.themes.model import ThemeModel
from pipeline.themes.previous import PreviousThemes
from pipeline.themes.source import CHUNK_ROWS, ClaimChunk, ClaimSource, array_claims, file_claims
from pipeline.themes.tables import (
    INPUTS_KEY,
    assign_themes,
    claim_theme_table,
    document_theme_table,
    theme_inputs_key,
    theme_rows,
    trend_table,
)

__all__ = [
    "CHUNK_ROWS",
    "INPUTS_KEY",
    "UNASSIGNED",
    "ClaimChunk",
    "ClaimSource",
    "NamedTheme",
    "PreviousThemes",
    "ThemeCatalog",
    "ThemeConfig",
    "ThemeModel",
    "ThemeVectors",
    "array_claims",
    "assign_themes",
    "claim_theme_table",
    "ctfidf_keywords",
    "document_theme_table",
    "file_claims",
    "load_catalog",
    "theme_inputs_key",
    "theme_rows",
    "trend_table",
]
